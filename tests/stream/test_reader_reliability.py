"""Issue 9 regressions in the streaming reader: overflowing sizes, panics, compressed-stream
integrity, zero blocks in the middle of a shard, and a readinto that keeps its buffer."""

from __future__ import annotations

import bz2
import gzip
import io
import pickle
import tarfile
import warnings

import pytest
from tarfixtures import make_tar, padded, raw_header, samples_members

from ppwebdataset import _core
from ppwebdataset.errors import CorruptShardError, ShardError, TruncatedShardError
from ppwebdataset.handlers import warn_and_continue
from ppwebdataset.tariterators import tar_file_iterator, tarfile_samples


def good_tar(tmp_path, name="good.tar", n=5, prefix="s"):
    return make_tar(tmp_path / name, samples_members(n, prefix=prefix))


def keys(samples):
    return [s["__key__"] for s in samples]


def read(url, **kw):
    got = []
    try:
        for s in tarfile_samples([dict(url=str(url))], **kw):
            got.append(s)
    except ShardError as exn:
        return got, exn
    return got, None


def pax_overflow_tar(path):
    pax = b"13 path=a\nbc\n18446744073709551613 x=y\n"
    data = raw_header(b"pax", b"%011o\0" % len(pax), b"x") + padded(pax)
    data += raw_header(b"a.txt", b"%011o\0" % 1) + padded(b"x") + b"\0" * 1024
    path.write_bytes(data)
    return path


def test_pax_length_near_2_pow_64_is_a_corrupt_shard_error(tmp_path):
    bad = pax_overflow_tar(tmp_path / "bad.tar")
    got, err = read(bad)
    assert got == []
    assert isinstance(err, CorruptShardError), err
    assert err.url == str(bad) and err.offset == 0
    # Between good shards and with warn_and_continue, the good shards are read fully.
    g1, g2 = good_tar(tmp_path, "g1.tar", prefix="a"), good_tar(tmp_path, "g2.tar", prefix="b")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        urls = [dict(url=str(u)) for u in (g1, bad, g2)]
        out = list(tarfile_samples(urls, handler=warn_and_continue))
    assert len(out) == 10
    assert any("bad.tar" in str(w.message) for w in caught)


def test_a_panic_in_the_reader_is_a_shard_error_not_a_base_exception():
    with pytest.raises(CorruptShardError) as info:
        _core._panic_guard_selftest("shard-0.tar")
    assert info.value.url == "shard-0.tar"
    assert "internal error" in str(info.value)


@pytest.mark.parametrize("source", ["path", "stream"])
def test_base256_size_near_2_pow_64_names_url_member_offset(tmp_path, source):
    good = good_tar(tmp_path, n=2).read_bytes()
    start = 4 * 1024  # two samples of two members, one data block each
    size = b"\x80\0\0\0" + (2**64 - 512).to_bytes(8, "big")  # base-256, fits in 64 bits
    data = good[:start] + raw_header(b"huge.bin", size) + b"\0" * 4096
    path = tmp_path / "huge.tar"
    path.write_bytes(data)
    src = dict(url=str(path)) if source == "path" else dict(url="mem", stream=io.BytesIO(data))
    got = []
    with pytest.raises(CorruptShardError) as info:
        for s in tarfile_samples([src]):
            got.append(s)
    assert keys(got) == ["s0000"]  # s0001 might lack members after the damage
    assert info.value.member == "huge.bin" and info.value.offset == start
    assert info.value.url == src["url"]


def five(tmp_path):
    tar = good_tar(tmp_path, "five.tar").read_bytes()
    with tarfile.open(tmp_path / "five.tar") as tf:
        originals = {m.name: tf.extractfile(m).read() for m in tf.getmembers()}
    return tar, originals


def intact(samples, originals):
    for s in samples:
        for ext in ("cls", "txt"):
            assert s[ext] == originals[f"{s['__key__']}.{ext}"]


