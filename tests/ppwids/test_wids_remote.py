"""Remote shards: download once into the cache (across processes), safe names, clear failures."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from ppwebdataset._core import ShardIndex
from ppwebdataset.errors import UnsafeOperationError
from ppwids import ShardListDataset
from ppwids.wids import CacheLocalname
from ppwids.wids_dl import DownloadError


def cache_files(cache):
    return sorted(f for f in os.listdir(cache) if not f.endswith((".lock", ".ppwidx")))


def test_download_into_cache_with_collision_free_names(tmp_path, make_tar, members, http_root, http_server):
    make_tar(http_root / "x" / "s.tar", members(2, "x"))
    make_tar(http_root / "y" / "s.tar", members(3, "y"))
    cache = tmp_path / "cache"
    shards = [
        {"url": f"{http_server.url}/x/s.tar", "nsamples": 2},
        {"url": f"{http_server.url}/y/s.tar", "nsamples": 3},
    ]
    ds = ShardListDataset(shards, cache_dir=str(cache), transformations=[])
    assert [ds[i]["__key__"] for i in range(5)] == ["x0000", "x0001", "y0000", "y0001", "y0002"]
    names = cache_files(cache)
    assert len(names) == 2 and all(n.endswith("__s.tar") for n in names)
    assert ds[4]["__shard__"] == shards[1]["url"]

    again = ShardListDataset(shards, cache_dir=str(cache), transformations=[])
    assert again[1]["__key__"] == "x0001"
    assert http_server.requests == {"/x/s.tar": 1, "/y/s.tar": 1}
    # The downloaded copy got a sidecar index, which the second dataset reused.
    local = CacheLocalname(str(cache))(shards[0]["url"])
    assert ShardIndex(local, sidecar=local + ".ppwidx").from_sidecar


def test_env_cache_dir_is_used(tmp_path, make_tar, members, http_root, http_server, monkeypatch):
    make_tar(http_root / "e.tar", members(1))
    monkeypatch.setenv("WIDS_CACHE", str(tmp_path / "envcache"))
    ds = ShardListDataset([{"url": f"{http_server.url}/e.tar", "nsamples": 1}], transformations=[])
    assert ds[0]["__key__"] == "s0000"
    assert len(cache_files(tmp_path / "envcache")) == 1


def test_descriptor_over_http_resolves_relative_urls(tmp_path, make_tar, members, http_root, http_server):
    make_tar(http_root / "d" / "shards" / "a.tar", members(2))
    desc = {"wids_version": 1, "name": "web", "shardlist": [{"url": "shards/a.tar", "nsamples": 2}]}
    (http_root / "d" / "desc.json").write_text(json.dumps(desc))
    ds = ShardListDataset(f"{http_server.url}/d/desc.json", cache_dir=str(tmp_path / "c"), transformations=[])
    assert ds[1]["__shard__"] == f"{http_server.url}/d/shards/a.tar"
    assert ds[1][".txt"] == b"text s 1"


def test_404_is_a_clear_error_and_leaves_no_file(tmp_path, http_server):
    cache = tmp_path / "cache"
    url = f"{http_server.url}/missing.tar"
    ds = ShardListDataset([{"url": url, "nsamples": 1}], cache_dir=str(cache), transformations=[])
    with pytest.raises(DownloadError, match="404") as e:
        ds[0]
    assert isinstance(e.value, OSError) and url in str(e.value)
    assert cache_files(cache) == [] and not [f for f in os.listdir(cache) if ".part-" in f]


def test_stale_cached_copy_is_downloaded_again(tmp_path, make_tar, members, http_root, http_server):
    make_tar(http_root / "s.tar", members(3))
    cache = tmp_path / "cache"
    url = f"{http_server.url}/s.tar"
    local = CacheLocalname(str(cache))(url)
    make_tar(local, members(1, "old"))  # e.g. left by an older version of the dataset
    ds = ShardListDataset([{"url": url, "nsamples": 3}], cache_dir=str(cache), transformations=[])
    assert ds[2]["__key__"] == "s0002"
    assert http_server.requests["/s.tar"] == 1


def test_users_pipe_urls_run_by_default(tmp_path, make_tar, members, monkeypatch):
    path = make_tar(tmp_path / "p.tar", members(2))
    url = f"pipe:cat {path}"
    monkeypatch.delenv("PPWDS_ALLOW_PIPE", raising=False)
    ds = ShardListDataset([{"url": url, "nsamples": 2}], cache_dir=str(tmp_path / "c"), transformations=[])
    assert ds[1]["__key__"] == "s0001"


def test_pipe_urls_from_a_remote_descriptor_need_opt_in(
    tmp_path, make_tar, members, monkeypatch, http_root, http_server
):
    path = make_tar(tmp_path / "p.tar", members(2))
    desc = {"wids_version": 1, "shardlist": [{"url": f"pipe:cat {path}", "nsamples": 2}]}
    (http_root / "remote.json").write_text(json.dumps(desc))
    monkeypatch.delenv("PPWDS_ALLOW_PIPE", raising=False)
    ds = ShardListDataset(f"{http_server.url}/remote.json", cache_dir=str(tmp_path / "c"), transformations=[])
    with pytest.raises(UnsafeOperationError, match="PPWDS_ALLOW_PIPE=1"):
        ds[0]
    monkeypatch.setenv("PPWDS_ALLOW_PIPE", "1")
    assert ds[1]["__key__"] == "s0001"


def test_hostile_url_is_never_run_by_a_shell(tmp_path, http_server):
    marker = tmp_path / "pwned"
    url = f"{http_server.url}/a'; touch {marker}; echo '.tar"
    ds = ShardListDataset([{"url": url, "nsamples": 1}], cache_dir=str(tmp_path / "c"), transformations=[])
    with pytest.raises(DownloadError):
        ds[0]
    assert not marker.exists()


WORKER = textwrap.dedent(
    """
    import sys
    from ppwids import ShardListDataset
    desc, cache, out = sys.argv[1:4]
    ds = ShardListDataset(desc, cache_dir=cache, transformations=[])
    keys = [ds[i]["__key__"] for i in range(len(ds))]
    open(out, "w").write("\\n".join(keys))
    """
)


def test_concurrent_processes_download_each_shard_once(tmp_path, make_tar, members, http_root, slow_http_server):
    for k in range(3):
        make_tar(http_root / f"c{k}.tar", members(4, f"c{k}_"))
    desc = {"wids_version": 1, "shardlist": [{"url": f"c{k}.tar", "nsamples": 4} for k in range(3)]}
    (http_root / "c.json").write_text(json.dumps(desc))
    cache = tmp_path / "shared-cache"
    procs = []
    for w in range(4):
        out = tmp_path / f"out{w}.txt"
        argv = [sys.executable, "-c", WORKER, f"{slow_http_server.url}/c.json", str(cache), str(out)]
        procs.append((subprocess.Popen(argv, stderr=subprocess.PIPE, text=True), out))
    expected = [f"c{k}_{i:04d}" for k in range(3) for i in range(4)]
    for proc, out in procs:
        _, err = proc.communicate(timeout=180)
        assert proc.returncode == 0, err
        assert out.read_text().split("\n") == expected
    assert {p: n for p, n in slow_http_server.requests.items() if p.endswith(".tar")} == {
        f"/c{k}.tar": 1 for k in range(3)
    }
    assert len(cache_files(cache)) == 3
