"""stream_tiny: one shard of 100,000 tiny samples (.cls + 50-byte .txt), iterated without decoding."""

from __future__ import annotations

from pathlib import Path

from scenarios._common import Timer, write_tar

NAME = "stream_tiny"
UNIT = "samples/s"
TARGET = 25.0
N = 100_000


def prepare(data_dir: Path) -> None:
    path = data_dir / "tiny.tar"
    if path.exists():
        return
    text = b"x" * 50
    write_tar(path, ((f"{i:07d}", {"cls": str(i % 1000).encode(), "txt": text}) for i in range(N)))


def run(impl: str, data_dir: Path) -> float:
    import ppwebdataset as wds

    path = str(data_dir / "tiny.tar")
    WebDataset = wds.WebDataset  # resolve (and import) before timing: 0.2.86 imports eagerly
    with Timer() as t:
        count = 0
        for _ in WebDataset(path, shardshuffle=False):
            count += 1
    assert count == N, count
    return count / t.seconds