def test_gzip_flipped_data_byte_fails_before_the_last_sample(tmp_path):
    tar, originals = five(tmp_path)
    gz = bytearray(gzip.compress(tar, compresslevel=0))  # stored: bytes map 1:1
    gz[gz.index(b"s2-txt")] ^= 0x20
    path = tmp_path / "flip.tar.gz"
    path.write_bytes(gz)
    got, err = read(path)
    assert isinstance(err, CorruptShardError), err
    assert err.url == str(path) and err.offset is not None
    assert len(got) < 5
    # Member level too: the member read before the failing trailer is not handed out.
    with open(path, "rb") as f:
        members = []
        with pytest.raises(CorruptShardError):
            for m in tar_file_iterator(f):
                members.append(m)
    assert len(members) < 10


@pytest.mark.parametrize("where", ["crc", "length"])
def test_gzip_trailer_damage_is_reported(tmp_path, where):
    tar, originals = five(tmp_path)
    gz = bytearray(gzip.compress(tar))
    gz[-8 if where == "crc" else -1] ^= 0x01
    path = tmp_path / "t.tgz"
    path.write_bytes(gz)
    got, err = read(path)
    assert isinstance(err, CorruptShardError), err
    assert keys(got) == ["s0000", "s0001", "s0002", "s0003"]
    intact(got, originals)
    # Streams (pipes, HTTP) are read to the end of the gzip data as well.
    with pytest.raises(CorruptShardError):
        list(tarfile_samples([dict(url="mem", stream=io.BytesIO(bytes(gz)))]))


def test_gzip_padding_members_and_garbage_like_gzip(tmp_path):
    tar, originals = five(tmp_path)
    cases = {
        "padded": (gzip.compress(tar) + b"\0" * 100, None),
        "members": (gzip.compress(tar[:3000]) + gzip.compress(tar[3000:]), None),
        "garbage": (gzip.compress(tar) + b"GARBAGE!", CorruptShardError),
    }
    for name, (data, expect) in cases.items():
        path = tmp_path / f"{name}.tgz"
        path.write_bytes(data)
        got, err = read(path)
        # Python's gzip module agrees on each case.
        try:
            gzip.decompress(data)
            python_ok = True
        except gzip.BadGzipFile:
            python_ok = False
        assert python_ok == (expect is None), name
        if expect is None:
            assert err is None, (name, err)
            assert len(got) == 5
        else:
            assert isinstance(err, expect), (name, err)
            assert len(got) == 4
        intact(got, originals)


def test_bzip2_trailing_bytes_are_ignored_like_bzip2_but_damage_is_not(tmp_path):
    tar, originals = five(tmp_path)
    path = tmp_path / "t.tbz"
    path.write_bytes(bz2.compress(tar) + b"trailing junk")
    assert bz2.decompress(path.read_bytes()) == tar
    got, err = read(path)
    assert err is None and len(got) == 5
    bad = bytearray(bz2.compress(tar))
    bad[-3] ^= 0x10  # stream CRC
    path.write_bytes(bad)
    got, err = read(path)
    assert isinstance(err, ShardError), err
    assert len(got) < 5
    intact(got, originals)


def zero_block_tar(tmp_path):
    tar = bytearray(good_tar(tmp_path, "z.tar").read_bytes())
    tar[2 * 2048 : 2 * 2048 + 512] = b"\0" * 512  # the header of s0002.cls
    path = tmp_path / "zero.tar"
    path.write_bytes(tar)
    return path


def test_zero_block_in_the_middle_is_a_corrupt_shard_error(tmp_path):
    path = zero_block_tar(tmp_path)
    got, err = read(path)
    assert isinstance(err, CorruptShardError), err
    assert "end-of-archive" in str(err) and "ignore_zeros" in str(err)
    assert err.url == str(path) and err.member == "s0002.txt" and err.offset == 2 * 2048 + 1024
    assert keys(got) == ["s0000"]
    # Compressed, the whole stream is read anyway: the same damage is found.
    gz = tmp_path / "zero.tar.gz"
    gz.write_bytes(gzip.compress(path.read_bytes()))
    with pytest.raises(CorruptShardError, match="end-of-archive"):
        list(tarfile_samples([dict(url="mem", stream=io.BytesIO(gz.read_bytes()))]))


