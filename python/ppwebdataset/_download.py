"""Getting a remote file into a local cache: once across processes, atomically, validated.

Shared by the streaming cache (:mod:`ppwebdataset.cache`) and ppwids (:mod:`ppwids.wids_dl`):

* the data goes to a temporary ``.ppwds-tmp-<host>-<pid>-<random>`` file next to its
  destination, held under an ``flock`` while it is written, then checked and renamed
  into place, so a file under a cache name is always complete;
* a lock file per entry makes concurrent processes fetch a file once;
* temporary files left by a killed process (its pid is gone on this host and nobody
  holds their lock, or they are older than :data:`STALE_TEMP_SECONDS`) are removed the
  next time the directory is used.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import secrets
import socket
import threading
import time

from . import _locks

TMP_PREFIX = ".ppwds-tmp-"

#: Temporary files untouched for this long are removed whoever wrote them.
STALE_TEMP_SECONDS = 3600.0


def _host_tag() -> str:
    """Names this host and pid namespace, so pids in temp names are judged only where they mean something."""
    try:
        ns = os.readlink("/proc/self/ns/pid")
    except OSError:
        ns = ""
    return hashlib.sha256(f"{socket.gethostname()}|{ns}".encode()).hexdigest()[:8]


_HOST = _host_tag()


# The lock helpers live in _locks (shared with ppwids); the names stay importable here.
locked = _locks.locked
remove_unheld_lock = _locks.remove_unheld


def new_temp(folder):
    """A new temporary file in ``folder``, locked while open; returns ``(fd, path)``."""
    flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0) | getattr(os, "O_CLOEXEC", 0)
    while True:
        name = f"{TMP_PREFIX}{_HOST}-{os.getpid()}-{threading.get_ident()}-{secrets.token_hex(6)}"
        path = os.path.join(folder, name)
        try:
            fd = os.open(path, flags, 0o666)
        except FileExistsError:
            continue
        _locks.flock(fd)
        return fd, path


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # exists, owned by someone else (or cannot tell: assume alive)
    return True


def is_stale_temp(path, now=None) -> bool:
    """True when no live writer can own the temporary file ``path``."""
    try:
        st = os.stat(path)
    except OSError:
        return False
    now = time.time() if now is None else now
    age = now - st.st_mtime
    if age > STALE_TEMP_SECONDS:
        return True
    parts = os.path.basename(path)[len(TMP_PREFIX) :].split("-")
    if len(parts) < 3 or parts[0] != _HOST or not parts[1].isdigit():
        return False  # another host's (or an older) temp: only its age can tell
    pid = int(parts[1])
    if pid == os.getpid() or _pid_alive(pid):
        return False
    # The writer is gone: the file is stale unless a child it forked still holds the lock.
    return _locks.unheld(path)


_cleaned: set = set()
_cleaned_lock = threading.Lock()


def clean_stale_temps(folder, *, again=False) -> list:
    """Remove stale temporary files directly in ``folder`` (once per process and folder
    unless ``again``); returns the paths removed."""
    key = os.path.abspath(folder)
    with _cleaned_lock:
        if key in _cleaned and not again:
            return []
        _cleaned.add(key)
    removed: list[str] = []
    now = time.time()
    try:
        entries = list(os.scandir(key))
    except OSError:
        return removed
    for entry in entries:
        if not entry.name.startswith(TMP_PREFIX):
            continue
        if is_stale_temp(entry.path, now):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(entry.path)
                removed.append(entry.path)
    return removed


#: Bytes of a file's start that :func:`probe_tar_start` hands to the core.
PROBE_BYTES = 64 << 10


def probe_tar_start(head: bytes, whole: bool) -> tuple[bool, bool]:
    """``(compressed, starts_as_tar)`` for the first bytes of a file, as the core reads them.

    The core's reader decides both: which compression it undoes (gzip, bzip2, xz) and
    whether the first tar header is valid (checksum, fields). Only damage at the very
    start counts against the file; ``head`` ending mid-archive is expected unless it is
    the ``whole`` file, which then needs at least one complete header.
    """
    from ._core import TarSampleReader
    from .errors import CorruptShardError, ShardError, TruncatedShardError

    if not head:
        return False, False
    reader = TarSampleReader(io.BytesIO(head), "<probe>", group=False)
    compressed = reader.compressed
    try:
        while reader.next_batch():
            pass
    except CorruptShardError as exn:
        if not exn.offset:
            return compressed, False
    except TruncatedShardError as exn:
        # No member named: the data ended before the first header was complete.
        if whole and not exn.offset and exn.member is None:
            return compressed, False
    except ShardError:
        pass  # cut short by the probe, or a member the reader refuses: still a tar
    finally:
        reader.close()
    return compressed, True


def check_complete_shard(path, url=None):
    """Raise a ``ShardError`` unless ``path`` is a whole tar (plain or compressed): every
    header up to the end-of-archive marker, and a compressed stream to its end."""
    from ._core import scan_shard

    scan_shard(os.fspath(path), url)


def fetch_unlocked(dest, fill, *, validate=None):
    """Fetch into ``dest`` through a temporary file (the caller holds the entry lock).

    ``fill(temp_path)`` writes the data into an existing, empty temporary file (or
    replaces it); ``validate(temp_path)`` may raise to refuse it. Only a validated file is
    renamed to ``dest``; on any failure the temporary file is removed.
    """
    folder = os.path.dirname(os.path.abspath(dest))
    os.makedirs(folder, exist_ok=True)
    clean_stale_temps(folder)
    fd, temp = new_temp(folder)
    try:
        fill(temp)
        if not os.path.exists(temp):
            raise FileNotFoundError(f"the download of {dest} produced no file")
        if validate is not None:
            validate(temp)
        os.replace(temp, dest)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
    finally:
        os.close(fd)


def fetch(dest, fill, *, lock_path, validate=None) -> bool:
    """Make sure ``dest`` exists, fetching it once across processes (see
    :func:`fetch_unlocked`); returns True when this call fetched it."""
    folder = os.path.dirname(os.path.abspath(dest))
    os.makedirs(folder, exist_ok=True)
    clean_stale_temps(folder)  # also when the file is there already: this is a use of the cache
    with locked(lock_path):
        if os.path.exists(dest):
            return False
        fetch_unlocked(dest, fill, validate=validate)
    return True


def evict(dest, *, lock_path, extra=()):
    """Remove a cached file (and ``extra`` companions) under its entry lock."""
    with locked(lock_path):
        for path in (dest, *extra):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
