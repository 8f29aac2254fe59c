"""Shuffle buffers: fill rules, reproducibility, per-pass/epoch variation, bounded memory."""

from __future__ import annotations

import multiprocessing as mp
import os
import pickle
import random
import subprocess
import sys
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ppwebdataset.filters as F
from ppwebdataset._core import ShuffleBuffer
from ppwebdataset.pipeline import DataPipeline


def test_buffer_fill_rules():
    buf = ShuffleBuffer(10, 4, 0)
    assert (buf.bufsize, buf.initial, len(buf)) == (10, 4, 0)
    outs = [buf.push(i) for i in range(4)]
    # Two items per step while filling; output starts once `initial` are held.
    assert [len(o) for o in outs] == [0, 0, 0, 1]
    assert ShuffleBuffer(5, 100, 0).initial == 5
    assert "bufsize=10" in repr(buf)
    rest = buf.push_many(range(4, 30))
    assert len(buf) <= 10
    everything = outs[3] + rest + buf.drain()
    assert sorted(everything) == list(range(30)) and len(buf) == 0
    assert buf.pop() is None


def test_buffer_accepts_any_iterable_and_clears():
    buf = ShuffleBuffer(100, 100, 1)
    assert buf.push_many(x for x in range(10)) == []
    assert len(buf) == 10
    buf.clear()
    assert len(buf) == 0 and buf.drain() == []


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(), max_size=300),
    st.integers(0, 50),
    st.integers(0, 60),
    st.integers(0, 2**64 - 1),
    st.lists(st.integers(1, 40), max_size=10),
)
def test_buffer_batching_does_not_change_order(items, bufsize, initial, seed, cuts):
    whole = ShuffleBuffer(bufsize, initial, seed)
    expected = whole.push_many(items) + whole.drain()
    assert sorted(expected) == sorted(items)
    parts = ShuffleBuffer(bufsize, initial, seed)
    got, pos = [], 0
    for c in cuts:
        got += parts.push_many(items[pos : pos + c])
        pos += c
        assert len(parts) <= max(bufsize, 1)
    for x in items[pos:]:
        got += parts.push(x)
    got += parts.drain()
    assert got == expected


def test_shuffle_seeded_is_reproducible_and_a_permutation():
    data = list(range(500))
    a = list(F.shuffle(100, 10, seed=7)(iter(data)))
    b = list(F.shuffle(100, 10, seed=7)(iter(data)))
    c = list(F.shuffle(100, 10, seed=8)(iter(data)))
    assert a == b != c
    assert sorted(a) == data and a != data
    # The plain iterator function gives the stage's first pass.
    assert list(F._shuffle(iter(data), 100, 10, seed=7)) == a


def test_shuffle_stage_varies_per_pass_but_run_is_reproducible():
    data = list(range(200))
    s1, s2 = F.shuffle(50, seed=3), F.shuffle(50, seed=3)
    passes1 = [list(s1(iter(data))) for _ in range(3)]
    passes2 = [list(s2.run(iter(data))) for _ in range(3)]
    assert passes1 == passes2
    assert passes1[0] != passes1[1] != passes1[2]
    # The stage pickles (spawned workers) with its pass counter.
    s3 = pickle.loads(pickle.dumps(s1))
    assert s3.passes == 3 and "seed=3" in repr(s3)


def test_shuffle_in_datapipeline_differs_per_epoch():
    ds = DataPipeline(lambda: iter(range(100)), F.shuffle(20, seed=1))
    e1, e2 = list(ds), list(ds)
    assert sorted(e1) == sorted(e2) == list(range(100)) and e1 != e2


def test_shuffle_with_rng_matches_webdataset():
    wds_filters = pytest.importorskip("webdataset.filters")
    data = list(range(300))
    for bufsize, initial in [(50, 10), (1, 1), (0, 5), (1000, 100), (7, 20)]:
        ours = list(F.shuffle(bufsize, initial, rng=random.Random(42))(iter(data)))
        ref = list(wds_filters._shuffle(iter(data), bufsize, initial, rng=random.Random(42)))
        assert ours == ref, (bufsize, initial)
    with pytest.raises(ValueError):
        F.shuffle(10, rng=random.Random(1), seed=1)
    with pytest.raises(ValueError):
        F._shuffle(iter([]), rng=random.Random(1), seed=1)


def test_unseeded_shuffle_ignores_global_random():
    data = list(range(200))
    random.seed(0)
    a = list(F.shuffle(100)(iter(data)))
    random.seed(0)
    b = list(F.shuffle(100)(iter(data)))
    assert a != b and sorted(a) == data


def _child_order(conn):
    conn.send(list(F.shuffle(100)(iter(range(200)))))
    conn.close()


def test_unseeded_shuffle_differs_across_forked_workers():
    ctx = mp.get_context("fork")
    orders = []
    for _ in range(2):
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=_child_order, args=(child,))
        proc.start()
        orders.append(parent.recv())
        proc.join(30)
    assert orders[0] != orders[1]


HASHSEED_SCRIPT = """
import json, ppwebdataset.filters as F
keys = [f"key-{i}" for i in range(300)]
s = F.shuffle(64, 8, seed="run-A")
d = F.detshuffle(64, 8, seed="wds-seed-from-env")
out = [list(s(iter(keys))), list(s(iter(keys))), list(d(iter(keys))), list(d(iter(keys)))]
print(json.dumps(out))
"""


