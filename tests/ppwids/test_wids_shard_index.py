"""The native ShardIndex: grouping, full names, duplicates, views, sidecars and errors."""

from __future__ import annotations

import gzip
import io
import os
import re
import tarfile

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ppwebdataset._core import ShardIndex
from ppwebdataset.errors import (
    CorruptShardError,
    DuplicateMemberError,
    ShardError,
    TruncatedShardError,
    UnsupportedMemberError,
)

WIDS_RE = re.compile(r"^((?:.*/)?.*?)(\..*)$", re.DOTALL)


def test_samples_keys_and_members(tmp_path, make_tar):
    path = make_tar(tmp_path / "s.tar", [("a.jpg", b"J"), ("a.cls", b"1"), ("b.seg.png", b"P" * 700)])
    idx = ShardIndex(str(path))
    assert len(idx) == 2
    assert idx.keys() == ["a", "b"]
    assert idx.key(-1) == "b"
    assert idx.get_sample(0) == {".jpg": b"J", ".cls": b"1", "__key__": "a"}
    assert idx.get_sample(-1) == {".seg.png": b"P" * 700, "__key__": "b"}
    name, ext, offset, size = idx.members(0)[0]
    assert (name, ext, size) == ("a.jpg", ".jpg", 1)
    assert path.read_bytes()[offset : offset + size] == b"J"
    assert idx.file_size == path.stat().st_size
    for bad in (2, -3):
        with pytest.raises(IndexError, match="out of range"):
            idx.get_sample(bad)
    idx.close()
    assert idx.closed
    with pytest.raises(ValueError, match="closed"):
        idx.get_sample(0)


def test_full_names_from_all_header_formats(tmp_path, make_tar):
    prefix_name = "d" * 120 + "/k1.txt"
    long_name = "x" * 200 + "/" + "y" * 150 + ".txt"
    for fmt in (tarfile.USTAR_FORMAT, tarfile.GNU_FORMAT, tarfile.PAX_FORMAT):
        names = [prefix_name] if fmt == tarfile.USTAR_FORMAT else [prefix_name, long_name]
        path = make_tar(tmp_path / f"f{fmt}.tar", [(n, n.encode()) for n in names], format=fmt)
        idx = ShardIndex(str(path))
        assert idx.keys() == [n[: -len(".txt")] for n in names]
        for i, n in enumerate(names):
            assert idx.get_sample(i)[".txt"] == n.encode()


def test_duplicates_never_shift_later_samples(tmp_path, make_tar):
    path = make_tar(
        tmp_path / "d.tar",
        [("x.txt", b"x1"), ("x.txt", b"x2"), ("y.txt", b"y"), ("z.txt", b"z"), ("y.txt", b"y2")],
    )
    idx = ShardIndex(str(path))
    assert idx.keys() == ["x", "y", "z", "y"]
    assert idx.duplicates() == [(0, ".txt")]
    # The sample itself is refused (streaming's rule), naming the repeating member's header.
    with pytest.raises(DuplicateMemberError, match="x.txt") as info:
        idx.get_sample(0)
    assert (info.value.member, info.value.offset) == ("x.txt", 1024)
    assert [idx.get_sample(i)[".txt"] for i in (1, 2, 3)] == [b"y", b"z", b"y2"]
    assert len(idx.members(0)) == 2


def test_duplicate_rule_matches_streaming_and_survives_the_sidecar(tmp_path, make_tar):
    import ppwebdataset as wds

    path = make_tar(tmp_path / "d.tar", [("a.txt", b"1"), ("b.txt", b"2"), ("b.cls", b"c"), ("b.txt", b"3")])
    with pytest.raises(DuplicateMemberError) as streamed:
        list(wds.WebDataset(str(path), shardshuffle=False))
    side = tmp_path / "d.idx"
    for _ in range(2):  # built, then with a sidecar present
        idx = ShardIndex(str(path), sidecar=str(side))
        assert idx.get_sample(0)[".txt"] == b"1"
        with pytest.raises(DuplicateMemberError) as indexed:
            idx.get_sample(1)
        got, want = indexed.value, streamed.value
        assert (got.member, got.offset) == (want.member, want.offset) == ("b.txt", 3 * 1024)


