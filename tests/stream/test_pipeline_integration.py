"""Whole pipelines: fluent methods, handlers with URL and key in messages, loaders and wrappers."""

from __future__ import annotations

import io
import json
import warnings

import numpy as np
import pytest
from tarfixtures import make_tar

import ppwebdataset as wds
from ppwebdataset.errors import DecodingError


def jpeg(value):
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (8, 6), (value, 0, 0)).save(buf, format="JPEG")
    return buf.getvalue()


@pytest.fixture
def shard(tmp_path):
    members = []
    for i in range(6):
        members += [
            (f"s{i}.jpg", jpeg(40 * i) if i != 3 else b"not a jpeg"),
            (f"s{i}.cls", str(i).encode()),
            (f"s{i}.json", json.dumps({"i": i}).encode()),
        ]
    return str(make_tar(tmp_path / "img.tar", members))


def test_fluent_decode_to_tuple_batched(shard):
    ds = (
        wds.WebDataset(shard, shardshuffle=False)
        .select(lambda s: s["__key__"] != "s3")
        .decode("rgb8")
        .to_tuple("jpg", "cls", "json")
        .batched(2)
    )
    batches = list(ds)
    assert len(batches) == 3
    images, labels, metas = batches[0]
    assert images.shape == (2, 6, 8, 3) and images.dtype == np.uint8
    assert list(labels) == [0, 1] and metas[1] == {"i": 1}
    flat = list(
        wds.WebDataset(shard, shardshuffle=False)
        .select(lambda s: s["__key__"] != "s3")
        .decode("rgb8")
        .to_tuple("jpg", "cls")
        .batched(4)
        .unbatched()
    )
    assert [int(c) for _, c in flat] == [0, 1, 2, 4, 5]


def test_failing_decoder_goes_through_handler_with_url_and_key(shard):
    with pytest.raises(DecodingError) as info:
        list(wds.WebDataset(shard, shardshuffle=False).decode("rgb8"))
    text = str(info.value)
    assert shard in text and "s3" in text
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = list(wds.WebDataset(shard, shardshuffle=False).decode("rgb8", handler=wds.warn_and_continue))
    assert [s["__key__"] for s in got] == ["s0", "s1", "s2", "s4", "s5"]
    assert any("s3" in str(w.message) for w in caught)


def test_missing_key_goes_through_handler(shard):
    ds = wds.WebDataset(shard, shardshuffle=False).to_tuple("cls", "nope")
    with pytest.raises(Exception) as info:
        list(ds)
    assert "nope" in str(info.value)
    ok = wds.WebDataset(shard, shardshuffle=False).to_tuple("cls", "nope", handler=wds.ignore_and_continue)
    assert list(ok) == []
    ds = wds.WebDataset(shard, shardshuffle=False).to_tuple("cls", "nope", missing_is_error=False)
    assert [t[1] for t in ds] == [None] * 6


def test_rename_map_dict_map_tuple(shard):
    ds = (
        wds.WebDataset(shard, shardshuffle=False)
        .rename(label="cls", meta="json")
        .map_dict(label=lambda b: int(b) * 10)
        .to_tuple("label", "meta")
        .map_tuple(None, lambda m: json.loads(m)["i"])
    )
    assert list(ds) == [(i * 10, i) for i in range(6)]


def test_fluid_wrapper_and_webloader(shard):
    paddle = pytest.importorskip("paddle")
    base = wds.WebDataset(shard, shardshuffle=False).map(lambda s: np.array(int(s["cls"]), dtype=np.int64))
    wrapped = wds.FluidWrapper(base).batched(3)
    assert [list(b) for b in wrapped] == [[0, 1, 2], [3, 4, 5]]
    loader = wds.WebLoader(base, batch_size=None, num_workers=0).batched(2)
    got = [np.asarray([x.item() if hasattr(x, "item") else x for x in b]).tolist() for b in loader]
    assert sorted(v for b in got for v in b) == list(range(6))
    assert isinstance(loader.pipeline[0], paddle.io.DataLoader)
