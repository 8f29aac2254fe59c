"""The filters inside real pipelines over tar shards (WebDataset, DataPipeline)."""

from __future__ import annotations

import io
import json
import tarfile
import warnings

import numpy as np
import pytest

import ppwebdataset as wds
import ppwebdataset.filters as F


def make_shards(root, nshards=3, per_shard=20):
    urls = []
    for s in range(nshards):
        path = root / f"part-{s}.tar"
        with tarfile.open(path, "w", format=tarfile.USTAR_FORMAT) as tf:
            for i in range(per_shard):
                gid = s * per_shard + i
                fields = {
                    "cls": str(gid).encode(),
                    "npy": _npy(np.full((2, 3), gid, dtype=np.int16)),
                    "json": json.dumps({"id": gid, "even": gid % 2 == 0}).encode(),
                }
                for ext, data in fields.items():
                    info = tarfile.TarInfo(f"{gid:05d}.{ext}")
                    info.size = len(data)
                    tf.addfile(info, io.BytesIO(data))
        urls.append(str(path))
    return urls


def _npy(arr):
    buf = io.BytesIO()
    np.save(buf, arr)
    return buf.getvalue()


@pytest.fixture(scope="module")
def urls(tmp_path_factory):
    return make_shards(tmp_path_factory.mktemp("filters-pipeline"))


def decode_sample(sample):
    return {
        "__key__": sample["__key__"],
        "__url__": sample["__url__"],
        "cls": int(sample["cls"]),
        "npy": np.load(io.BytesIO(sample["npy"])),
        "json": json.loads(sample["json"]),
    }


def dataset(urls, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return wds.WebDataset(urls, **kw)


def test_shuffle_tuple_batch_unbatch(urls):
    ds = dataset(urls, shardshuffle=False).map(decode_sample).shuffle(25, seed=3).to_tuple("npy", "cls").batched(8)
    batches = list(ds)
    assert [len(b[1]) for b in batches] == [8] * 7 + [4]
    assert batches[0][0].shape == (8, 2, 3) and batches[0][0].dtype == np.int16
    labels = np.concatenate([b[1] for b in batches]).tolist()
    assert sorted(labels) == list(range(60)) and labels != list(range(60))
    # A second epoch is a different (but equally complete) order.
    labels2 = np.concatenate([b[1] for b in ds]).tolist()
    assert sorted(labels2) == list(range(60)) and labels2 != labels
    flat = list(ds.unbatched())
    assert len(flat) == 60 and all(int(x[0][0, 0]) == int(x[1]) for x in flat)


def test_dict_batches_with_nested_json(urls):
    ds = dataset(urls, shardshuffle=False).map(decode_sample).map(lambda s: {**s, "__url__": None})
    first = next(iter(ds.batched(10)))
    assert first["cls"].tolist() == list(range(10))
    assert [m["id"] for m in first["json"]] == list(range(10))
    first = next(iter(ds.batched(10, collation_fn=F.nested_collation_fn)))
    assert first["json"]["id"].tolist() == list(range(10))
    assert first["json"]["even"].dtype == np.bool_
    assert first["npy"].shape == (10, 2, 3)
    assert first["__key__"][0] == "00000"


def test_handler_sees_key_and_url(urls):
    seen = []

    def bad(sample):
        if sample["__key__"] == "00021":
            raise KeyError("no such field")
        return sample

    ds = dataset(urls, shardshuffle=False).map(bad, handler=lambda e: seen.append(e) or True)
    assert len(list(ds)) == 59
    assert "00021" in str(seen[0]) and "part-1.tar" in str(seen[0])


def test_detshuffle_shard_order_changes_per_epoch_reproducibly(urls):
    def order(ds):
        return [s["__url__"] for s in ds if s["__key__"].endswith("0")][::2]

    a = dataset(urls, shardshuffle=3, detshuffle=True, seed=11)
    b = dataset(urls, shardshuffle=3, detshuffle=True, seed=11)
    epochs_a = [order(a) for _ in range(6)]
    epochs_b = [order(b) for _ in range(6)]
    assert epochs_a == epochs_b
    assert len({tuple(e) for e in epochs_a}) > 1


def test_datapipeline_stages(urls):
    pipe = wds.DataPipeline(
        wds.SimpleShardList(urls),
        wds.tarfile_to_samples(),
        F.detshuffle(30, 5, seed=1),
        F.select(lambda s: int(s["cls"]) % 3 == 0),
        F.rename(label="cls", data="npy"),
        F.to_tuple("label", "data"),
        F.map_tuple(int, lambda b: np.load(io.BytesIO(b))),
        F.batched(4, partial=False),
    )
    got = list(pipe)
    assert [len(b[0]) for b in got] == [4] * 5
    labels = sorted(np.concatenate([b[0] for b in got]).tolist())
    assert labels == list(range(0, 60, 3))


def test_with_epoch_and_rsample_in_pipeline(urls):
    ds = dataset(urls, shardshuffle=False).rsample(1.0).with_epoch(25)
    assert len(list(ds)) == 25
    ds = dataset(urls, shardshuffle=False).compose(F.rsample(0.5, seed=2))
    first, second = [s["__key__"] for s in ds], [s["__key__"] for s in ds]
    assert first == second and 10 < len(first) < 50
