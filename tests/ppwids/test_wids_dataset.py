"""ShardListDataset: indexing, descriptors, transformations, checks, caching, pickling, security."""

from __future__ import annotations

import hashlib
import io
import json
import pickle
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest

import ppwids
from ppwebdataset.errors import CorruptShardError, DuplicateMemberError, ShardIndexError, UnsafeOperationError
from ppwids import ShardListDataset
from ppwids.wids import group_by_key, splitname


def two_shards(tmp_path, make_tar, members):
    a = make_tar(tmp_path / "a.tar", members(3, "a"))
    b = make_tar(tmp_path / "b.tar", members(2, "b"))
    return [{"url": str(a), "nsamples": 3}, {"url": str(b), "nsamples": 2}]


def test_samples_metadata_and_key_order(tmp_path, make_tar, members):
    shards = two_shards(tmp_path, make_tar, members)
    ds = ShardListDataset(shards, transformations=[])
    assert len(ds) == 5 and isinstance(len(ds), int)
    sample = ds[3]
    assert list(sample) == [
        ".txt",
        ".cls",
        "__key__",
        "__dataset__",
        "__index__",
        "__shard__",
        "__shardindex__",
    ]
    assert sample[".txt"] == b"text b 0" and sample[".cls"] == b"0"
    assert (sample["__key__"], sample["__index__"], sample["__shard__"], sample["__shardindex__"]) == (
        "b0000",
        3,
        shards[1]["url"],
        0,
    )
    assert sample["__dataset__"] is None


def test_indices_behave_like_a_sequence(tmp_path, make_tar, members):
    ds = ShardListDataset(two_shards(tmp_path, make_tar, members), transformations=[])
    keys = [ds[i]["__key__"] for i in range(len(ds))]
    assert keys == ["a0000", "a0001", "a0002", "b0000", "b0001"]
    assert [ds[-i]["__key__"] for i in range(1, 6)] == keys[::-1]
    assert ds[-1]["__index__"] == 4
    assert ds[np.int64(2)]["__key__"] == "a0002"
    for bad in (5, -6, 100):
        with pytest.raises(IndexError):
            ds[bad]
    with pytest.raises(TypeError):
        ds["1"]
    assert [s["__key__"] for s in ds] == keys  # the sequence protocol ends at IndexError
    assert [s["__key__"] for s in ds[-2:]] == keys[-2:] and [s["__index__"] for s in ds[::2]] == [0, 2, 4]


def test_descriptor_base_nested_datasets_and_streams(tmp_path, make_tar, members):
    data = tmp_path / "data"
    make_tar(data / "top" / "t.tar", members(2, "t"))
    make_tar(data / "inline" / "i.tar", members(1, "i"))
    make_tar(data / "other" / "o.tar", members(2, "o"))
    (data / "other" / "other.json").write_text(
        json.dumps({"wids_version": 1, "name": "o-ds", "shardlist": [{"url": "o.tar", "nsamples": 2}]})
    )
    desc = {
        "wids_version": 1,
        "name": "top-ds",
        "base": "top",
        "shardlist": [{"url": "t.tar", "nsamples": 2}],
        "datasets": [
            {"name": "inl", "base": "../inline", "shardlist": [{"url": "i.tar", "nsamples": 1}]},
            {"source_url": "../other/other.json", "weight": 0.5},
        ],
    }
    path = data / "desc.json"
    path.write_text(json.dumps(desc))
    ds = ShardListDataset(str(path), transformations=[])
    assert ds.dataset_name == "top-ds" and len(ds) == 5
    got = [(ds[i]["__key__"], ds[i]["__dataset__"]) for i in range(5)]
    assert got == [("t0000", None), ("t0001", None), ("i0000", "inl"), ("o0000", "o-ds"), ("o0001", "o-ds")]
    assert ds.shards[2]["weight"] == 0.5 and ds.shards[2]["source_url"].endswith("other/other.json")
    assert json.loads(path.read_text()) == desc  # the descriptor is not modified

    stream_ds = ShardListDataset(io.StringIO(json.dumps(desc)), base=str(data), transformations=[])
    assert [stream_ds[i]["__key__"] for i in range(5)] == [k for k, _ in got]

    with pytest.raises(ValueError, match="wids_version"):
        ShardListDataset(io.StringIO(json.dumps({"shardlist": []})))
    with pytest.raises(ValueError, match="nsamples"):
        ShardListDataset([{"url": "x.tar"}])


