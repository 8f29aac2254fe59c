"""Sources: brace patterns, URL lists, pipe: commands, file objects, big members, pipeline stages."""

from __future__ import annotations

import bz2
import io
import os
import sys

import pytest
from tarfixtures import make_tar, samples_members

import ppwebdataset as wds
from ppwebdataset.tariterators import group_by_keys, tar_file_expander, tarfile_samples, url_opener


@pytest.fixture
def shards(tmp_path):
    return [make_tar(tmp_path / f"part-{i:03d}.tar", samples_members(4, prefix=f"p{i}_")) for i in range(3)]


def keys(it):
    return [s["__key__"] for s in it]


def test_brace_pattern_and_list(shards, tmp_path):
    pattern = str(tmp_path / "part-{000..002}.tar")
    by_pattern = keys(wds.WebDataset(pattern, shardshuffle=False))
    by_list = keys(wds.WebDataset([str(p) for p in shards], shardshuffle=False))
    assert by_pattern == by_list and len(by_list) == 12
    assert by_list[:4] == ["p0_0000", "p0_0001", "p0_0002", "p0_0003"]
    by_path = keys(wds.WebDataset(shards, shardshuffle=False))
    assert by_path == by_list


def test_url_in_samples(shards):
    s = next(iter(wds.WebDataset(str(shards[0]), shardshuffle=False)))
    assert s["__url__"] == str(shards[0]) and s["__local_path__"] == str(shards[0])
    assert s["cls"] == b"p0_0-cls" and s["txt"] == b"p0_0-txt"


def test_users_pipe_runs_by_default(shards, monkeypatch):
    # As in 0.2.86 and 1.0.2: a pipe: URL written by the user is the user's own command.
    monkeypatch.delenv("PPWDS_ALLOW_PIPE", raising=False)
    got = list(wds.WebDataset(f"pipe:cat {shards[0]}", shardshuffle=False))
    assert keys(got) == keys(wds.WebDataset(str(shards[0]), shardshuffle=False))


def test_pipe_when_enabled(shards, monkeypatch):
    monkeypatch.setenv("PPWDS_ALLOW_PIPE", "1")
    got = list(wds.WebDataset([f"pipe:cat {p}" for p in shards], shardshuffle=False))
    assert keys(got) == keys(wds.WebDataset([str(p) for p in shards], shardshuffle=False))
    assert "__local_path__" not in got[0] and got[0]["__url__"] == f"pipe:cat {shards[0]}"


def test_failing_pipe_names_url_and_status(monkeypatch):
    monkeypatch.setenv("PPWDS_ALLOW_PIPE", "1")
    with pytest.raises(OSError, match="exit status 3"):
        list(wds.WebDataset("pipe:exit 3", shardshuffle=False))


def test_file_object_source(shards):
    data = shards[1].read_bytes()
    got = list(tarfile_samples([dict(url="mem://x", stream=io.BytesIO(data))]))
    assert keys(got) == [f"p1_{i:04d}" for i in range(4)]

    class ReadOnly:  # a stream with read() but no readinto()
        def __init__(self, b):
            self.b = io.BytesIO(b)

        def read(self, n=-1):
            return self.b.read(min(n, 777) if n > 0 else n)

    got2 = list(tarfile_samples([dict(url="mem://y", stream=ReadOnly(data))]))
    assert got2 == [dict(s, __url__="mem://y") for s in got]


def test_big_members(tmp_path):
    sizes = [0, 1, 511, 512, 256 * 1024 - 1, 256 * 1024, 3_000_001]
    members = [(f"k{i}.bin", os.urandom(n)) for i, n in enumerate(sizes)]
    path = make_tar(tmp_path / "big.tar", members)
    got = list(wds.WebDataset(str(path), shardshuffle=False))
    assert [s["bin"] for s in got] == [d for _, d in members]
    # The same through a Python stream, and gzip-compressed.
    got2 = list(tarfile_samples([dict(url="s", stream=open(path, "rb"))]))
    assert [s["bin"] for s in got2] == [d for _, d in members]
    import gzip

    gz = tmp_path / "big.tar.gz"
    gz.write_bytes(gzip.compress(path.read_bytes(), compresslevel=1))
    assert [s["bin"] for s in wds.WebDataset(str(gz), shardshuffle=False)] == [d for _, d in members]


def test_truncated_big_member_from_stream(tmp_path):
    path = make_tar(tmp_path / "big.tar", [("a.bin", os.urandom(600_000)), ("b.bin", b"1")])
    data = path.read_bytes()[:400_000]
    with pytest.raises(wds.errors.TruncatedShardError) as info:
        list(tarfile_samples([dict(url="cut", stream=io.BytesIO(data))]))
    assert info.value.member == "a.bin" and info.value.offset == 0


def test_bzip2_shard(tmp_path):
    path = make_tar(tmp_path / "p.tar", samples_members(5))
    bz = tmp_path / "p.tar.bz2"
    bz.write_bytes(bz2.compress(path.read_bytes()))
    assert keys(wds.WebDataset(str(bz), shardshuffle=False)) == keys(wds.WebDataset(str(path), shardshuffle=False))


