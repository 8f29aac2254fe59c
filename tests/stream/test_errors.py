"""Damaged shards: precise exceptions, no partial samples, handlers keep going."""

from __future__ import annotations

import tarfile
import warnings

import pytest
from tarfixtures import make_tar, samples_members

import ppwebdataset as wds
from ppwebdataset.errors import CorruptShardError, DuplicateMemberError, ShardError, TruncatedShardError


def read(path, **kw):
    return list(wds.WebDataset(str(path), shardshuffle=False, **kw))


def test_truncated_member_names_shard_member_offset(tmp_path):
    path = make_tar(tmp_path / "t.tar", [("a.txt", b"x" * 100), ("b.txt", b"y" * 3000)])
    data = path.read_bytes()
    path.write_bytes(data[: 512 * 3 + 200])
    with pytest.raises(TruncatedShardError) as info:
        read(path)
    err = info.value
    assert isinstance(err, tarfile.ReadError)
    assert err.url == str(path) and err.member == "b.txt" and err.offset == 1024
    text = str(err)
    assert str(path) in text and "b.txt" in text and "1024" in text


@pytest.mark.parametrize("cut", [512 * 4, 512 * 4 + 100, 512 * 5, 512 * 6 + 3, 512 * 8])
def test_no_incomplete_trailing_sample(tmp_path, cut):
    members = samples_members(3)  # s0000.cls s0000.txt s0001.cls ...
    path = make_tar(tmp_path / "t.tar", members)
    path.write_bytes(path.read_bytes()[:cut])
    got = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for s in wds.WebDataset(str(path), shardshuffle=False, handler=wds.warn_and_continue, empty_check=False):
            got.append(s)
    assert any("truncated" in str(w.message) for w in caught)
    for s in got:
        assert set(s) >= {"cls", "txt"}, s  # every yielded sample is complete
    assert len(got) <= cut // 2048


def test_missing_end_marker_is_an_error(tmp_path):
    path = make_tar(tmp_path / "t.tar", samples_members(2))
    path.write_bytes(path.read_bytes()[: 512 * 8])  # all members, no zero blocks
    with pytest.raises(TruncatedShardError, match="end-of-archive"):
        read(path)


def test_corrupt_header_checksum(tmp_path):
    path = make_tar(tmp_path / "t.tar", samples_members(3))
    data = bytearray(path.read_bytes())
    data[512 * 4 + 5] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(CorruptShardError) as info:
        read(path)
    assert info.value.offset == 2048 and "checksum" in str(info.value)


def test_empty_file_and_garbage(tmp_path):
    empty = tmp_path / "e.tar"
    empty.write_bytes(b"")
    with pytest.raises(ShardError, match="empty"):
        read(empty)
    garbage = tmp_path / "g.tar"
    garbage.write_bytes(b"not a tar file at all" * 100)
    with pytest.raises(tarfile.ReadError):
        read(garbage)


def test_corrupt_gzip(tmp_path):
    import gzip

    plain = make_tar(tmp_path / "p.tar", samples_members(20))
    gz = bytearray(gzip.compress(plain.read_bytes()))
    gz[len(gz) // 2] ^= 0xFF
    path = tmp_path / "c.tgz"
    path.write_bytes(bytes(gz))
    with pytest.raises(ShardError) as info:
        read(path)
    assert "decompressed" in str(info.value) or "compressed" in str(info.value)


def test_duplicate_extension_goes_through_handler(tmp_path):
    path = make_tar(tmp_path / "d.tar", [("a.txt", b"1"), ("a.TXT", b"2"), ("a.cls", b"3"), ("b.txt", b"4")])
    with pytest.raises(DuplicateMemberError) as info:
        read(path)
    assert isinstance(info.value, ValueError) and info.value.member == "a.TXT"
    got = read(path, handler=wds.ignore_and_continue)
    assert [(s["__key__"], s.get("txt"), s.get("cls")) for s in got] == [("a", b"1", b"3"), ("b", b"4", None)]


def test_handler_skips_bad_shard_and_continues(tmp_path):
    good1 = make_tar(tmp_path / "g1.tar", samples_members(2, prefix="a"))
    bad = make_tar(tmp_path / "bad.tar", samples_members(4, prefix="b"))
    bad.write_bytes(bad.read_bytes()[: 512 * 5])
    good2 = make_tar(tmp_path / "g2.tar", samples_members(2, prefix="c"))
    urls = [str(good1), str(bad), str(good2)]
    seen = []

    def handler(exn):
        seen.append(exn)
        return True

    got = list(wds.WebDataset(urls, shardshuffle=False, handler=handler))
    keys = [s["__key__"] for s in got]
    assert keys == ["a0000", "a0001", "b0000", "c0000", "c0001"]
    assert len(seen) == 1 and isinstance(seen[0], TruncatedShardError) and str(bad) in str(seen[0])
    stop = list(wds.WebDataset(urls, shardshuffle=False, handler=wds.ignore_and_stop))
    assert [s["__key__"] for s in stop] == ["a0000", "a0001", "b0000"]


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        read(tmp_path / "nope.tar")


def test_sparse_member_rejected(tmp_path):
    path = make_tar(tmp_path / "s.tar", [("a.txt", b"hello")])
    data = bytearray(path.read_bytes())
    data[156] = ord("S")
    data[148:156] = b"        "
    chk = sum(data[:512])
    data[148:155] = f"{chk:06o}\0".encode()
    path.write_bytes(bytes(data))
    from ppwebdataset.errors import UnsupportedMemberError

    with pytest.raises(UnsupportedMemberError, match="sparse"):
        read(path)
