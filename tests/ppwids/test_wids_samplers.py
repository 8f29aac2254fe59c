"""Samplers: wids-compatible orders, epochs, even distributed splits, Paddle DataLoader and launch."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from ppwids import ChunkedSampler, DistributedChunkedSampler, ShardedSampler, ShardListDataset
from ppwids.wids import ShardListSampler


class Sized:
    def __init__(self, n, lengths=None):
        self.n = n
        self.lengths = lengths or [n]

    def __len__(self):
        return self.n


def test_orders_match_the_reference(tmp_path, reference):
    lengths = [5, 3, 7, 1]
    code = textwrap.dedent(
        f"""
        import json, ppwids
        from ppwids.wids import ShardListSampler, ChunkedSampler
        class D:
            lengths = {lengths!r}
            def __len__(self): return sum(self.lengths)
        out = {{}}
        s = ShardListSampler(D(), seed=7)
        out["shardlist"] = [list(s), list(s), list(s)]
        c = ChunkedSampler(D(), chunksize=4, seed=3)
        out["chunked"] = [list(c), list(c)]
        f = ChunkedSampler(D(), chunksize=4, seed=3, shufflefirst=True)
        out["first"] = [list(f)]
        r = ChunkedSampler(D(), num_samples=(2, 11), chunksize=3, seed=1)
        r.set_epoch(5)
        out["range"] = [list(r)]
        print(json.dumps(out))
        """
    )
    ref = json.loads(reference(code, cwd=tmp_path).strip().splitlines()[-1])
    d = Sized(sum(lengths), lengths)
    s = ShardListSampler(d, seed=7)
    c = ChunkedSampler(d, chunksize=4, seed=3)
    f = ChunkedSampler(d, chunksize=4, seed=3, shufflefirst=True)
    r = ChunkedSampler(d, num_samples=(2, 11), chunksize=3, seed=1)
    r.set_epoch(5)
    ours = {
        "shardlist": [list(s), list(s), list(s)],
        "chunked": [list(c), list(c)],
        "first": [list(f)],
        "range": [list(r)],
    }
    assert ours == ref
    assert ShardedSampler is ShardListSampler


def test_epochs_are_permutations_and_reproducible():
    d = Sized(23, [10, 13])
    c = ChunkedSampler(d, chunksize=5, seed=11)
    epochs = [list(c) for _ in range(3)]
    assert all(sorted(e) == list(range(23)) for e in epochs)
    assert epochs[0][:5] != epochs[1][:5] or epochs[1] != epochs[2]
    c.set_epoch(1)
    assert list(c) == epochs[1] and c.epoch == 2
    assert len(c) == 23 and len(ShardListSampler(d)) == 23
    assert list(ChunkedSampler(d, shuffle=False, chunksize=4)) == list(range(23))
    s = ShardListSampler(d, seed=2)
    first = list(s)
    assert sorted(first[:10]) == list(range(10))  # epoch 0 keeps the shard order
    s.set_epoch(0)
    assert list(s) == first


@pytest.mark.parametrize("n", [0, 1, 7, 10, 11, 100])
@pytest.mark.parametrize("world", [1, 2, 3, 4])
def test_distributed_split_is_even_disjoint_and_complete(n, world):
    d = Sized(n)
    parts = [list(DistributedChunkedSampler(d, rank=r, num_replicas=world, chunksize=3, seed=5)) for r in range(world)]
    per_rank = -(-n // world)
    assert [len(p) for p in parts] == [per_rank] * world
    assert [len(DistributedChunkedSampler(d, rank=r, num_replicas=world)) for r in range(world)] == [per_rank] * world
    flat = [i for p in parts for i in p]
    assert sorted(set(flat)) == list(range(n))
    padding = per_rank * world - n
    assert len(flat) - len(set(flat)) == padding  # only the wrapped-around padding repeats
    dropped = [list(DistributedChunkedSampler(d, rank=r, num_replicas=world, drop_last=True)) for r in range(world)]
    assert [len(p) for p in dropped] == [n // world] * world
    flat = [i for p in dropped for i in p]
    assert len(flat) == len(set(flat)) and all(0 <= i < n for i in flat)


def test_rank_resolution(monkeypatch):
    d = Sized(10)
    for var in ("RANK", "WORLD_SIZE", "PADDLE_TRAINER_ID", "PADDLE_TRAINERS_NUM"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("PADDLE_TRAINER_ID", "1")
    monkeypatch.setenv("PADDLE_TRAINERS_NUM", "2")
    s = DistributedChunkedSampler(d)
    assert (s.rank, s.num_replicas) == (1, 2) and sorted(s) == [5, 6, 7, 8, 9]
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "5")
    assert (DistributedChunkedSampler(d).rank, DistributedChunkedSampler(d).num_replicas) == (1, 5)
    explicit = DistributedChunkedSampler(d, rank=0)  # an explicit rank 0 is not "unset"
    assert explicit.rank == 0 and sorted(explicit) == [0, 1]
    with pytest.raises(ValueError, match="invalid rank"):
        DistributedChunkedSampler(d, rank=5)


def _index_of(sample):
    return np.array(sample["__index__"], dtype=np.int64)


def test_paddle_dataloader_with_workers(tmp_path, make_tar, members):
    paddle = pytest.importorskip("paddle")
    shards = []
    for k in range(3):
        p = make_tar(tmp_path / f"s{k}.tar", members(8, f"s{k}_"))
        shards.append({"url": str(p), "nsamples": 8})
    ds = ShardListDataset(shards, transformations=[_index_of], lru_size=2)
    sampler = ChunkedSampler(ds, chunksize=5, seed=1)
    assert isinstance(sampler, paddle.io.Sampler) and isinstance(ds, paddle.io.Dataset)
    batches = paddle.io.BatchSampler(sampler=sampler, batch_size=4)
    loader = paddle.io.DataLoader(ds, batch_sampler=batches, num_workers=2)
    seen = [int(i) for batch in loader for i in np.asarray(batch).reshape(-1)]
    assert sorted(seen) == list(range(24))


SCRIPT = textwrap.dedent(
    """
    import json, sys
    from ppwids import DistributedChunkedSampler, ShardListDataset
    desc, outdir = sys.argv[1:3]
    ds = ShardListDataset(desc, transformations=[])
    sampler = DistributedChunkedSampler(ds, chunksize=4, seed=3)
    indices = list(sampler)
    keys = [ds[i]["__key__"] for i in indices]
    with open(f"{outdir}/rank{sampler.rank}.json", "w") as f:
        json.dump({"world": sampler.num_replicas, "indices": indices, "keys": keys}, f)
    """
)


def test_paddle_distributed_launch_splits_the_dataset(tmp_path, make_tar, members):
    pytest.importorskip("paddle")
    for k in range(2):
        make_tar(tmp_path / f"d{k}.tar", members(9, f"d{k}_"))
    desc = tmp_path / "d.json"
    desc.write_text(
        json.dumps({"wids_version": 1, "shardlist": [{"url": f"d{k}.tar", "nsamples": 9} for k in range(2)]})
    )
    script = tmp_path / "rank_script.py"
    script.write_text(SCRIPT)
    out = tmp_path / "out"
    out.mkdir()
    argv = [sys.executable, "-m", "paddle.distributed.launch", "--nproc_per_node", "2", "--devices", ""]
    argv += ["--log_dir", str(tmp_path / "logs"), str(script), str(desc), str(out)]
    env = {k: v for k, v in __import__("os").environ.items() if k not in ("RANK", "WORLD_SIZE")}
    proc = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    logs = "".join(p.read_text() for p in (tmp_path / "logs").glob("*") if p.is_file())
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:] + logs[-3000:]
    results = [json.loads((out / f"rank{r}.json").read_text()) for r in range(2)]
    assert [r["world"] for r in results] == [2, 2]
    a, b = (r["indices"] for r in results)
    assert len(a) == len(b) == 9
    assert not set(a) & set(b) and sorted(a + b) == list(range(18))
    keys = sorted(results[0]["keys"] + results[1]["keys"])
    assert keys == sorted(f"d{k}_{i:04d}" for k in range(2) for i in range(9))
