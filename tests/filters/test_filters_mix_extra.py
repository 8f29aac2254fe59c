"""Mixing datasets, the extra dataset wrappers and MultiLoader."""

from __future__ import annotations

import os
import pickle
import random
from collections import Counter

import pytest

from ppwebdataset import mix
from ppwebdataset.extradatasets import MockDataset, repeatedly, with_epoch, with_length
from ppwebdataset.multi import MultiLoader
from ppwebdataset.pipeline import DataPipeline

# --------------------------------------------------------------------------- round robin


def test_round_robin():
    assert list(mix.RoundRobin([range(3), range(10, 15)])) == [0, 10, 1, 11, 2, 12]
    assert list(mix.RoundRobin([range(3), range(10, 15)], longest=True)) == [0, 10, 1, 11, 2, 12, 13, 14]
    assert list(mix.RoundRobin([range(2), [], range(5, 7)], longest=True)) == [0, 5, 1, 6]
    assert list(mix.round_robin_shortest()) == []
    assert list(mix.round_robin_longest(iter("ab"), iter("xyz"))) == ["a", "x", "b", "y", "z"]
    # list() works although paddle's IterableDataset.__len__ raises RuntimeError.
    with pytest.raises(TypeError):
        len(mix.RoundRobin([]))


# --------------------------------------------------------------------------- random mix


def test_random_samples_weights_and_longest():
    rng = random.Random(0)
    out = list(mix.random_samples([iter(["a"] * 4000), iter(["b"] * 4000)], probs=[1, 3], rng=rng))
    counts = Counter(out)
    assert 0.2 < counts["a"] / len(out) < 0.3
    out = list(mix.random_samples([iter(range(5)), iter(range(10, 30))], longest=True, rng=rng))
    assert sorted(out) == list(range(5)) + list(range(10, 30))
    # A zero weight is never drawn, and does not make `longest` spin.
    out = list(mix.random_samples([iter(range(5)), iter(range(10, 15))], probs=[1, 0], longest=True, rng=rng))
    assert out == list(range(5))
    with pytest.raises(ValueError):
        list(mix.random_samples([iter([1])], probs=[0]))
    with pytest.raises(ValueError):
        list(mix.random_samples([iter([1])], probs=[1, 2]))
    with pytest.raises(ValueError):
        mix.RandomMix([range(2)], probs=[-1])


def test_random_mix_seeded_per_instance_and_pass(monkeypatch):
    monkeypatch.delenv("RANK", raising=False)
    monkeypatch.delenv("WORKER", raising=False)
    ds = [range(100), range(1000, 1100)]
    a, b = mix.RandomMix(ds, seed=4), mix.RandomMix(ds, seed=4)
    pa = [list(a) for _ in range(2)]
    random.seed(123)  # the global generator plays no part
    pb = [list(b) for _ in range(2)]
    assert pa == pb and pa[0] != pa[1]
    monkeypatch.setenv("WORKER", "1")
    monkeypatch.setenv("NUM_WORKERS", "2")
    assert list(mix.RandomMix(ds, seed=4)) != pa[0]


def test_random_mix_unseeded_differs():
    ds = [range(200), range(1000, 1200)]
    random.seed(0)
    a = list(mix.RandomMix(ds, longest=True))
    random.seed(0)
    b = list(mix.RandomMix(ds, longest=True))
    assert a != b and sorted(a) == sorted(b)


def test_random_mix_pickles():
    m = pickle.loads(pickle.dumps(mix.RandomMix([[1, 2], [3]], probs=[1, 1], longest=True, seed=1)))
    assert sorted(m) == [1, 2, 3]


# --------------------------------------------------------------------------- extra datasets


def test_mock_dataset():
    ds = MockDataset({"x": 1}, 3)
    assert list(ds) == [{"x": 1}] * 3
    with pytest.raises(TypeError):  # no __len__ in either reference
        len(ds)


