"""decode_native: the decode_batch shards and pipeline with ``decode("rgb8", native=True)``:
``.shuffle(1000).decode("rgb8", native=True).to_tuple("jpg", "cls").batched(64)``; 0.2.86 runs its
PIL ``decode("rgb8")``."""

from __future__ import annotations

from pathlib import Path

from scenarios.decode_batch import BATCH, measure, prepare  # noqa: F401 - prepare is this scenario's too

NAME = "decode_native"
UNIT = "samples/s"
TARGET = 4.0


def _pipeline(wds, urls, impl):
    ds = wds.WebDataset(urls, shardshuffle=False).shuffle(1000)
    ds = ds.decode("rgb8", native=True) if impl == "ours" else ds.decode("rgb8")
    return ds.to_tuple("jpg", "cls").batched(BATCH)


def run(impl: str, data_dir: Path) -> float:
    return measure(lambda wds, urls: _pipeline(wds, urls, impl), data_dir)