def test_order_does_not_depend_on_pythonhashseed():
    outs = []
    for hs in ("0", "1", "12345"):
        env = dict(os.environ, PYTHONHASHSEED=hs)
        env.pop("RANK", None)
        env.pop("WORKER", None)
        proc = subprocess.run(
            [sys.executable, "-c", HASHSEED_SCRIPT], env=env, capture_output=True, text=True, check=True
        )
        outs.append(proc.stdout)
    assert outs[0] == outs[1] == outs[2]


def test_detshuffle_epochs(monkeypatch):
    monkeypatch.delenv("RANK", raising=False)
    monkeypatch.delenv("WORKER", raising=False)
    data = list(range(300))
    d1, d2 = F.detshuffle(64, 8, seed=5), F.detshuffle(64, 8, seed=5)
    e1 = [list(d1.run(iter(data))) for _ in range(3)]
    e2 = [list(d2(iter(data))) for _ in range(3)]
    assert e1 == e2
    assert e1[0] != e1[1] != e1[2]
    assert all(sorted(e) == data for e in e1)
    assert d1.epoch == 2
    # set_epoch (from the main process) selects the epoch of the next pass.
    d3 = F.detshuffle(64, 8, seed=5)
    d3.set_epoch(2)
    assert list(d3(iter(data))) == e1[2]
    assert F.detshuffle(64, 8, seed=6).run(iter(data)) != e1[0]
    d4 = pickle.loads(pickle.dumps(d1))
    assert d4.epoch == 2 and "epoch=2" in repr(d4)


def test_detshuffle_same_order_everywhere_unless_per_worker(monkeypatch):
    data = list(range(300))
    orders = {}
    for rank, worker in [(0, 0), (0, 1), (1, 0)]:
        monkeypatch.setenv("RANK", str(rank))
        monkeypatch.setenv("WORLD_SIZE", "2")
        monkeypatch.setenv("WORKER", str(worker))
        monkeypatch.setenv("NUM_WORKERS", "2")
        orders[rank, worker] = list(F.detshuffle(64, 8, seed=5, per_worker=True)(iter(data)))
        orders[rank, worker, "shared"] = list(F.detshuffle(64, 8, seed=5)(iter(data)))
    assert len({tuple(orders[k]) for k in [(0, 0), (0, 1), (1, 0)]}) == 3
    assert len({tuple(orders[k + ("shared",)]) for k in [(0, 0), (0, 1), (1, 0)]}) == 1
    # The default seed is seed + epoch, as in both references (seed 5, epoch 1 == seed 6, epoch 0).
    d = F.detshuffle(64, 8, seed=5)
    assert d.current_seed(1) == F.detshuffle(64, 8, seed=6).current_seed(0) == 6


def test_shuffle_memory_is_bounded():
    pulled = [0]

    def source(n):
        for i in range(n):
            pulled[0] += 1
            yield i

    for bufsize, initial in [(10, 5), (100, 100), (1, 1), (0, 0), (500, 1)]:
        pulled[0] = 0
        yielded = 0
        worst = 0
        for _ in F.shuffle(bufsize, initial, seed=1)(source(3000)):
            yielded += 1
            worst = max(worst, pulled[0] - yielded)
        assert yielded == 3000
        # Items held = the Rust buffer plus one input chunk on its way in.
        assert worst <= max(bufsize, 1) + F._CHUNK, (bufsize, worst)


def test_python_rng_path_memory_is_bounded():
    pulled = [0]

    def source(n):
        for i in range(n):
            pulled[0] += 1
            yield i

    worst = yielded = 0
    for _ in F.shuffle(50, 10, rng=random.Random(0))(source(1000)):
        yielded += 1
        worst = max(worst, pulled[0] - yielded)
    assert worst <= 50


def failing_source(n, at):
    for i in range(n):
        if i == at:
            raise OSError("network went away")
        yield i


def test_shuffle_source_errors_and_handler():
    with pytest.raises(OSError):
        list(F.shuffle(10, seed=1)(failing_source(100, 50)))
    seen = []
    out = list(F.shuffle(10, seed=1, handler=seen.append)(failing_source(100, 50)))
    assert sorted(out) == list(range(50)) and len(seen) == 1
    out = list(F.shuffle(10, rng=random.Random(1), handler=seen.append)(failing_source(100, 50)))
    assert sorted(out) == list(range(50)) and len(seen) == 2


def test_shuffle_is_reasonably_uniform():
    # Where does item 0 end up, over many seeds, when the buffer holds everything?
    n = 8
    firsts = Counter(list(F._shuffle(iter(range(n)), bufsize=n, initial=n, seed=s))[0] for s in range(4000))
    assert set(firsts) == set(range(n))
    assert min(firsts.values()) > 4000 / n * 0.75


def test_pick_matches_upstream_semantics():
    buf = [10, 11, 12, 13]

    class Fixed:
        def randint(self, a, b):
            return 1

    assert F.pick(buf, Fixed()) == 11
    assert buf == [10, 13, 12]


class Holder:
    pass


def test_buffer_cycles_are_collected():
    import gc
    import weakref

    buf = ShuffleBuffer(10, 10, 0)
    item = Holder()
    item.buf = buf  # item -> buffer -> item
    buf.push(item)
    ref = weakref.ref(item)
    del buf, item
    gc.collect()
    assert ref() is None
