"""The one home of ``flock``: advisory locks across threads and processes.

Used by the download cache (:mod:`ppwebdataset._download`), ppwids' lock files, its
cleanup process and its last-reader-deletes callback. Lock files keep the names
their callers gave them, so processes running an older release still exclude
each other with ours. Without ``fcntl`` (not POSIX) every lock is granted at once:
callers rely on atomic renames for correctness and on locks only to avoid
duplicate work.
"""

from __future__ import annotations

import contextlib
import os

try:
    import fcntl
except ImportError:  # not POSIX
    fcntl = None  # type: ignore[assignment]

#: True when locks are real (POSIX); False when every lock is granted at once.
AVAILABLE = fcntl is not None

_OPEN_FLAGS = os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)


def flock(fd, *, shared=False, blocking=True) -> bool:
    """Lock the open file ``fd`` (exclusive unless ``shared``); False when ``blocking=False``
    and another holder has it. The lock lasts until :func:`unlock` or until every
    descriptor of that open file is closed."""
    if fcntl is None:
        return True
    op = fcntl.LOCK_SH if shared else fcntl.LOCK_EX
    if not blocking:
        op |= fcntl.LOCK_NB
    try:
        fcntl.flock(fd, op)
    except BlockingIOError:
        return False
    return True


def unlock(fd) -> None:
    if fcntl is not None:
        fcntl.flock(fd, fcntl.LOCK_UN)


@contextlib.contextmanager
def holding(fd, *, shared=False):
    """Hold a blocking lock on the open file ``fd`` for the ``with`` block (e.g. one append)."""
    flock(fd, shared=shared)
    try:
        yield
    finally:
        unlock(fd)


@contextlib.contextmanager
def locked(path):
    """Exclusive, blocking lock on the lock file ``path`` (created if missing).

    The lock file stays: deleting it while another process waits on the old inode would
    let a third process lock a new file at the same time.
    """
    fd = os.open(path, _OPEN_FLAGS, 0o666)
    try:
        flock(fd)
        yield
    finally:
        os.close(fd)  # releases the lock


def try_lock_file(path):
    """A non-blocking exclusive lock on ``path``: the open descriptor (close it to release),
    or None when another holder has it."""
    fd = os.open(path, _OPEN_FLAGS, 0o666)
    try:
        if flock(fd, blocking=False):
            return fd
    except BaseException:
        os.close(fd)
        raise
    os.close(fd)
    return None


def unheld(path) -> bool:
    """True when nobody holds a lock on the existing file ``path`` (False if it cannot be
    opened; True without real locks, as every lock is granted then)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        return flock(fd, blocking=False)
    finally:
        os.close(fd)


def remove_unheld(path) -> None:
    """Delete the lock file ``path`` unless someone holds it (after its entry was evicted)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        if fcntl is not None and flock(fd, blocking=False):
            with contextlib.suppress(OSError):
                os.unlink(path)
    finally:
        os.close(fd)
