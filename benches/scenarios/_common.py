"""Helpers shared by the scenarios (data generation, RSS sampling)."""

from __future__ import annotations

import io
import os
import tarfile
import time
from pathlib import Path


def write_tar(path: Path, samples, mtime=1_700_000_000):
    """Write ``[(key, {ext: bytes})]`` with Python's tarfile into ``path`` (atomically)."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    with tarfile.open(tmp, "w", format=tarfile.USTAR_FORMAT) as tf:
        for key, fields in samples:
            for ext, data in fields.items():
                info = tarfile.TarInfo(f"{key}.{ext}")
                info.size = len(data)
                info.mtime = mtime
                tf.addfile(info, io.BytesIO(data))
    # Flush before measuring: background write-back of a fresh shard would skew the first runs.
    with open(tmp, "rb+") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class Timer:
    def __enter__(self):
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.t0
