"""Keeping a download cache directory below a size and file-count limit."""

from __future__ import annotations

import glob
import os
import time

from ppwebdataset import _locks


def keep_most_recent_files(pattern, maxsize=int(1e12), maxfiles=1000, debug=False):
    """Deletes the least recently used files matching ``pattern`` beyond ``maxsize`` bytes or
    ``maxfiles`` files. Recency is the later of access and modification time."""
    files = []
    for fname in glob.glob(pattern):
        try:
            s = os.stat(fname)
        except FileNotFoundError:
            continue
        if not os.path.isfile(fname):
            continue
        files.append((max(s.st_atime, s.st_mtime), fname, s.st_size))
    files.sort(reverse=True)
    total = 0
    cutoff = len(files)
    for i, (_, _, size) in enumerate(files):
        total += size
        if total > maxsize or i >= maxfiles:
            cutoff = i
            break
    for _, fname, _ in reversed(files[cutoff:]):
        if debug:
            print("removing", fname)
        try:
            os.unlink(fname)
        except FileNotFoundError:
            pass


class ExclusiveLock:
    """A non-blocking exclusive lock on a file (``flock``, through :mod:`ppwebdataset._locks`)."""

    def __init__(self, lockfile):
        self.lockfile = lockfile
        self.lock = None  # the open descriptor while held

    def try_lock(self):
        self.lock = _locks.try_lock_file(self.lockfile)
        return self.lock is not None

    def release_lock(self):
        if self.lock is not None:
            os.close(self.lock)
            self.lock = None


def _cleanup_worker(pattern, maxsize, maxfiles, every):
    lock = ExclusiveLock(os.path.join(os.path.dirname(pattern) or ".", ".cleanup.lock"))
    if not lock.try_lock():
        return
    try:
        while True:
            keep_most_recent_files(pattern, maxsize=maxsize, maxfiles=maxfiles)
            time.sleep(every)
    finally:
        lock.release_lock()


def create_cleanup_background_process(pattern, maxsize=int(1e12), maxfiles=1000, every=60):
    """Starts a process that keeps the files matching ``pattern`` under the limits
    (only one such process runs per directory). Returns the process."""
    import multiprocessing

    p = multiprocessing.Process(target=_cleanup_worker, args=(pattern, maxsize, maxfiles, every), daemon=True)
    p.start()
    return p


__all__ = ["ExclusiveLock", "create_cleanup_background_process", "keep_most_recent_files"]
