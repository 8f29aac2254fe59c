"""The exact-epoch planner on its own: coverage, balance, determinism (unit and property tests)."""

from __future__ import annotations

import collections

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ppwebdataset.exact import ShuffledPositions, buffer_order, plan, plan_epoch, rank_totals, shard_order

UNEVEN = (37, 50, 50, 13, 61, 50, 40)


def flatten(ranges):
    return [(s, i) for s, first, n in ranges for i in range(first, first + n)]


def seen(p):
    return collections.Counter(x for rank in p for w in rank for x in flatten(w))


def everything(counts):
    return {(s, i) for s, n in enumerate(counts) for i in range(n)}


def test_uneven_shards_two_ranks_two_workers():
    p = plan_epoch(UNEVEN, seed=0, epoch=0, world_size=2, num_workers=2)
    total = sum(UNEVEN)  # 301: one sample is repeated to even out the ranks
    shares = [[sum(n for _, _, n in w) for w in rank] for rank in p]
    assert shares == [[76, 75], [76, 75]]
    c = seen(p)
    assert set(c) == everything(UNEVEN)
    assert sum(c.values()) == total + 1
    # The repeat comes from the start of the epoch's permutation.
    first_shard = shard_order(len(UNEVEN), 0, 0)[0]
    assert [x for x, k in c.items() if k == 2] == [(first_shard, 0)]


def test_fewer_shards_than_readers_still_balanced():
    counts = [10, 3]
    p = plan_epoch(counts, seed=1, epoch=0, world_size=2, num_workers=4, pad=False)
    shares = sorted(sum(n for _, _, n in w) for rank in p for w in rank)
    assert shares[-1] - shares[0] <= 1 and sum(shares) == 13
    assert seen(p) == collections.Counter(everything(counts))


def test_validation_mode_exactly_once_and_drop_last():
    p = plan_epoch(UNEVEN, seed=0, epoch=3, world_size=3, num_workers=2, pad=False)
    assert seen(p) == collections.Counter(everything(UNEVEN))
    totals = [sum(n for w in r for _, _, n in w) for r in p]
    assert totals == [101, 100, 100]
    q = plan_epoch(UNEVEN, seed=0, epoch=3, world_size=3, num_workers=2, drop_last=True, batch_size=8)
    assert all(sum(n for _, _, n in w) == 48 for r in q for w in r)  # 301 // (3*2*8) = 6 full batches per worker
    assert max(seen(q).values()) == 1
    with pytest.raises(ValueError, match="drop_last"):
        rank_totals(5, 2, num_workers=2, drop_last=True, batch_size=4)


def test_plan_is_deterministic_and_epochs_differ():
    a = plan_epoch(UNEVEN, seed=7, epoch=0, world_size=2, num_workers=2)
    assert a == plan_epoch(UNEVEN, seed=7, epoch=0, world_size=2, num_workers=2)
    assert a != plan_epoch(UNEVEN, seed=7, epoch=1, world_size=2, num_workers=2)
    assert a != plan_epoch(UNEVEN, seed=8, epoch=0, world_size=2, num_workers=2)
    assert plan(UNEVEN, seed=7, epoch=0, world_size=2, rank=1, num_workers=2, worker=0) == a[1][0]
    unshuffled = plan_epoch(UNEVEN, seed=7, epoch=0, world_size=1, num_workers=1, shuffle=False)
    assert unshuffled == [[[(s, 0, n) for s, n in enumerate(UNEVEN)]]]


def test_bad_arguments():
    with pytest.raises(ValueError, match="at least one sample"):
        plan_epoch([0, 0], seed=0, epoch=0, world_size=1, num_workers=1)
    with pytest.raises(ValueError, match="out of range"):
        plan(UNEVEN, seed=0, epoch=0, world_size=2, rank=2, num_workers=1, worker=0)


counts_st = st.lists(st.integers(0, 40), min_size=1, max_size=12).filter(lambda c: sum(c) > 0)


@settings(max_examples=200, deadline=None)
@given(
    counts=counts_st,
    world=st.integers(1, 5),
    workers=st.integers(1, 4),
    seed=st.integers(0, 2**31),
    epoch=st.integers(0, 50),
    mode=st.sampled_from(["pad", "validate", "drop"]),
    batch=st.sampled_from([None, 1, 3]),
)
def test_plan_properties(counts, world, workers, seed, epoch, mode, batch):
    kw = dict(seed=seed, epoch=epoch, world_size=world, num_workers=workers, batch_size=batch)
    kw.update(pad=mode == "pad", drop_last=mode == "drop")
    n = sum(counts)
    unit = workers * batch if batch else 1  # without a batch size only the ranks are evened out
    if mode == "drop" and n < world * unit:
        with pytest.raises(ValueError):
            plan_epoch(counts, **kw)
        return
    p = plan_epoch(counts, **kw)
    assert p == plan_epoch(counts, **kw)  # determinism
    for rank in p:
        for ranges in rank:
            for s, first, k in ranges:
                assert k > 0 and 0 <= first and first + k <= counts[s]
    shares = [[sum(k for _, _, k in w) for w in rank] for rank in p]
    totals = [sum(r) for r in shares]
    for r in shares:  # balance inside a rank
        assert max(r) - min(r) <= 1
    c = seen(p)
    if mode == "validate":
        assert c == collections.Counter(everything(counts))
        assert max(totals) - min(totals) <= 1
    else:
        assert len(set(totals)) == 1 and all(r == shares[0] for r in shares)  # same steps on every rank
    if mode == "pad":
        assert set(c) == everything(counts)
        assert 0 <= sum(c.values()) - n < world
    if mode == "drop":
        assert max(c.values()) == 1 and n - sum(c.values()) < world * unit
        if batch:
            assert all(k % batch == 0 for r in shares for k in r)


@settings(max_examples=100, deadline=None)
@given(n=st.integers(0, 300), bufsize=st.integers(0, 50), seed=st.integers(0, 10**6))
def test_buffer_order_properties(n, bufsize, seed):
    order = buffer_order(n, bufsize, seed)
    assert sorted(order) == list(range(n))
    assert order == buffer_order(n, bufsize, seed)
    # Output t only uses what a buffer of this size has read so far.
    for t, pos in enumerate(order):
        assert pos < t + max(bufsize, 1)


def test_buffer_order_shuffles():
    assert buffer_order(200, 20, 1) != list(range(200))
    assert buffer_order(200, 20, 1) != buffer_order(200, 20, 2)


@settings(max_examples=100, deadline=None)
@given(total=st.integers(0, 400), bufsize=st.integers(2, 30), block=st.integers(1, 120), t=st.integers(0, 400))
def test_shuffled_positions_blocks(total, bufsize, block, t):
    sp = ShuffledPositions(total, bufsize, 9, initial=5, block=block)
    order = [sp[u] for u in range(total)]
    assert sorted(order) == list(range(total))
    t = min(t, total)
    # A fresh lookup at any t (what a resumed reader does) agrees with the full pass.
    fresh = ShuffledPositions(total, bufsize, 9, initial=5, block=block)
    assert [fresh[u] for u in range(t, total)] == order[t:]
    before = ShuffledPositions(total, bufsize, 9, initial=5, block=block).emitted_before(t)
    assert {p for p in range(total) if before(p)} == set(order[:t])
