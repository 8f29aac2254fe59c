"""resume_seek: exact epochs over 4 shards × 20,000 tiny samples, one rank. Time to the first batch after
resuming at 90% of the epoch (a new dataset and loader from the saved JSON state), in % of a full epoch.

0.2.86 has no resumable loader, so there is no reference figure: the check is ours <= LIMIT. The extras
report the Rust header scan (index build without a sidecar) in seconds per GB, the same with the
sidecar reused, and the figure with a 1,000-sample shuffle.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from scenarios._common import Timer, write_tar

NAME = "resume_seek"
UNIT = "% of epoch"
TARGET = None
REFERENCE = False  # no 0.2.86 counterpart
LIMIT = 5.0  # the resumed first batch may take at most this % of a full epoch
NSHARDS, PER_SHARD, BATCH = 4, 20_000, 64


def shard_paths(data_dir: Path):
    return [data_dir / f"seek-{s}.tar" for s in range(NSHARDS)]


def prepare(data_dir: Path) -> None:
    text = b"x" * 50
    for s, path in enumerate(shard_paths(data_dir)):
        if not path.exists():
            ids = range(s * PER_SHARD, (s + 1) * PER_SHARD)
            write_tar(path, ((f"{i:07d}", {"cls": str(i % 1000).encode(), "txt": text}) for i in ids))


def _loader(urls, shuffle):
    import ppwebdataset as wds

    ds = wds.WebDataset(urls, exact=True, seed=0, shardshuffle=True)
    if shuffle:
        ds = ds.shuffle(shuffle)
    return wds.WebLoader(ds.to_tuple("__key__", "cls").map_tuple(str, int), batch_size=BATCH, num_workers=0)


def _ratio(urls, shuffle):
    with Timer() as full:
        nbatches = sum(1 for _ in _loader(urls, shuffle))
    stopped = _loader(urls, shuffle)
    it = iter(stopped)
    for _ in range(nbatches * 9 // 10):
        next(it)
    state = json.dumps(stopped.state_dict())
    with Timer() as first:
        resumed = _loader(urls, shuffle)
        resumed.set_state_dict(json.loads(state))
        next(iter(resumed))
    return 100.0 * first.seconds / full.seconds, full.seconds, first.seconds


def run(impl: str, data_dir: Path) -> dict:
    from ppwebdataset.exact import scan_counts

    urls = [str(p) for p in shard_paths(data_dir)]
    for u in urls:  # warm the page cache, drop the sidecars: time the header scan itself
        Path(u).read_bytes()
        Path(u + ".ppwidx").unlink(missing_ok=True)
    gb = sum(os.path.getsize(u) for u in urls) / 1e9
    t0 = time.perf_counter()
    assert scan_counts(urls) == [PER_SHARD] * NSHARDS
    scan = time.perf_counter() - t0
    t0 = time.perf_counter()
    scan_counts(urls)
    cached = time.perf_counter() - t0
    pct, full, first = _ratio(urls, 0)
    pct_shuffled, _, _ = _ratio(urls, 1000)
    extra = {
        "epoch_s": full,
        "first_batch_s": first,
        "shuffled_pct": pct_shuffled,
        "scan_s_per_gb": scan / gb,
        "sidecar_s_per_gb": cached / gb,
    }
    return {"value": pct, "extra": extra}


__all__ = ["NAME", "UNIT", "TARGET", "REFERENCE", "LIMIT", "prepare", "run"]