def test_transformations(tmp_path, make_tar):
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (4, 3), (255, 0, 0)).save(buf, format="PNG")
    path = make_tar(
        tmp_path / "t.tar",
        [("k.png", buf.getvalue()), ("k.txt", b"hi"), ("k.cls", b"7"), ("k.json", b'{"a": [1]}')],
    )
    shards = [{"url": str(path), "nsamples": 1}]
    pil = ShardListDataset(shards)[0]
    assert isinstance(pil[".png"], Image.Image) and pil[".png"].size == (4, 3)
    assert (pil[".txt"], pil[".cls"], pil[".json"]) == ("hi", 7, {"a": [1]})
    arr = ShardListDataset(shards, transformations="numpy")[0][".png"]
    assert isinstance(arr, np.ndarray) and arr.shape == (3, 4, 3)

    def key_only(sample):
        return sample["__key__"]

    ds = ShardListDataset(shards, transformations=[lambda s: {**s, "extra": 1}])
    assert ds[0]["extra"] == 1 and ds[0][".txt"] == b"hi"
    assert ds.add_transform(key_only) is ds
    assert ds[0] == "k"
    with pytest.raises(ValueError):
        ShardListDataset(shards, transformations="bogus")

    streams = ShardListDataset(shards, transformations=[], as_streams=True)[0]
    assert streams[".txt"].read() == b"hi"
    decoded = ShardListDataset(shards, transformations=["PIL"], as_streams=True)[0]
    assert decoded[".cls"] == 7


def test_descriptor_checks_on_open(tmp_path, make_tar, members):
    path = make_tar(tmp_path / "c.tar", members(3))
    md5 = hashlib.md5(path.read_bytes()).hexdigest()
    size = path.stat().st_size
    good = ShardListDataset([{"url": str(path), "nsamples": 3, "md5sum": md5, "filesize": size}], transformations=[])
    assert good[2]["__key__"] == "s0002"
    cases = [
        ({"nsamples": 4}, "has 3 samples but the descriptor says 4"),
        ({"nsamples": 3, "md5sum": "0" * 32}, "md5"),
        ({"nsamples": 3, "filesize": size + 1}, f"has {size} bytes"),
    ]
    for extra, message in cases:
        ds = ShardListDataset([{"url": str(path), **extra}], transformations=[])
        with pytest.raises(ShardIndexError, match=message) as e:
            ds[0]
        assert str(path) in str(e.value)


def test_lru_stats_and_close(tmp_path, make_tar, members):
    shards = []
    for k in range(3):
        p = make_tar(tmp_path / f"s{k}.tar", members(2, f"s{k}_"))
        shards.append({"url": str(p), "nsamples": 2})
    ds = ShardListDataset(shards, transformations=[], lru_size=1)
    for i in [0, 1, 2, 3, 4, 5, 0]:
        assert ds[i]["__shardindex__"] == i % 2
    assert ds.get_stats() == (7, 4)
    assert len(ds.cache) == 1
    ds.close()
    assert len(ds.cache) == 0
    assert ds[5]["__key__"] == "s2_0001"
    with pytest.raises(ValueError):
        ppwids.wids.LRUCache(0)


def test_pickle_reopens_lazily(tmp_path, make_tar, members):
    ds = ShardListDataset(two_shards(tmp_path, make_tar, members))
    first = ds[4]
    state = ds.__getstate__()
    assert state["cache"] is None  # no open memory maps travel with the dataset
    clone = pickle.loads(pickle.dumps(ds))
    assert clone[4] == first and clone.get_stats() == (1, 1)


def test_wids_names_dotted_dirs_and_duplicates(tmp_path, make_tar):
    path = make_tar(
        tmp_path / "n.tar",
        [("a.b/c", b"1"), ("README", b"skip"), ("d.txt", b"2"), ("d.txt", b"3"), ("e.txt", b"4")],
    )
    ds = ShardListDataset([{"url": str(path), "nsamples": 3}], transformations=[])
    first = ds[0]
    assert (first["__key__"], first[".b/c"]) == ("a", b"1")
    # A repeated extension is refused as streaming refuses it; other samples still read.
    with pytest.raises(DuplicateMemberError, match="d.txt") as info:
        ds[1]
    assert (info.value.url, info.value.member, info.value.offset) == (str(path), "d.txt", 3072)
    assert ds[2][".txt"] == b"4"
    assert splitname("a.b/c") == ("a", ".b/c") and splitname("x/y.seg.jpg") == ("x/y", ".seg.jpg")
    assert group_by_key(["a.b/c", "README", "d.txt", "d.cls", "e.txt"]) == [[0], [2, 3], [4]]


