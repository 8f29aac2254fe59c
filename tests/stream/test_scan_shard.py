"""_core.scan_shard: proves a local shard whole (the cache's acceptance check)."""

from __future__ import annotations

import bz2
import gzip
import io
import tarfile

import pytest

from ppwebdataset._core import scan_shard
from ppwebdataset.errors import CorruptShardError, ShardError, TruncatedShardError


def _tar(n=4, size=2000):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tf:
        for i in range(n):
            info = tarfile.TarInfo(f"k{i}.bin")
            info.size = size
            tf.addfile(info, io.BytesIO(bytes([i]) * size))
    return buf.getvalue()


@pytest.mark.parametrize("pack", [lambda b: b, gzip.compress, bz2.compress], ids=["tar", "gz", "bz2"])
def test_whole_shards_pass_and_count_members(tmp_path, pack):
    path = tmp_path / "s"
    path.write_bytes(pack(_tar()))
    assert scan_shard(str(path)) == 4


def test_cut_shards_name_url_member_and_offset(tmp_path):
    data = _tar()
    path = tmp_path / "cut.tar"
    path.write_bytes(data[: 2 * 2560 + 700])
    with pytest.raises(TruncatedShardError) as info:
        scan_shard(str(path), "http://h/cut.tar")
    assert (info.value.url, info.value.member, info.value.offset) == ("http://h/cut.tar", "k2.bin", 2 * 2560)
    path.write_bytes(data[: 4 * 2560])  # every member, no end-of-archive marker
    with pytest.raises(TruncatedShardError, match="end-of-archive"):
        scan_shard(str(path))
    path.write_bytes(gzip.compress(data)[:-300])
    with pytest.raises(ShardError):
        scan_shard(str(path))


def test_gzip_trailer_is_checked(tmp_path):
    packed = bytearray(gzip.compress(_tar()))
    packed[-8] ^= 0xFF  # the CRC
    path = tmp_path / "crc.tar.gz"
    path.write_bytes(bytes(packed))
    with pytest.raises(CorruptShardError):
        scan_shard(str(path))


def test_missing_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        scan_shard(str(tmp_path / "nope.tar"))