@given(st.lists(st.text(alphabet="ab./", min_size=1, max_size=7), min_size=1, max_size=8))
def test_keys_follow_the_wids_regex(tmp_path_factory, names):
    names = [n for n in names if not n.endswith("/")]
    members = [(n, str(i).encode()) for i, n in enumerate(names)]
    path = tmp_path_factory.mktemp("names") / "n.tar"
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tf:
        for n, d in members:
            info = tarfile.TarInfo(n)
            info.size = len(d)
            tf.addfile(info, io.BytesIO(d))
    # Expected: the regex wids uses, adjacent equal keys grouped, names without a dot skipped.
    expected = []
    for n, d in members:
        if "." not in n:
            continue
        key, ext = WIDS_RE.match(n).groups()
        if expected and expected[-1][0] == key:
            expected[-1][1].append((ext, d))
        else:
            expected.append((key, [(ext, d)]))
    idx = ShardIndex(str(path))
    raw = path.read_bytes()
    got = [(idx.key(i), [(e, raw[o : o + s]) for _, e, o, s in idx.members(i)]) for i in range(len(idx))]
    assert got == expected


def test_views_are_read_only_and_outlive_the_index(tmp_path, make_tar):
    payload = bytes(range(256)) * 10
    path = make_tar(tmp_path / "v.tar", [("a.bin", payload), ("a.txt", b"t")])
    idx = ShardIndex(str(path))
    sample = idx.get_sample(0, views=True)
    view = sample[".bin"]
    assert isinstance(view, memoryview) and view.readonly
    assert np.frombuffer(view, np.uint8).tolist() == list(payload)
    idx.close()
    del idx
    assert bytes(view) == payload  # the view owns its bytes
    with pytest.raises(TypeError):
        view[0] = 1


def test_sidecar_reused_then_rebuilt(tmp_path, make_tar, members):
    path = make_tar(tmp_path / "s.tar", members(5))
    side = tmp_path / "s.idx"
    first = ShardIndex(str(path), sidecar=str(side))
    assert not first.from_sidecar and side.exists()
    again = ShardIndex(str(path), sidecar=str(side))
    assert again.from_sidecar
    assert [again.get_sample(i) for i in range(5)] == [first.get_sample(i) for i in range(5)]

    side.write_bytes(side.read_bytes()[:-1] + b"\x00")
    damaged = ShardIndex(str(path), sidecar=str(side))
    assert not damaged.from_sidecar and "rebuilt" in damaged.sidecar_error
    assert ShardIndex(str(path), sidecar=str(side)).from_sidecar

    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    stale = ShardIndex(str(path), sidecar=str(side))
    assert not stale.from_sidecar and "stale" in stale.sidecar_error
    assert stale.get_sample(4) == first.get_sample(4)


def test_errors_name_shard_member_and_offset(tmp_path, make_tar, members):
    data = make_tar(tmp_path / "ok.tar", [("a.txt", b"hello"), ("b.txt", b"x" * 3000)]).read_bytes()

    bad = bytearray(data)
    bad[1024 + 140] ^= 0x11  # inside the second header
    (tmp_path / "bad.tar").write_bytes(bad)
    with pytest.raises(CorruptShardError) as e:
        ShardIndex(str(tmp_path / "bad.tar"), url="http://host/bad.tar")
    assert isinstance(e.value, tarfile.ReadError) and isinstance(e.value, ShardError)
    assert (e.value.url, e.value.member, e.value.offset) == ("http://host/bad.tar", "b.txt", 1024)
    assert "http://host/bad.tar" in str(e.value) and "1024" in str(e.value) and "b.txt" in str(e.value)

    (tmp_path / "cut.tar").write_bytes(data[: 3 * 512 + 100])
    with pytest.raises(TruncatedShardError) as e:
        ShardIndex(str(tmp_path / "cut.tar"))
    assert e.value.member == "b.txt" and e.value.offset == 1024

    (tmp_path / "c.tar.gz").write_bytes(gzip.compress(data))
    with pytest.raises(UnsupportedMemberError, match="decompress"):
        ShardIndex(str(tmp_path / "c.tar.gz"))

    with pytest.raises(FileNotFoundError):
        ShardIndex(str(tmp_path / "missing.tar"))
    (tmp_path / "empty.tar").write_bytes(b"")
    with pytest.raises(TruncatedShardError, match="empty"):
        ShardIndex(str(tmp_path / "empty.tar"))