def test_corrupt_shard_error_names_the_shard(tmp_path, make_tar, members):
    path = make_tar(tmp_path / "x.tar", members(2))
    data = bytearray(path.read_bytes())
    data[1024 + 100] ^= 0x7F
    path.write_bytes(data)
    ds = ShardListDataset([{"url": str(path), "nsamples": 2}], transformations=[])
    with pytest.raises(CorruptShardError) as e:
        ds[0]
    assert e.value.url == str(path) and e.value.offset == 1024 and e.value.member == "s0000.cls"


def test_pickle_formats_refused_unless_enabled(tmp_path, make_tar, monkeypatch):
    monkeypatch.delenv("PPWDS_ALLOW_PICKLE", raising=False)
    path = make_tar(tmp_path / "p.tar", [("k.pkl", pickle.dumps({"a": 1})), ("k.txt", b"t")])
    shards = [{"url": str(path), "nsamples": 1}]
    with pytest.raises(UnsafeOperationError, match="PPWDS_ALLOW_PICKLE=1"):
        ShardListDataset(shards)[0]
    raw = ShardListDataset(shards, transformations=[])[0]
    assert raw[".pkl"] == pickle.dumps({"a": 1})
    monkeypatch.setenv("PPWDS_ALLOW_PICKLE", "1")
    assert ShardListDataset(shards)[0][".pkl"] == {"a": 1}


def test_same_samples_as_the_reference(tmp_path, make_tar, reference):
    names = [
        ("a.jpg", b"A"),
        ("a.json", b"{}"),
        ("b.seg.png", b"B"),
        ("dir/c.txt", b"C"),
        ("dir/c.cls", b"3"),
    ]
    make_tar(tmp_path / "r.tar", names)
    desc = tmp_path / "r.json"
    desc.write_text(json.dumps({"wids_version": 1, "shardlist": [{"url": "r.tar", "nsamples": 3}]}))
    code = textwrap.dedent(
        f"""
        import json, ppwids
        cache = {str(tmp_path / "refcache")!r}
        ds = ppwids.ShardListDataset({str(desc)!r}, transformations=[], cache_dir=cache)
        out = []
        for i in range(len(ds)):
            s = ds[i]
            out.append({{k: (v.read().decode("latin1") if hasattr(v, "read") else v) for k, v in s.items()}})
        print(json.dumps(out))
        """
    )
    ref = json.loads(reference(code, cwd=tmp_path).strip().splitlines()[-1])
    ours = ShardListDataset(str(desc), transformations=[])
    mine = [
        {k: (v.decode("latin1") if isinstance(v, bytes) else v) for k, v in ours[i].items()} for i in range(len(ours))
    ]
    for r in ref:  # the reference copies shards into its cache; compare names, not places
        r["__shard__"] = r["__shard__"].rsplit("/", 1)[-1]
    for m in mine:
        m["__shard__"] = m["__shard__"].rsplit("/", 1)[-1]
    assert mine == ref


def test_import_without_paddle(tmp_path, make_tar, members):
    path = make_tar(tmp_path / "np.tar", members(4))
    code = textwrap.dedent(
        f"""
        import sys
        sys.modules["paddle"] = None  # any "import paddle" now fails
        import ppwids
        from ppwids.wids import ShardListSampler
        ds = ppwids.ShardListDataset([{{"url": {str(path)!r}, "nsamples": 4}}], transformations=[])
        assert ds[3]["__key__"] == "s0003"
        assert sorted(ppwids.ChunkedSampler(ds, chunksize=2)) == [0, 1, 2, 3]
        assert len(ppwids.DistributedChunkedSampler(ds, rank=1, num_replicas=3)) == 2
        assert sorted(ShardListSampler(ds)) == [0, 1, 2, 3]
        from ppwids import _paddle
        assert not _paddle.HAVE_PADDLE and sys.modules["paddle"] is None
        print("ok", ppwids.__version__)
        """
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("ok ")


def test_no_summary_printed_by_default(tmp_path, make_tar, members, capsys):
    path = make_tar(tmp_path / "q.tar", members(1))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ShardListDataset([{"url": str(path), "nsamples": 1}])[0]
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""
