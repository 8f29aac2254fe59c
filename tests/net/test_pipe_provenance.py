"""``pipe:`` URLs: the user's own commands run by default; commands that come from data do not.

A URL read from a remote shard list, ppwids descriptor or YAML spec is a
``DataURL``; a ``pipe:`` among them (or a rewrite of one into ``pipe:``) needs
``PPWDS_ALLOW_PIPE=1``. Everything here runs against a local HTTP server.
"""

from __future__ import annotations

import json
import pickle

import pytest

import ppwebdataset as wds
from ppwebdataset import _settings
from ppwebdataset.errors import UnsafeOperationError


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    for name in ("PPWDS_ALLOW_PIPE", "GOPEN_REWRITE", "WDS_SECURE"):
        monkeypatch.delenv(name, raising=False)


def keys(ds):
    return [s["__key__"] for s in ds]


def test_pipe_curl_from_local_server_by_default(server, helpers):
    server.files["/shard.tar"] = helpers.shard("c", 5)
    url = f"pipe:curl -s -L {server.url('/shard.tar')}"
    got = list(wds.WebDataset(url, shardshuffle=False))
    assert keys(got) == [f"c{i:03d}" for i in range(5)] and got[0]["__url__"] == url
    assert server.hit_count("/shard.tar") == 1


def test_pipe_cat_by_default(tmp_path, helpers):
    path = tmp_path / "s.tar"
    path.write_bytes(helpers.shard("p", 3))
    assert keys(wds.WebDataset(f"pipe:cat {path}", shardshuffle=False)) == ["p000", "p001", "p002"]
    pipeline = wds.DataPipeline(wds.SimpleShardList([f"pipe:cat {path}"]), wds.tarfile_to_samples())
    assert keys(pipeline) == ["p000", "p001", "p002"]


def yaml_spec(shards):
    return "datasets:\n" + "".join(f"  - shards: ['{s}']\n" for s in shards)


def test_remote_yaml_spec_pipe_refused(tmp_path, server, helpers, monkeypatch):
    marker = tmp_path / "ran"
    local = tmp_path / "s.tar"
    local.write_bytes(helpers.shard("y", 2))
    server.files["/h.tar"] = helpers.shard("h", 2)
    server.files["/spec.yaml"] = yaml_spec([f"pipe:touch {marker}; cat {local}"]).encode()
    server.files["/plain.yaml"] = yaml_spec([server.url("/h.tar")]).encode()
    # http shards named by a remote spec are fine...
    assert keys(wds.WebDataset(server.url("/plain.yaml"), shardshuffle=False)) == ["h000", "h001"]
    # ...a shell command named by one is not.
    ds = wds.WebDataset(server.url("/spec.yaml"), shardshuffle=False)
    with pytest.raises(UnsafeOperationError, match="PPWDS_ALLOW_PIPE=1") as info:
        list(ds)
    assert server.url("/spec.yaml") in str(info.value)
    assert not marker.exists()
    monkeypatch.setenv("PPWDS_ALLOW_PIPE", "1")
    assert keys(wds.WebDataset(server.url("/spec.yaml"), shardshuffle=False)) == ["y000", "y001"]
    assert marker.exists()


def test_local_yaml_spec_is_the_users_own(tmp_path, helpers):
    local = tmp_path / "s.tar"
    local.write_bytes(helpers.shard("l", 2))
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml_spec([f"pipe:cat {local}"]))
    assert keys(wds.WebDataset(str(spec), shardshuffle=False)) == ["l000", "l001"]


def test_remote_wids_descriptor_pipe_refused(tmp_path, server, helpers, monkeypatch):
    from ppwids import ShardListDataset

    marker = tmp_path / "ran"
    local = tmp_path / "s.tar"
    local.write_bytes(helpers.shard("w", 2))
    desc = {"wids_version": 1, "shardlist": [{"url": f"pipe:touch {marker}; cat {local}", "nsamples": 2}]}
    server.files["/desc.json"] = json.dumps(desc).encode()
    ds = ShardListDataset(server.url("/desc.json"), cache_dir=str(tmp_path / "cache"), transformations=[])
    assert isinstance(ds.shards[0]["url"], _settings.DataURL)
    with pytest.raises(UnsafeOperationError, match="PPWDS_ALLOW_PIPE=1"):
        ds[0]
    assert not marker.exists()


def test_rewrite_of_data_url_into_pipe_refused(tmp_path, server, helpers, monkeypatch):
    local = tmp_path / "s.tar"
    local.write_bytes(helpers.shard("r", 2))
    server.files["/spec.yaml"] = yaml_spec(["s3://bucket/s.tar"]).encode()
    monkeypatch.setenv("GOPEN_REWRITE", f"s3://bucket/=pipe:cat {tmp_path}/")
    # The user's own s3 URL, rewritten by the user's own rule, runs.
    assert keys(wds.WebDataset("s3://bucket/s.tar", shardshuffle=False)) == ["r000", "r001"]
    with pytest.raises(UnsafeOperationError, match="PPWDS_ALLOW_PIPE"):
        list(wds.WebDataset(server.url("/spec.yaml"), shardshuffle=False))


def test_data_url_mark_survives_pickling_and_rewriting(monkeypatch):
    url = _settings.from_data("s3://b/x.tar", "http://h/list.json")
    back = pickle.loads(pickle.dumps(url))
    assert isinstance(back, _settings.DataURL) and back == "s3://b/x.tar" and back.origin == "http://h/list.json"
    monkeypatch.setenv("GOPEN_REWRITE", "s3://b/=pipe:cat ")
    from ppwebdataset.gopen import rewrite_url

    rewritten = rewrite_url(url)
    assert rewritten == "pipe:cat x.tar" and isinstance(rewritten, _settings.DataURL)
    assert not isinstance(rewrite_url("s3://b/y.tar"), _settings.DataURL)


def test_remote_sub_descriptor_of_a_local_one_is_data(tmp_path, server, helpers):
    from ppwids import ShardListDataset

    local = tmp_path / "s.tar"
    local.write_bytes(helpers.shard("q", 2))
    sub = {"wids_version": 1, "shardlist": [{"url": f"pipe:cat < {local}", "nsamples": 2}]}
    server.files["/sub.json"] = json.dumps(sub).encode()
    top = {
        "wids_version": 1,
        "shardlist": [{"url": f"pipe:cat {local}", "nsamples": 2}],  # the user's own file: runs
        "datasets": [{"source_url": server.url("/sub.json")}],
    }
    (tmp_path / "top.json").write_text(json.dumps(top))
    ds = ShardListDataset(str(tmp_path / "top.json"), cache_dir=str(tmp_path / "cache"), transformations=[])
    assert ds[0]["__key__"] == "q000"
    with pytest.raises(UnsafeOperationError, match="PPWDS_ALLOW_PIPE=1"):
        ds[2]
