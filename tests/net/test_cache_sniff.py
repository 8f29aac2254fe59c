"""cache.check_tar_format / magic_filetype take the core's verdict on a file's start (its
header checksum and field checks, its compression detection) instead of a Python copy."""

from __future__ import annotations

import gzip
import io
import lzma
import tarfile

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ppwebdataset import cache as C
from ppwebdataset._core import scan_shard
from ppwebdataset.errors import CorruptShardError, TruncatedShardError


def _tar(members, fmt=tarfile.USTAR_FORMAT):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tf:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


TAR = _tar([("a.txt", b"hello"), ("a.cls", b"1")])


def _core_reads_a_first_header(path) -> bool:
    """What the core says when it reads the whole file: damage at byte 0 means no tar."""
    try:
        scan_shard(str(path))
    except CorruptShardError as exn:
        return bool(exn.offset)
    except TruncatedShardError as exn:
        return bool(exn.offset) or exn.member is not None
    return True


def test_the_magic_string_alone_no_longer_makes_a_tar(tmp_path):
    bad = bytearray(TAR)
    bad[148:156] = b"0000000\0"  # ustar magic kept, checksum wrong
    p = tmp_path / "bad.tar"
    p.write_bytes(bytes(bad))
    assert C.magic_filetype(str(p)) == f"{p}: data"
    assert C.check_tar_format(str(p)) is False
    with pytest.raises(CorruptShardError):
        scan_shard(str(p))


def test_compressed_files_are_tars_only_when_the_core_reads_a_header_inside(tmp_path):
    cases = {
        "page.gz": (gzip.compress(b"<html>login</html>" * 50), "gzip compressed data", False),
        "junk.gz": (b"\x1f\x8b" + bytes(range(256)) * 4, "gzip compressed data", False),
        "ok.tar.gz": (gzip.compress(TAR), "gzip compressed data", True),
        "ok.tar.xz": (lzma.compress(TAR), "XZ compressed data", True),  # the core reads xz shards
        "short.tar": (TAR[:300], "data", False),  # not even one whole header
    }
    for name, (data, kind, ok) in cases.items():
        p = tmp_path / name
        p.write_bytes(data)
        assert C.magic_filetype(str(p)) == f"{p}: {kind}", name
        assert C.check_tar_format(str(p)) is ok, name
        assert _core_reads_a_first_header(p) is ok, name


def test_a_cut_tar_is_still_a_tar_so_the_cache_reports_it_as_incomplete(tmp_path):
    p = tmp_path / "cut.tar"
    p.write_bytes(_tar([("a.bin", bytes(5000))])[:1024])
    assert C.check_tar_format(str(p)) is True
    with pytest.raises(TruncatedShardError):
        C.check_tar_complete(str(p))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(edits=st.lists(st.tuples(st.integers(0, 511), st.integers(0, 255)), min_size=1, max_size=4))
def test_check_tar_format_agrees_with_the_core_on_damaged_first_headers(tmp_path, edits):
    data = bytearray(TAR)
    for pos, value in edits:
        data[pos] = value
    p = tmp_path / "x.tar"
    p.write_bytes(bytes(data))
    assert C.check_tar_format(str(p)) is _core_reads_a_first_header(p)