def test_repeatedly_as_dataset_and_stage():
    assert list(repeatedly(range(3), nepochs=2)) == [0, 1, 2, 0, 1, 2]
    assert list(repeatedly(range(3), nbatches=5)) == [0, 1, 2, 0, 1]
    assert list(repeatedly([], nepochs=None)) == []  # an empty pass ends it, no endless loop
    r = repeatedly(range(3), nepochs=2, length=6)
    assert len(r) == 6
    with pytest.raises(TypeError):
        len(repeatedly(range(3)))
    stage = repeatedly(nepochs=3)
    assert list(stage.run([7, 8])) == [7, 8, 7, 8, 7, 8]
    with pytest.raises(ValueError):
        iter(repeatedly())
    ds = DataPipeline(lambda: iter(range(2)), repeatedly(nbatches=3))
    assert list(ds) == [0, 1]  # a one-shot iterator cannot be repeated


def test_with_epoch_wrapper_continues_across_epochs():
    w = with_epoch(range(5), 3)
    assert len(w) == 3
    assert [list(w) for _ in range(3)] == [[0, 1, 2], [3, 4, 0], [1, 2, 3]]
    assert list(with_epoch(range(2), 5)) == [0, 1, 0, 1, 0]
    assert list(with_epoch([], 5)) == []
    w2 = pickle.loads(pickle.dumps(w))
    assert list(w2) == [0, 1, 2]


def test_with_epoch_as_stage():
    stage = with_epoch(4)
    assert stage.length == 4 and stage.dataset is None
    ds = DataPipeline(lambda: iter(range(10)), stage)
    assert list(ds) == [0, 1, 2, 3]
    with pytest.raises(ValueError):
        iter(stage)
    with pytest.raises(TypeError):
        with_epoch(range(3))


def test_with_length_picklable():
    w = with_length(range(4), 10)
    w2 = pickle.loads(pickle.dumps(w))
    assert len(w2) == 10 and list(w2) == [0, 1, 2, 3]
    assert type(w2) is with_length
    assert list(w.run(iter([5, 6]))) == [5, 6]


# --------------------------------------------------------------------------- MultiLoader


class WorkerSplit:
    """Yields its share of range(n) by the WORKER/NUM_WORKERS environment."""

    def __init__(self, n, fail_at=None, crash_at=None):
        self.n, self.fail_at, self.crash_at = n, fail_at, crash_at

    def __iter__(self):
        w, nw = int(os.environ["WORKER"]), int(os.environ["NUM_WORKERS"])
        for i in range(w, self.n, nw):
            if i == self.fail_at:
                raise KeyError(f"bad item {i}")
            if i == self.crash_at:
                os._exit(3)
            yield {"i": i, "worker": w}


def test_multiloader_splits_and_collects():
    out = list(MultiLoader(WorkerSplit(50), workers=3, queue_size=4))
    assert sorted(s["i"] for s in out) == list(range(50))
    assert {s["worker"] for s in out} == {0, 1, 2}


def test_multiloader_reraises_worker_errors():
    with pytest.raises(RuntimeError, match=r"worker 1 failed: KeyError\('bad item 7'\)") as info:
        list(MultiLoader(WorkerSplit(50, fail_at=7), workers=2))
    assert isinstance(info.value.__cause__, KeyError)


def test_multiloader_reports_crashed_worker():
    with pytest.raises(RuntimeError, match="exited with code 3"):
        list(MultiLoader(WorkerSplit(50, crash_at=9), workers=2))


def test_multiloader_early_stop_terminates_workers():
    loader = MultiLoader(WorkerSplit(10**7), workers=2, queue_size=2)
    it = iter(loader)
    first = next(it)
    procs = list(loader.pids)
    assert "i" in first and len(procs) == 2
    it.close()
    assert all(not p.is_alive() for p in procs)
    # And it can be iterated again.
    assert len(list(MultiLoader(WorkerSplit(6), workers=2))) == 6
    with pytest.raises(ValueError):
        MultiLoader(WorkerSplit(1), workers=0)
