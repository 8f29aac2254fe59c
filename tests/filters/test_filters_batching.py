"""Batching, collation (tuples, dicts, nested dicts, numpy, paddle) and unbatching."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import ppwebdataset.filters as F


def test_collate_tuples():
    samples = [(np.full((2, 3), i, dtype=np.uint8), i, 0.5 * i, f"s{i}") for i in range(4)]
    batch = F.default_collation_fn(samples)
    assert isinstance(batch, list) and len(batch) == 4
    imgs, ints, floats, strs = batch
    assert imgs.shape == (4, 2, 3) and imgs.dtype == np.uint8 and imgs[3, 0, 0] == 3
    assert ints.tolist() == [0, 1, 2, 3] and ints.dtype.kind == "i"
    assert floats.tolist() == [0.0, 0.5, 1.0, 1.5]
    assert strs == ["s0", "s1", "s2", "s3"]


def test_collate_lists_and_numpy_scalars():
    batch = F.default_collation_fn([[np.float32(1.5), True], [np.float32(2.5), False]])
    assert batch[0].dtype == np.float32 and batch[0].tolist() == [1.5, 2.5]
    assert batch[1].dtype == np.bool_


def meta(i):
    return {"w": i, "tag": "x", "deep": {"a": [i]}}


def test_collate_dicts():
    samples = [{"__key__": f"k{i}", "img": np.ones((3,)) * i, "cls": i, "meta": meta(i)} for i in range(3)]
    batch = F.default_collation_fn(samples)
    assert list(batch) == ["__key__", "img", "cls", "meta"]  # first sample's order
    assert batch["__key__"] == ["k0", "k1", "k2"]
    assert batch["img"].shape == (3, 3)
    assert batch["cls"].tolist() == [0, 1, 2]
    # Dict values (decoded .json) stay a list of dicts, as upstream.
    assert batch["meta"] == [meta(0), meta(1), meta(2)]
    # ...also in tuple samples.
    assert F.default_collation_fn([(1, meta(0)), (2, meta(1))])[1] == [meta(0), meta(1)]


def test_collate_nested_dicts():
    samples = [{"img": np.ones((3,)) * i, "meta": meta(i)} for i in range(3)]
    for batch in (F.nested_collation_fn(samples), F.default_collation_fn(samples, nested=True)):
        assert batch["meta"]["w"].tolist() == [0, 1, 2]
        assert batch["meta"]["tag"] == ["x", "x", "x"]
        assert batch["meta"]["deep"]["a"] == [[0], [1], [2]]
    back = list(F.unbatched()(iter([F.nested_collation_fn(samples)])))
    assert [b["meta"]["deep"]["a"] for b in back] == [[0], [1], [2]]
    assert int(back[2]["meta"]["w"]) == 2
    tup = F.nested_collation_fn([(meta(0),), (meta(1),)])
    assert tup[0]["w"].tolist() == [0, 1]


def test_collate_options():
    samples = [(np.zeros(2), 1), (np.zeros(2), 2)]
    arrays, ints = F.default_collation_fn(samples, combine_tensors=False, combine_scalars=False)
    assert isinstance(arrays, list) and isinstance(ints, list)


def test_collate_shape_mismatch_names_field():
    samples = [{"img": np.zeros((2, 2)), "cls": 1}, {"img": np.zeros((3, 2)), "cls": 2}]
    with pytest.raises(ValueError, match=r"'img'.*shapes differ.*\(2, 2\).*\(3, 2\)"):
        F.default_collation_fn(samples)
    with pytest.raises(ValueError, match="field 0"):
        F.default_collation_fn([(np.zeros(1),), (np.zeros(2),)])
    nested = [{"m": {"x": np.zeros(1)}}, {"m": {"x": np.zeros(2)}}]
    with pytest.raises(ValueError, match=r"'m\.x'"):
        F.nested_collation_fn(nested)


def test_collate_mismatched_structure():
    with pytest.raises(ValueError, match="different keys"):
        F.default_collation_fn([{"a": 1}, {"b": 1}])
    with pytest.raises(ValueError, match="length 2"):
        F.default_collation_fn([(1, 2), (1,)])
    with pytest.raises(ValueError, match=r"'cls'.*mixed"):
        F.default_collation_fn([{"cls": 1}, {"cls": None}])
    with pytest.raises(ValueError, match="mixed ndarray"):
        F.default_collation_fn([(np.zeros(1),), ([0.0],)])
    with pytest.raises(ValueError, match="empty"):
        F.default_collation_fn([])
    with pytest.raises(ValueError, match="mixed scalar"):
        F.default_collation_fn([1, "x"])


def test_collate_bare_values():
    assert F.default_collation_fn([np.int64(1), np.int64(2)]).tolist() == [1, 2]
    assert F.default_collation_fn([np.zeros(2), np.ones(2)]).shape == (2, 2)
    assert F.default_collation_fn(["a", "b"]) == ["a", "b"]


def test_collate_paddle_tensors():
    paddle = pytest.importorskip("paddle")
    samples = [
        {
            "x": paddle.to_tensor(np.full((2, 2), i, dtype="float32")),
            "y": i,
            "n": {"t": paddle.to_tensor([i])},
        }
        for i in range(3)
    ]
    batch = F.nested_collation_fn(samples)
    assert isinstance(batch["x"], paddle.Tensor)
    assert list(batch["x"].shape) == [3, 2, 2]
    assert batch["x"].numpy()[2].tolist() == [[2, 2], [2, 2]]
    assert batch["y"].tolist() == [0, 1, 2]
    assert list(batch["n"]["t"].shape) == [3, 1]
    tup = F.default_collation_fn([(paddle.zeros([2]),), (paddle.ones([2]),)])
    assert list(tup[0].shape) == [2, 2]
    with pytest.raises(ValueError, match=r"'x'.*paddle tensor shapes differ"):
        F.default_collation_fn([{"x": paddle.zeros([2])}, {"x": paddle.zeros([3])}])
    assert isinstance(F.default_collation_fn([(paddle.zeros([2]),)], combine_tensors=False)[0], list)


def counted(n, log):
    for i in range(n):
        log.append(i)
        yield (np.array([i, i]), i)


def test_batched_sizes_and_partial():
    log = []
    batches = list(F.batched(4)(counted(10, log)))
    assert [len(b[1]) for b in batches] == [4, 4, 2]
    assert batches[1][0].shape == (4, 2)
    assert [len(b[1]) for b in F.batched(4, partial=False)(counted(10, []))] == [4, 4]
    assert [len(b[1]) for b in F.batched(5, partial=False)(counted(10, []))] == [5, 5]
    assert list(F.batched(3)(iter([]))) == []
    with pytest.raises(ValueError):
        list(F.batched(0)(counted(1, [])))


def test_batched_emits_when_full():
    log = []
    it = F.batched(3)(counted(100, log))
    next(it)
    assert log == [0, 1, 2]  # no look-ahead into the next batch


def test_batched_dicts_and_custom_collation():
    src = ({"__key__": str(i), "v": i} for i in range(5))
    batches = list(F.batched(2)(src))
    assert batches[0] == {"__key__": ["0", "1"], "v": batches[0]["v"]}
    assert batches[2]["v"].tolist() == [4]
    assert list(F.batched(2, collation_fn=len)(iter(range(5)))) == [2, 2, 1]
    assert list(F.batched(2, collation_fn=None)(iter(range(3)))) == [[0, 1], [2]]


def test_listed_unlisted():
    assert list(F.listed(2)(iter(range(5)))) == [[0, 1], [2, 3], [4]]
    assert list(F.listed(2, partial=False)(iter(range(5)))) == [[0, 1], [2, 3]]
    assert list(F.unlisted()(iter([[0, 1], [2]]))) == [0, 1, 2]
    with pytest.raises(TypeError):
        list(F.unlisted()(iter([5])))


def test_unbatched_tuples_and_dicts():
    tup = [np.arange(6).reshape(3, 2), np.array([7, 8, 9])]
    out = list(F.unbatched()(iter([tup])))
    assert len(out) == 3 and out[2][0].tolist() == [4, 5] and out[2][1] == 9
    batch = {"a": [1, 2], "n": {"b": np.array([3, 4]), "c": ["x", "y"]}}
    assert list(F.unbatched()(iter([batch]))) == [
        {"a": 1, "n": {"b": 3, "c": "x"}},
        {"a": 2, "n": {"b": 4, "c": "y"}},
    ]
    with pytest.raises(ValueError, match="different lengths"):
        list(F.unbatched()(iter([{"a": [1, 2], "n": {"b": [1]}}])))
    with pytest.raises(ValueError, match="different lengths"):
        list(F.unbatched()(iter([([1, 2], [1])])))
    with pytest.raises(ValueError, match="expected a tuple"):
        list(F.unbatched()(iter([5])))


def test_tuple_dict_helpers():
    assert F.tuple2dict((5, 6)) == {0: 5, 1: 6}
    d = {"a": 1}
    assert F.tuple2dict(d) is d
    assert F.dict2tuple({0: 5, 1: 6}) == (5, 6)
    assert F.combine_values([1, 2]).tolist() == [1, 2]
    assert F.combine_values(["a", "b"]) == ["a", "b"]


row = st.tuples(st.integers(-1000, 1000), st.floats(-1e6, 1e6, allow_nan=False), st.text(max_size=5))


@given(st.lists(row, min_size=1, max_size=30), st.integers(1, 7))
def test_batch_unbatch_round_trip(rows, bs):
    samples = [(np.array([a, a], dtype=np.int64), a, b, c) for a, b, c in rows]
    back = list(F.unbatched()(F.batched(bs)(iter(samples))))
    assert len(back) == len(samples)
    for (x0, a0, b0, c0), (x1, a1, b1, c1) in zip(samples, back, strict=True):
        assert x0.tolist() == x1.tolist() and a0 == a1 and b0 == b1 and c0 == c1


@given(st.lists(st.fixed_dictionaries({"i": st.integers(0, 9), "s": st.text(max_size=3)}), min_size=1, max_size=20))
def test_dict_round_trip(rows):
    back = list(F.unbatched()(F.batched(3)(iter(rows))))
    assert [{"i": int(r["i"]), "s": r["s"]} for r in back] == rows
