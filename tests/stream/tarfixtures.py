"""Building tar shards for the streaming tests (with Python's tarfile)."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

BLOCK = 512


def _add(tf, members):
    for name, data in members:
        info = tarfile.TarInfo(name)
        info.mtime = 1_700_000_000
        if data is None:
            info.type = tarfile.DIRTYPE
            tf.addfile(info)
        else:
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))


def make_tar(path: Path, members, fmt=tarfile.USTAR_FORMAT, mode="w"):
    """``members``: ``(name, bytes)`` for files, ``(name, None)`` for directories."""
    with tarfile.open(path, mode, format=fmt) as tf:
        _add(tf, members)
    return path


def tar_bytes(members, fmt=tarfile.USTAR_FORMAT) -> bytes:
    """The archive :func:`make_tar` would write, in memory."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tf:
        _add(tf, members)
    return buf.getvalue()


def checksum(block: bytearray) -> bytearray:
    """Sets the header checksum of ``block`` in place (and returns it)."""
    block[148:156] = b" " * 8
    block[148:155] = b"%06o\0" % sum(block)
    return block


def raw_header(name: bytes, size, typeflag: bytes = b"0") -> bytes:
    """A ustar header with a valid checksum; ``size`` is an int or the raw 12-byte field."""
    b = bytearray(BLOCK)
    b[: len(name)] = name
    b[100:107] = b"0000644"
    b[124:136] = size if isinstance(size, bytes) else b"%011o\0" % size
    b[156:157] = typeflag
    b[257:263] = b"ustar\0"
    b[263:265] = b"00"
    return bytes(checksum(b))


def padded(data: bytes) -> bytes:
    return data + b"\0" * (-len(data) % BLOCK)


def samples_members(n, exts=("cls", "txt"), prefix="s"):
    out = []
    for i in range(n):
        for ext in exts:
            out.append((f"{prefix}{i:04d}.{ext}", f"{prefix}{i}-{ext}".encode()))
    return out
