"""Shard sources: URL expansion, seeds, resampling, directories, YAML specs, splitters."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys

import pytest
from tarfixtures import make_tar, samples_members

import ppwebdataset as wds
from ppwebdataset.shardlists import DirectoryListing, ResampledShardList, expand_urls
from ppwebdataset.utils import braceexpand, make_seed


def urls_of(it):
    return [d["url"] for d in it]


def test_braceexpand():
    assert list(braceexpand("a{000..003}.tar")) == ["a000.tar", "a001.tar", "a002.tar", "a003.tar"]
    assert list(braceexpand("{a,b}{1..2}")) == ["a1", "a2", "b1", "b2"]
    assert list(braceexpand("x{1..7..3}")) == ["x1", "x4", "x7"]
    assert list(braceexpand("{a..c}")) == ["a", "b", "c"]
    assert list(braceexpand("{3..1}")) == ["3", "2", "1"]
    assert list(braceexpand("p{a,{b,c}d}")) == ["pa", "pbd", "pcd"]
    assert list(braceexpand("lit{x}")) == ["lit{x}"]
    assert list(braceexpand("no braces")) == ["no braces"]


def test_expand_urls(monkeypatch):
    monkeypatch.setenv("WDS_BUCKET", "s3://b")
    assert expand_urls("${BUCKET}/a{0..1}.tar::c.tar") == ["s3://b/a0.tar", "s3://b/a1.tar", "c.tar"]
    assert expand_urls(["x{0..1}", "y"]) == ["x0", "x1", "y"]  # lists are accepted (upstream #409)
    monkeypatch.delenv("WDS_BUCKET")
    with pytest.raises(ValueError, match="WDS_BUCKET"):
        expand_urls("${BUCKET}/a.tar")


def test_simple_shard_list_seed():
    urls = [f"u{i}" for i in range(20)]
    assert urls_of(wds.SimpleShardList(urls)) == urls
    a = urls_of(wds.SimpleShardList(urls, seed=5))
    assert sorted(a) == sorted(urls) and a != urls
    assert urls_of(wds.SimpleShardList(urls, seed=5)) == a
    assert len(wds.SimpleShardList("a{0..9}")) == 10


def test_resampled_shards():
    urls = [f"u{i}" for i in range(10)]
    rs = wds.ResampledShards(urls, nshards=50, deterministic=True, seed=3)
    e0, e1 = urls_of(rs), urls_of(rs)
    assert len(e0) == 50 and set(e0) <= set(urls) and e0 != e1
    again = wds.ResampledShards(urls, nshards=50, deterministic=True, seed=3)
    assert urls_of(again) == e0
    with pytest.raises(ValueError, match="no shards"):
        wds.ResampledShards([])
    assert ResampledShardList is wds.ResampledShards


def test_make_seed_ignores_pythonhashseed():
    code = "from ppwebdataset.utils import make_seed; print(make_seed('abc', b'x', 3, (1, 'y')))"
    outs = set()
    for hs in ("0", "1", "12345"):
        env = dict(os.environ, PYTHONHASHSEED=hs)
        outs.add(subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True).stdout)
    assert len(outs) == 1
    assert make_seed("abc", b"x", 3, (1, "y")) == int(outs.pop())


def test_resampled_webdataset_with_epoch(tmp_path):
    shards = [str(make_tar(tmp_path / f"s{i}.tar", samples_members(3, prefix=f"s{i}_"))) for i in range(3)]
    ds = wds.WebDataset(shards, resampled=True, nodesplitter=None).with_epoch(10)
    got = list(ds)
    assert len(got) == 10
    assert all(s["__key__"].split("_")[0] in {"s0", "s1", "s2"} for s in got)


def test_webdataset_directory_is_read_only(tmp_path):
    d = tmp_path / "shards"
    d.mkdir()
    names = ["b.tgz", "a.tar", "c.tar.tgz", "notes.txt"]
    for n in names:
        make_tar(d / n, samples_members(1, prefix=n.split(".")[0]))
    listed = urls_of(DirectoryListing(str(d) + "/"))
    assert [os.path.basename(u) for u in listed] == ["a.tar", "b.tgz", "c.tar.tgz"]
    assert sorted(os.listdir(d)) == sorted(names)  # nothing renamed
    for _pass in range(2):
        got = list(wds.WebDataset(str(d) + "/", shardshuffle=False))
        assert [s["__key__"] for s in got] == ["a0000", "b0000", "c0000"]  # sorted listing
        assert sorted(os.listdir(d)) == sorted(names)
    import itertools

    ds = wds.WebDataset(str(d) + "/", resampled=True)
    drawn = [s["__key__"] for s in itertools.islice(iter(ds), 20)]
    assert len(drawn) == 20 and set(drawn) <= {"a0000", "b0000", "c0000"}
    assert sorted(os.listdir(d)) == sorted(names)


def test_multishard_yaml(tmp_path):
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        "prefix: ''\n"
        "datasets:\n"
        f"  - name: A\n    buckets: {tmp_path}\n    shards: a{{0..3}}.tar\n    choose: 2\n"
        f"  - name: B\n    buckets: {tmp_path}\n    shards: b{{0..1}}.tar\n    resample: 5\n"
    )
    ms = wds.MultiShardSample(str(spec))
    urls = urls_of(ms)
    a = [u for u in urls if "/a" in u]
    b = [u for u in urls if "/b" in u]
    assert len(a) == 2 and len(set(a)) == 2 and len(b) == 5
    assert isinstance(wds.shardspec(str(spec)), wds.MultiShardSample)
    assert isinstance(wds.shardspec("x{0..2}.tar"), wds.SimpleShardList)


def test_split_by_worker_env(monkeypatch):
    monkeypatch.setenv("WORKER", "2")
    monkeypatch.setenv("NUM_WORKERS", "3")
    assert urls_of(wds.split_by_worker(dict(url=f"u{i}") for i in range(9))) == ["u2", "u5", "u8"]


def test_non_empty():
    assert list(wds.non_empty(iter([1]))) == [1]
    with pytest.raises(ValueError):
        list(wds.non_empty(iter([])))


def test_webdataset_is_picklable_with_length(tmp_path):
    shard = str(make_tar(tmp_path / "s.tar", samples_members(4)))
    with pytest.warns(UserWarning, match="with_length"):
        ds = wds.WebDataset(shard, shardshuffle=False).with_length(4)
    assert len(ds) == 4
    clone = pickle.loads(pickle.dumps(ds))
    assert len(clone) == 4 and [s["__key__"] for s in clone] == [s["__key__"] for s in ds]


def test_with_epoch_on_empty_pipeline_ends(tmp_path):
    ds = wds.DataPipeline(lambda: iter([])).with_epoch(100)
    assert list(ds) == []
    ds2 = wds.DataPipeline(wds.SimpleShardList([])).repeat(nepochs=-1)
    assert list(ds2) == []


def test_with_epoch_and_repeat_counts(tmp_path):
    shard = str(make_tar(tmp_path / "s.tar", samples_members(3)))
    ds = wds.WebDataset(shard, shardshuffle=False).with_epoch(7)
    assert len(list(ds)) == 7
    ds = wds.WebDataset(shard, shardshuffle=False).repeat(2)
    assert len(list(ds)) == 6


def test_seed_from_env(monkeypatch, tmp_path):
    monkeypatch.setenv("WDS_SEED", "17")
    shard = str(make_tar(tmp_path / "s.tar", samples_members(3)))
    ds = wds.WebDataset(shard, shardshuffle=2, detshuffle=True)
    assert ds.seed == 17  # an int, so detshuffle's seed arithmetic works (upstream B2)
    assert len(list(ds)) == 3
