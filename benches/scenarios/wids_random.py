"""wids_random: 20,000 seeded random ``ds[i]`` on a ShardListDataset (one 100,000-sample shard,
``.cls`` + 50-byte ``.txt``, JSON descriptor, ``transformations=[]``); samples/s."""

from __future__ import annotations

import io
import json
import os
import random
import shutil
import tarfile
import tempfile
import time
from pathlib import Path

NAME = "wids_random"
UNIT = "samples/s"
TARGET = 5.0
NSAMPLES = 100_000
READS = 20_000
SEED = 1234


def shard_paths(data_dir: Path) -> tuple[Path, Path]:
    d = data_dir / "wids"
    return d / "wids100k.tar", d / "wids100k.json"


def prepare(data_dir: Path) -> None:
    shard, desc = shard_paths(data_dir)
    if shard.exists() and desc.exists():
        return
    shard.parent.mkdir(parents=True, exist_ok=True)
    rng = random.Random(0)
    alphabet = b"abcdefghijklmnopqrstuvwxyz "
    tmp = shard.with_suffix(".tmp")
    with tarfile.open(tmp, "w", format=tarfile.USTAR_FORMAT) as tf:
        for i in range(NSAMPLES):
            fields = {"cls": str(i % 1000).encode(), "txt": bytes(rng.choice(alphabet) for _ in range(50))}
            for ext, data in fields.items():
                info = tarfile.TarInfo(f"sample{i:06d}.{ext}")
                info.size = len(data)
                info.mtime = 1_700_000_000
                tf.addfile(info, io.BytesIO(data))
    os.replace(tmp, shard)
    desc.write_text(json.dumps({"wids_version": 1, "shardlist": [{"url": shard.name, "nsamples": NSAMPLES}]}))


def warm(path: Path) -> None:
    with open(path, "rb") as f:
        while f.read(1 << 24):
            pass


def run(impl: str, data_dir: Path) -> float:
    from ppwids import ShardListDataset

    shard, desc = shard_paths(data_dir)
    warm(shard)
    # The reference copies every shard into its cache dir first: give it a private one.
    cache = tempfile.mkdtemp(prefix="wids-cache-", dir=data_dir)
    try:
        ds = ShardListDataset(str(desc), transformations=[], cache_dir=cache)
        assert len(ds) == NSAMPLES
        ds[0]  # opens (and for the reference copies and indexes) the shard: not timed
        rng = random.Random(SEED)
        indices = [rng.randrange(NSAMPLES) for _ in range(READS)]
        t0 = time.perf_counter()
        for i in indices:
            ds[i]
        elapsed = time.perf_counter() - t0
        sample = ds[indices[-1]]
        assert sample["__key__"] == f"sample{indices[-1]:06d}", sample["__key__"]
        ds.close()
        return READS / elapsed
    finally:
        shutil.rmtree(cache, ignore_errors=True)
