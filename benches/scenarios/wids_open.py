"""wids_open: first open of a 100,000-sample shard through ShardListDataset (index build, no
sidecar or cache reused); opens/s.

Both implementations start from a warm page cache. The reference always copies a local
shard into its cache dir before indexing it; that copy is made (untimed) before the clock
starts, so only opening and indexing are compared.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

from scenarios.wids_random import NSAMPLES, prepare, shard_paths, warm

NAME = "wids_open"
UNIT = "opens/s"
TARGET = 10.0

__all__ = ["NAME", "UNIT", "TARGET", "prepare", "run"]


def run(impl: str, data_dir: Path) -> float:
    # Resolved before the clock starts: both packages import Paddle along with the class.
    from ppwids import ShardListDataset

    shard, desc = shard_paths(data_dir)
    warm(shard)
    cache = tempfile.mkdtemp(prefix="wids-open-", dir=data_dir)
    try:
        if impl == "ref":
            # The reference's cache name for an explicit cache_dir is the basename.
            shutil.copyfile(shard, Path(cache) / shard.name)
            warm(Path(cache) / shard.name)
            kw = {}
        else:
            kw = {"index_dir": None}  # never reuse or write a sidecar index
        t0 = time.perf_counter()
        ds = ShardListDataset(str(desc), transformations=[], cache_dir=cache, **kw)
        sample = ds[0]
        elapsed = time.perf_counter() - t0
        assert sample["__key__"] == "sample000000" and len(ds) == NSAMPLES
        ds.close()
        return 1.0 / elapsed
    finally:
        shutil.rmtree(cache, ignore_errors=True)
