"""loader: the decode_batch shards through
paddle.io.DataLoader(ds.decode("rgb8").to_tuple("jpg", "cls"), batch_size=64, num_workers=2)."""

from __future__ import annotations

from pathlib import Path

from scenarios._common import Timer
from scenarios.decode_batch import PER_SHARD, SHARDS, _urls, prepare  # noqa: F401 - prepare is this scenario's too

NAME = "loader"
UNIT = "samples/s"
TARGET = 1.5


def run(impl: str, data_dir: Path) -> float:
    import warnings

    import paddle

    import ppwebdataset as wds

    warnings.simplefilter("ignore")
    ds = wds.WebDataset(_urls(data_dir), shardshuffle=False).decode("rgb8").to_tuple("jpg", "cls")
    loader = paddle.io.DataLoader(ds, batch_size=64, num_workers=2)
    count = 0
    with Timer() as t:
        for images, _labels in loader:
            count += images.shape[0]
    assert count == SHARDS * PER_SHARD, count
    return count / t.seconds
