"""decode_batch: 4 shards x 1,000 samples (96x96 JPEG, .cls, small .json) through
``.shuffle(1000).decode("rgb8").to_tuple("jpg", "cls").batched(64)``."""

from __future__ import annotations

import io
import json
import os
import tarfile
import time
from pathlib import Path

NAME = "decode_batch"
UNIT = "samples/s"
TARGET = 1.5
SHARDS = 4
PER_SHARD = 1000
BATCH = 64


def _jpeg(rng, i):
    import numpy as np
    from PIL import Image

    # A smooth gradient plus noise: decodes like a photo, not like a flat tile.
    y, x = np.mgrid[0:96, 0:96]
    base = np.stack([(x * 2 + i) % 256, (y * 2 + 3 * i) % 256, ((x + y) + 7 * i) % 256], axis=-1)
    img = np.clip(base + rng.integers(-20, 21, size=base.shape), 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(img, "RGB").save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def _write_shard(path: Path, shard: int, rng):
    tmp = path.with_suffix(".tmp")
    with tarfile.open(tmp, "w", format=tarfile.USTAR_FORMAT) as tf:
        for j in range(PER_SHARD):
            i = shard * PER_SHARD + j
            key = f"s{shard}/{i:06d}"
            fields = {
                "jpg": _jpeg(rng, i),
                "cls": str(i % 100).encode(),
                "json": json.dumps({"id": i, "caption": f"sample {i}"}).encode(),
            }
            for ext, data in fields.items():
                info = tarfile.TarInfo(f"{key}.{ext}")
                info.size = len(data)
                info.mtime = 1_700_000_000
                tf.addfile(info, io.BytesIO(data))
    os.replace(tmp, path)


def _urls(data_dir: Path):
    return [str(data_dir / f"shard-{s}.tar") for s in range(SHARDS)]


def prepare(data_dir: Path) -> None:
    import numpy as np

    rng = np.random.default_rng(0)
    for s, url in enumerate(_urls(data_dir)):
        if not Path(url).exists():
            _write_shard(Path(url), s, rng)


def _pipeline(wds, urls):
    return wds.WebDataset(urls, shardshuffle=False).shuffle(1000).decode("rgb8").to_tuple("jpg", "cls").batched(BATCH)


def run(impl: str, data_dir: Path) -> float:
    return measure(_pipeline, data_dir)


def measure(pipeline, data_dir: Path) -> float:
    """Samples/s of ``pipeline(wds, urls)`` over the shards (also used by decode_native)."""
    import warnings

    import ppwebdataset as wds

    warnings.simplefilter("ignore")
    urls = _urls(data_dir)
    # Warm-up on one shard: imports, decoder set-up and page cache are not measured.
    for _ in pipeline(wds, urls[:1]):
        pass
    ds = pipeline(wds, urls)
    t0 = time.perf_counter()
    count = 0
    for images, labels in ds:
        assert images.shape[1:] == (96, 96, 3), images.shape
        count += len(labels)
    seconds = time.perf_counter() - t0
    assert count == SHARDS * PER_SHARD, count
    return count / seconds
