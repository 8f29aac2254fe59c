"""``TarSampleReader(group=False)``: raw members through the core's sample stream."""

from __future__ import annotations

import gzip
import io
import tarfile

import pytest
from tarfixtures import BLOCK, tar_bytes

from ppwebdataset._core import TarSampleReader
from ppwebdataset.errors import CorruptShardError, ShardError

MEMBERS = [
    ("__meta__", b"m"),
    ("a.jpg", b"1"),
    ("a.JPG", b"2"),
    ("noext", b""),
    ("__dir__/x.txt", b"x"),
    ("big.bin", bytes(range(256)) * 1200),  # over the direct-read size
    ("huge.bin", b"\x05" * (3 << 20)),
    ("ü/キー.txt", "é".encode() * 10),
    ("d" * 150 + "/long.txt", b"pax"),
    ("a.jpg", b"again"),
] + [(f"many/{i:04d}.cls", str(i).encode()) for i in range(600)]


def read_members(source, url="mem"):
    """Every member, the batch sizes, and the error that ended the shard."""
    reader = TarSampleReader(source, url, group=False)
    out, sizes = [], []
    try:
        while batch := reader.next_batch():
            sizes.append(len(batch))
            out.extend(batch)
    except ShardError as exn:
        return out, sizes, exn
    assert reader.done
    return out, sizes, None


@pytest.mark.parametrize("kind", ["path", "stream", "gzip"])
def test_every_member_comes_back_as_tarfile_sees_it(tmp_path, kind):
    data = tar_bytes(MEMBERS, fmt=tarfile.PAX_FORMAT)
    if kind == "path":
        source = tmp_path / "s.tar"
        source.write_bytes(data)
        source = str(source)
    elif kind == "stream":
        source = io.BytesIO(data)
    else:
        source = io.BytesIO(gzip.compress(data))
    got, sizes, err = read_members(source)
    assert err is None
    assert got == MEMBERS
    assert all(type(d) is bytes for _, d in got)
    assert max(sizes) <= 256


def test_a_damaged_header_ends_the_shard_after_the_members_before_it():
    data = bytearray(tar_bytes([("a.txt", b"1"), ("b.txt", b"2"), ("c.txt", b"3")]))
    data[4 * BLOCK + 148] ^= 1
    got, _, err = read_members(io.BytesIO(bytes(data)))
    assert got == [("a.txt", b"1"), ("b.txt", b"2")]
    assert isinstance(err, CorruptShardError)
    assert err.offset == 4 * BLOCK


def test_a_bad_gzip_trailer_withholds_the_last_member():
    packed = bytearray(gzip.compress(tar_bytes([("a.txt", b"1"), ("b.txt", b"2")])))
    packed[-8] ^= 0xFF
    got, _, err = read_members(io.BytesIO(bytes(packed)))
    assert ("b.txt", b"2") not in got
    assert isinstance(err, CorruptShardError)
