"""loader: 4 shards × 1,000 samples (96×96 JPEG + .cls + small .json) through
paddle.io.DataLoader(ds.decode("rgb8").to_tuple("jpg", "cls"), batch_size=64, num_workers=2)."""

from __future__ import annotations

import io
import json
from pathlib import Path

from scenarios._common import Timer, write_tar

NAME = "loader"
UNIT = "samples/s"
TARGET = 1.5
NSHARDS = 4
PER_SHARD = 1000


def prepare(data_dir: Path) -> None:
    if (data_dir / f"img-{NSHARDS - 1:04d}.tar").exists():
        return
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for s in range(NSHARDS):
        samples = []
        for i in range(PER_SHARD):
            # Smooth images compress like photos; pure noise would make JPEG decoding unrealistically slow.
            base = rng.integers(0, 255, size=(12, 12, 3), dtype=np.uint8)
            img = Image.fromarray(base).resize((96, 96), Image.BILINEAR)
            buf = io.BytesIO()
            img.save(buf, format="JPEG", quality=90)
            meta = json.dumps({"id": s * PER_SHARD + i, "source": "synthetic"}).encode()
            samples.append((f"{s:02d}{i:06d}", {"jpg": buf.getvalue(), "cls": str(i % 10).encode(), "json": meta}))
        write_tar(data_dir / f"img-{s:04d}.tar", samples)


def urls(data_dir: Path) -> list[str]:
    return [str(data_dir / f"img-{s:04d}.tar") for s in range(NSHARDS)]


def run(impl: str, data_dir: Path) -> float:
    import paddle

    import ppwebdataset as wds

    ds = wds.WebDataset(urls(data_dir), shardshuffle=False).decode("rgb8").to_tuple("jpg", "cls")
    loader = paddle.io.DataLoader(ds, batch_size=64, num_workers=2)
    count = 0
    with Timer() as t:
        for images, _labels in loader:
            count += images.shape[0]
    assert count == NSHARDS * PER_SHARD, count
    return count / t.seconds
