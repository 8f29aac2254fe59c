"""stream_large: 200 samples of a .cls and a 4,000,000-byte .bin; MB/s, next to a plain readinto loop."""

from __future__ import annotations

import os
from pathlib import Path

from scenarios._common import Timer, rss_bytes, write_tar

NAME = "stream_large"
UNIT = "MB/s"
TARGET = 4.0
# Also measured: the page-cache limit, a readinto loop over the same file; ours must reach 40% of it.
EXTRA_IMPLS = {"readinto": 0.40}
N = 200
SIZE = 4_000_000


def prepare(data_dir: Path) -> None:
    path = data_dir / "large.tar"
    if path.exists():
        return
    blob = os.urandom(SIZE)
    write_tar(path, ((f"{i:05d}", {"cls": str(i).encode(), "bin": blob}) for i in range(N)))


def _warm(path: str) -> None:
    # Every implementation reads from a warm page cache, like the readinto baseline.
    with open(path, "rb") as f:
        while f.read(1 << 24):
            pass


def run(impl: str, data_dir: Path) -> dict:
    path = str(data_dir / "large.tar")
    _warm(path)
    size = os.path.getsize(path)
    if impl == "readinto":
        buf = bytearray(1 << 20)
        view = memoryview(buf)
        with Timer() as t, open(path, "rb", buffering=0) as f:
            while f.readinto(view):
                pass
        return {"value": size / t.seconds / 1e6}
    import ppwebdataset as wds

    ds = wds.WebDataset(path, shardshuffle=False)  # imports Paddle (0.2.86 does so at import)
    base = rss_bytes()
    peak = base
    total = 0
    with Timer() as t:
        for sample in ds:
            total += len(sample["bin"])
            peak = max(peak, rss_bytes())
    assert total == N * SIZE, total
    return {"value": size / t.seconds / 1e6, "extra": {"peak_growth_MB": (peak - base) / 1e6}}
