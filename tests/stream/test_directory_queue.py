"""DirectoryShardList keeps webdataset 1.0.2's work-queue semantics; both run on the same kind of temp dir."""

from __future__ import annotations

import itertools
import os
import random
import subprocess
import sys

import pytest
import webdataset.shardlists as ref

from ppwebdataset import shardlists as ours


def make_dir(root, names=("a.tar", "b.tar", "c.tar", "notes.txt")):
    root.mkdir()
    for i, name in enumerate(names):
        path = root / name
        path.write_bytes(name.encode())
        os.utime(path, (1_700_000_000 + 10 * (len(names) - i),) * 2)  # a.tar is the newest
    return root


def dead_pid():
    # A process that has exited (and been reaped): its pid is free.
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def run(module, root, n, **kw):
    """Take up to ``n`` shards; returns the names yielded (pid neutralised) and the listing after each step."""
    queue = module.DirectoryShardList(str(root) + "/", **kw)
    pid = f"._{os.getpid()}_"
    yielded, states = [], []
    for item in itertools.islice(iter(queue), n):
        yielded.append(os.path.basename(item["url"]).replace(pid, "._PID_"))
        states.append(sorted(f.replace(pid, "._PID_") for f in os.listdir(root)))
    return yielded, states, sorted(os.listdir(root))


@pytest.mark.parametrize("mode", ["keep", "unlink", "resample", None])
def test_same_claims_renames_and_end_as_1_0_2(tmp_path, mode):
    a = run(ours, make_dir(tmp_path / "ours"), 8, pattern="*.tar", poll=None, mode=mode, select="oldest")
    b = run(ref, make_dir(tmp_path / "ref"), 8, pattern="*.tar", poll=None, mode=mode, select="oldest")
    assert a == b
    yielded, states, final = a
    if mode == "keep":
        assert yielded == ["c.tar._PID_", "b.tar._PID_", "a.tar._PID_"]  # oldest first, then StopIteration
        assert final == ["a.tar._done_", "b.tar._done_", "c.tar._done_", "notes.txt"]
    if mode == "unlink":
        assert final == ["notes.txt"]
    if mode == "resample":
        assert len(yielded) == 8 and "c.tar._PID_" in states[0]


def test_random_select_same_sequence_under_the_same_global_seed(tmp_path):
    random.seed(5)
    a = run(ours, make_dir(tmp_path / "ours"), 10, pattern="*.tar", poll=None, mode="resample")
    random.seed(5)
    b = run(ref, make_dir(tmp_path / "ref"), 10, pattern="*.tar", poll=None, mode="resample")
    assert a == b


@pytest.mark.parametrize("mode", ["keep", "resample", "unlink"])
def test_cleanup_of_files_claimed_by_dead_processes(tmp_path, mode):
    pid = dead_pid()
    outcomes = []
    for name, module in (("ours", ours), ("ref", ref)):
        root = make_dir(tmp_path / name, names=("a.tar", f"b.tar._{pid}_", f"c.tar._{os.getpid()}_", "d.tar._done_"))
        module.DirectoryShardList(str(root) + "/", pattern="*.tar", mode=mode).cleanup_files_without_processes()
        outcomes.append(sorted(os.listdir(root)))
    assert outcomes[0] == outcomes[1]
    assert f"c.tar._{os.getpid()}_" in outcomes[0]  # our own claim stays


def test_polling_waits_for_files_then_times_out(tmp_path):
    root = tmp_path / "empty"
    root.mkdir()
    queue = ours.DirectoryShardList(str(root) + "/", pattern="*.tar", poll=0.01, timeout=0.2, mode="keep")
    # (iterated, not list(): len() of iterable stages is another issue's business)
    assert [x for x in queue] == []  # waited, found nothing, stopped at the timeout
    assert [x for x in ours.DirectoryShardList(str(root) + "/", poll=None)] == []


def test_unknown_select_raises_like_1_0_2(tmp_path):
    for name, module in (("ours", ours), ("ref", ref)):
        root = make_dir(tmp_path / name)
        with pytest.raises(ValueError, match="unknown selection strategy"):
            next(iter(module.DirectoryShardList(str(root) + "/", pattern="*.tar", select="newest", poll=None)))


def test_default_pattern_expands_braces(tmp_path):
    # 1.0.2 globbed "*.{tar,tgz,tar.tgz}" literally and so never found a shard; ours expands it.
    root = make_dir(tmp_path / "d", names=("a.tar", "b.tgz", "c.txt"))
    got = [os.path.basename(d["url"]) for d in ours.DirectoryShardList(str(root) + "/", poll=None, mode="keep")]
    assert sorted(got) == [f"a.tar._{os.getpid()}_", f"b.tgz._{os.getpid()}_"]
