"""decode_native: the decode_batch shards and pipeline with ``decode("rgb8", native=True)``:
``.shuffle(1000).decode("rgb8", native=True).to_tuple("jpg", "cls").batched(64)``; 0.2.86 runs its
PIL ``decode("rgb8")``."""

from __future__ import annotations

import time
from pathlib import Path

from scenarios.decode_batch import BATCH, PER_SHARD, SHARDS, _urls, prepare  # noqa: F401 - prepare is this scenario's too

NAME = "decode_native"
UNIT = "samples/s"
TARGET = 4.0


def _pipeline(wds, urls, impl):
    ds = wds.WebDataset(urls, shardshuffle=False).shuffle(1000)
    ds = ds.decode("rgb8", native=True) if impl == "ours" else ds.decode("rgb8")
    return ds.to_tuple("jpg", "cls").batched(BATCH)


def run(impl: str, data_dir: Path) -> float:
    import warnings

    import ppwebdataset as wds

    warnings.simplefilter("ignore")
    urls = _urls(data_dir)
    for _ in _pipeline(wds, urls[:1], impl):  # warm-up, as in decode_batch
        pass
    ds = _pipeline(wds, urls, impl)
    t0 = time.perf_counter()
    count = 0
    for images, labels in ds:
        assert images.shape[1:] == (96, 96, 3), images.shape
        count += len(labels)
    seconds = time.perf_counter() - t0
    assert count == SHARDS * PER_SHARD, count
    return count / seconds
