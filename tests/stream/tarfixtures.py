"""Building tar shards for the streaming tests (with Python's tarfile)."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path


def make_tar(path: Path, members, fmt=tarfile.USTAR_FORMAT, mode="w"):
    """``members``: ``(name, bytes)`` for files, ``(name, None)`` for directories."""
    with tarfile.open(path, mode, format=fmt) as tf:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.mtime = 1_700_000_000
            if data is None:
                info.type = tarfile.DIRTYPE
                tf.addfile(info)
            else:
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
    return path


def samples_members(n, exts=("cls", "txt"), prefix="s"):
    out = []
    for i in range(n):
        for ext in exts:
            out.append((f"{prefix}{i:04d}.{ext}", f"{prefix}{i}-{ext}".encode()))
    return out
