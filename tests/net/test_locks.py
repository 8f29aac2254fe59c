"""One lock helper (ppwebdataset._locks) behind every flock of both packages.

Lock files keep their old names and kind of lock, so a process holding a lock the old
way (a raw ``fcntl.flock`` on the same file) still excludes the new code.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from ppwebdataset import _locks, cache
from ppwids import wids_cleanup, wids_dl, wids_mmtar

fcntl = pytest.importorskip("fcntl")

ROOT = Path(__file__).resolve().parents[2]


class RawHolder:
    """Another process that holds a raw ``fcntl.flock`` on ``path`` (as older releases took it)."""

    def __init__(self, path, shared=False):
        op = "LOCK_SH" if shared else "LOCK_EX"
        code = textwrap.dedent(
            f"""
            import fcntl, sys
            f = open({str(path)!r}, "a")
            fcntl.flock(f.fileno(), fcntl.{op})
            print("held", flush=True)
            sys.stdin.read()
            """
        )
        self.proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        assert self.proc.stdout.readline() == b"held\n"

    def release(self):
        self.proc.stdin.close()
        self.proc.wait(timeout=30)
        self.proc.stdout.close()


def test_ulockfile_and_the_cache_entry_lock_use_their_old_file_names(tmp_path):
    local = str(tmp_path / "shard.tar")
    holder = RawHolder(local + ".lock")  # ppwids' lock file name
    try:
        assert _locks.try_lock_file(local + ".lock") is None
    finally:
        holder.release()
    with wids_dl.ULockFile(local + ".lock"):
        assert _locks.try_lock_file(local + ".lock") is None  # exclusive within the process, too
    fd = _locks.try_lock_file(local + ".lock")
    assert fd is not None
    os.close(fd)

    dest = str(tmp_path / "cache" / "x.tar")
    os.makedirs(os.path.dirname(dest))
    lock_file = cache._lock_path(dest)
    assert os.path.basename(lock_file).startswith(".ppwds-lock-")
    holder = RawHolder(lock_file)
    try:
        assert _locks.try_lock_file(lock_file) is None
        assert not _locks.unheld(lock_file)
    finally:
        holder.release()
    with cache._entry_lock(dest):
        assert not _locks.unheld(lock_file)
    assert _locks.unheld(lock_file)


def test_cleanup_lock_excludes_a_raw_holder_and_is_released(tmp_path):
    path = str(tmp_path / ".cleanup.lock")
    holder = RawHolder(path)
    try:
        assert wids_cleanup.ExclusiveLock(path).try_lock() is False
    finally:
        holder.release()
    lock = wids_cleanup.ExclusiveLock(path)
    assert lock.try_lock() is True
    assert wids_cleanup.ExclusiveLock(path).try_lock() is False
    lock.release_lock()
    again = wids_cleanup.ExclusiveLock(path)
    assert again.try_lock() is True
    again.release_lock()


def test_keep_while_reading_deletes_only_after_the_last_reader(tmp_path):
    path = tmp_path / "shard.tar"
    path.write_bytes(b"x")
    first, second = open(path, "rb"), open(path, "rb")
    wids_mmtar.keep_while_reading(str(path), first.fileno(), "start")
    wids_mmtar.keep_while_reading(str(path), second.fileno(), "start")
    wids_mmtar.keep_while_reading(str(path), first.fileno(), "end")
    assert path.exists()  # the second reader still holds its shared lock
    first.close()
    wids_mmtar.keep_while_reading(str(path), second.fileno(), "end")
    assert not path.exists()
    second.close()


def test_keep_while_reading_leaves_a_file_another_process_reads(tmp_path):
    path = tmp_path / "shard.tar"
    path.write_bytes(b"x")
    holder = RawHolder(path, shared=True)
    try:
        with open(path, "rb") as f:
            wids_mmtar.keep_while_reading(str(path), f.fileno(), "start")
            wids_mmtar.keep_while_reading(str(path), f.fileno(), "end")
        assert path.exists()
    finally:
        holder.release()


def test_holding_locks_an_open_file_for_a_block(tmp_path):
    path = tmp_path / "log"
    with open(path, "a") as f, _locks.holding(f.fileno()):
        assert not _locks.unheld(str(path))
    assert _locks.unheld(str(path))


def test_flock_is_called_only_from_the_lock_module():
    callers = set()
    for path in sorted((ROOT / "python").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and node.attr in ("flock", "lockf")
                and isinstance(node.value, ast.Name)
                and node.value.id == "fcntl"
            ):
                callers.add(path.relative_to(ROOT).as_posix())
    assert callers == {"python/ppwebdataset/_locks.py"}