def test_trailing_zero_padding_is_fine(tmp_path):
    path = good_tar(tmp_path)
    path.write_bytes(path.read_bytes() + b"\0" * 7000)
    got, err = read(path)
    assert err is None and len(got) == 5


def test_ignore_zeros_reads_concatenated_archives(tmp_path):
    a = good_tar(tmp_path, "a.tar", prefix="a").read_bytes()
    b = good_tar(tmp_path, "b.tar", prefix="b").read_bytes()
    cat = tmp_path / "cat.tar"
    cat.write_bytes(a + b)
    got, err = read(cat)
    assert isinstance(err, CorruptShardError)
    got, err = read(cat, ignore_zeros=True)
    assert err is None and len(got) == 10
    with tarfile.open(cat, ignore_zeros=True) as tf:
        assert len(tf.getmembers()) == 20
    with open(cat, "rb") as f:
        assert len(list(tar_file_iterator(f, ignore_zeros=True))) == 20
    # Still strict: a cut second archive is reported.
    cat.write_bytes(a + b[:1500])
    got, err = read(cat, ignore_zeros=True)
    assert isinstance(err, TruncatedShardError), err
    assert len(got) == 5


def test_wids_index_sees_the_zero_block(tmp_path):
    from ppwids import ShardListDataset
    from ppwids.wids_index import main

    path = zero_block_tar(tmp_path)
    with pytest.raises(CorruptShardError, match="end-of-archive"):
        ds = ShardListDataset([dict(url=str(path), nsamples=5)], transformations=[])
        ds[0]
    with pytest.raises(CorruptShardError):
        main(["create", str(path), "-o", str(tmp_path / "d.json"), "--debug"])
    assert main(["create", str(path), "-o", str(tmp_path / "d.json")]) == 2
    assert not (tmp_path / "d.json").exists()


class KeepsBuffer(io.RawIOBase):
    """A readinto that keeps an export of the buffer it is given (a bug, but possible)."""

    def __init__(self, data):
        self.inner = io.BytesIO(data)
        self.kept = []

    def readable(self):
        return True

    def readinto(self, b):
        n = self.inner.readinto(b)
        self.kept.append(pickle.PickleBuffer(b))
        return n


def test_readinto_keeping_the_buffer_fails_the_read(tmp_path):
    data = good_tar(tmp_path).read_bytes()
    with pytest.raises(BufferError, match="kept a reference"):
        list(tarfile_samples([dict(url="mem", stream=KeepsBuffer(data))]))
    # A well-behaved readinto source still reads everything.
    assert len(list(tarfile_samples([dict(url="mem", stream=io.BytesIO(data))]))) == 5


def test_dataloader_over_four_shards_with_one_bad_shard(tmp_path):
    # Issue 9's report: the PanicException killed the worker and the loader gave 0 samples.
    paddle = pytest.importorskip("paddle")
    import numpy as np

    import ppwebdataset as wds

    urls = []
    for k in range(4):
        path = tmp_path / f"shard-{k}.tar"
        if k == 2:
            pax_overflow_tar(path)
        else:
            make_tar(path, [(f"k{k}-{i}.cls", b"%d" % (10 * k + i)) for i in range(5)])
        urls.append(str(path))
    ds = wds.WebDataset(urls, shardshuffle=False, handler=warn_and_continue).map(
        lambda s: np.array(int(s["cls"]), dtype=np.int64)
    )
    loader = paddle.io.DataLoader(ds, batch_size=None, num_workers=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        got = sorted(int(np.asarray(x)) for x in loader)
    assert got == [0, 1, 2, 3, 4, 10, 11, 12, 13, 14, 30, 31, 32, 33, 34]