def test_pipeline_stage_and_member_interface(shards):
    urls = [str(p) for p in shards]
    ds = wds.DataPipeline(wds.SimpleShardList(urls), wds.tarfile_to_samples())
    fast = list(ds)
    assert len(fast) == 12
    slow = list(group_by_keys(tar_file_expander(url_opener([dict(url=u) for u in urls]))))
    assert slow == fast


def test_select_and_rename_files(shards):
    got = list(
        wds.WebDataset(
            str(shards[0]),
            shardshuffle=False,
            select_files=lambda n: not n.endswith(".cls"),
            rename_files=lambda n: n.replace(".txt", ".text"),
        )
    )
    assert all(set(s) == {"__key__", "__url__", "__local_path__", "text"} for s in got)
    with pytest.raises(TypeError, match="callable"):
        wds.WebDataset(str(shards[0]), shardshuffle=False, select_files="*.txt")


def test_failing_select_callback_goes_to_handler(shards):
    def select(name):
        if name.endswith("0001.cls"):
            raise RuntimeError("boom")
        return True

    with pytest.raises(RuntimeError, match="boom"):
        list(wds.WebDataset(str(shards[0]), shardshuffle=False, select_files=select))
    got = list(wds.WebDataset(str(shards[0]), shardshuffle=False, select_files=select, handler=wds.ignore_and_continue))
    assert len(got) == 4 and "cls" not in got[1]


def _children():
    pid = os.getpid()
    found = set()
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/children") as f:
            found.update(int(c) for c in f.read().split())
    return found


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_stop_early_closes_pipe(tmp_path, monkeypatch):
    # A shard far longer than one read batch: the consumer stops long before its end marker,
    # so closing must stop the command (still in `sleep`) instead of draining it and waiting.
    monkeypatch.setenv("PPWDS_ALLOW_PIPE", "1")
    big = make_tar(tmp_path / "big.tar", [(f"s{i:06d}.bin", bytes(4096)) for i in range(4000)])
    before = _children()
    it = iter(wds.WebDataset(f"pipe:cat {big}; sleep 30", shardshuffle=False))
    next(it)
    assert _children() - before, "the pipe's command should be running"
    it.close()
    assert _children() - before == set(), "closing the generator left the command running"


def test_pipe_waits_for_its_command_after_the_end_marker(shards, monkeypatch):
    # After a complete tar the command's exit status still counts (issue: exit 3 after the data).
    monkeypatch.setenv("PPWDS_ALLOW_PIPE", "1")
    with pytest.raises(OSError, match="3"):
        list(wds.WebDataset(f"pipe:cat {shards[0]}; exit 3", shardshuffle=False))


def test_empty_check(tmp_path):
    empty = make_tar(tmp_path / "empty.tar", [])
    with pytest.raises(ValueError, match="No samples"):
        list(wds.WebDataset(str(empty), shardshuffle=False))
    assert list(wds.WebDataset(str(empty), shardshuffle=False, empty_check=False)) == []


def test_shardshuffle_warnings_and_orders(shards):
    urls = [str(p) for p in shards] * 4
    with pytest.warns(UserWarning, match="shardshuffle"):
        wds.WebDataset(urls)
    ds = wds.WebDataset(urls, shardshuffle=10, seed=3)
    first = [s["__url__"] for s in ds][::4]
    second = [s["__url__"] for s in ds][::4]
    assert sorted(first) == sorted(urls) and first != second  # a new order every epoch
    again = wds.WebDataset(urls, shardshuffle=10, seed=3)
    assert [s["__url__"] for s in again][::4] == first  # reproducible from the seed


@pytest.mark.skipif(sys.platform != "linux", reason="uses /proc")
def test_no_fd_leak(shards):
    before = len(os.listdir("/proc/self/fd"))
    for _ in range(20):
        it = iter(wds.WebDataset([str(p) for p in shards], shardshuffle=False))
        next(it)
        it.close()
        list(wds.WebDataset([str(p) for p in shards], shardshuffle=False))
    assert len(os.listdir("/proc/self/fd")) <= before + 1


def test_xz_shards(tmp_path):
    import lzma

    path = make_tar(tmp_path / "p.tar", [(f"k{i}.bin", os.urandom(2000)) for i in range(200)])
    raw = path.read_bytes()
    want = [s["bin"] for s in wds.WebDataset(str(path), shardshuffle=False)]
    one = tmp_path / "p.tar.xz"
    one.write_bytes(lzma.compress(raw))
    assert [s["bin"] for s in wds.WebDataset(str(one), shardshuffle=False)] == want
    two = tmp_path / "two.tar.xz"  # concatenated xz streams, as lzma/xz read them
    two.write_bytes(lzma.compress(raw[: len(raw) // 3]) + lzma.compress(raw[len(raw) // 3 :]))
    assert [s["bin"] for s in wds.WebDataset(str(two), shardshuffle=False)] == want
    cut = tmp_path / "cut.tar.xz"
    cut.write_bytes(lzma.compress(raw)[:40_000])
    with pytest.raises(wds.errors.TruncatedShardError, match="decompressed"):
        list(wds.WebDataset(str(cut), shardshuffle=False))
