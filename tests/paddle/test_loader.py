"""Pipelines under paddle.io.DataLoader: every sample exactly once per epoch, any worker count."""

from __future__ import annotations

import numpy as np
import pytest

paddle = pytest.importorskip("paddle")

from shards import make_shards  # noqa: E402

import ppwebdataset as wds  # noqa: E402
from ppwebdataset.utils import paddle_rank_info, paddle_worker_info  # noqa: E402


def gid(sample):
    # A 0-d array, not a scalar: Paddle's DataLoader (3.3) drops plain scalar samples when batch_size=None.
    return np.array(int(sample["cls"]), dtype=np.int64)


def flatten(batches):
    out = []
    for b in batches:
        arr = b.numpy() if hasattr(b, "numpy") else np.asarray(b)
        out.extend(int(x) for x in np.ravel(arr))
    return out


@pytest.fixture(scope="module")
def urls(tmp_path_factory):
    return make_shards(tmp_path_factory.mktemp("loader"))


def test_is_paddle_iterable_dataset(urls):
    ds = wds.WebDataset(urls, shardshuffle=False)
    assert isinstance(ds, paddle.io.IterableDataset)
    assert isinstance(wds.DataPipeline(wds.SimpleShardList(urls)), paddle.io.IterableDataset)


@pytest.mark.parametrize("num_workers", [0, 1, 2, 3])
def test_each_sample_once_per_epoch(urls, num_workers):
    ds = wds.WebDataset(urls, shardshuffle=False).map(gid)
    loader = paddle.io.DataLoader(ds, batch_size=None, num_workers=num_workers)
    for _epoch in range(2):
        got = flatten(loader)
        assert sorted(got) == list(range(60))


@pytest.mark.parametrize("num_workers", [0, 2])
def test_batched_in_dataset(urls, num_workers):
    ds = wds.WebDataset(urls, shardshuffle=5, seed=1).shuffle(20).map(gid).batched(8)
    loader = paddle.io.DataLoader(ds, batch_size=None, num_workers=num_workers)
    got = flatten(loader)
    assert sorted(got) == list(range(60))


@pytest.mark.parametrize("num_workers", [0, 2])
def test_batched_by_loader(urls, num_workers):
    ds = wds.WebDataset(urls, shardshuffle=False).map(lambda s: (gid(s), np.full(3, gid(s), dtype=np.float32)))
    loader = paddle.io.DataLoader(ds, batch_size=7, num_workers=num_workers)
    ids, feats = [], []
    for a, b in loader:
        ids.extend(int(x) for x in a.numpy())
        feats.extend(b.numpy()[:, 0].tolist())
    assert sorted(ids) == list(range(60)) and sorted(feats) == [float(i) for i in range(60)]


def test_more_workers_than_shards_warns_not_fails(urls):
    ds = wds.WebDataset(urls[:2], shardshuffle=False).map(gid)
    loader = paddle.io.DataLoader(ds, batch_size=None, num_workers=3)
    assert sorted(flatten(loader)) == list(range(20))


def test_custom_workersplitter_is_honoured(urls):
    calls = []

    def only_first(src):
        calls.append(1)
        for i, item in enumerate(src):
            if i == 0:
                yield item

    ds = wds.WebDataset(urls, shardshuffle=False, workersplitter=only_first).map(gid)
    assert sorted(int(x) for x in ds) == list(range(10)) and calls


def test_rank_sources(monkeypatch):
    for k in ("RANK", "WORLD_SIZE", "PADDLE_TRAINER_ID", "PADDLE_TRAINERS_NUM", "WORKER", "NUM_WORKERS"):
        monkeypatch.delenv(k, raising=False)
    assert paddle_rank_info() == (0, 1)
    monkeypatch.setenv("PADDLE_TRAINER_ID", "1")
    monkeypatch.setenv("PADDLE_TRAINERS_NUM", "4")
    assert paddle_rank_info() == (1, 4)
    monkeypatch.setenv("RANK", "2")
    monkeypatch.setenv("WORLD_SIZE", "3")
    assert paddle_rank_info() == (2, 3)
    monkeypatch.setenv("WORKER", "1")
    monkeypatch.setenv("NUM_WORKERS", "2")
    assert paddle_worker_info() == (2, 3, 1, 2)


def test_split_by_node_round_robin(monkeypatch, urls):
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    got = [d["url"] for d in wds.split_by_node(iter([dict(url=u) for u in urls]))]
    assert got == urls[1::2]
    with pytest.raises(ValueError, match="nodesplitter"):
        list(wds.WebDataset(urls, shardshuffle=False))
