"""Downloading remote shards and descriptors into a local cache.

Remote URLs are read through the streaming side's opener (:func:`ppwebdataset.gopen.gopen`):
one HTTP stack for both packages (curl with ``CURL_OPTIONS``: its retries, ``-f`` so an HTTP
error is an error, the ``hf:`` token on curl's stdin), the same ``GOPEN_REWRITE``,
``USE_AIS_FOR`` and ``gopen_schemes`` entries, and every program run with an argument list,
never a shell. ``pipe:`` URLs are shell commands: the user's own run as in wids, but one
read from a remote descriptor is refused unless ``PPWDS_ALLOW_PIPE=1`` is set.

Every download goes to a unique temporary file next to its destination and is
renamed into place only when complete (for shards: read to the end of the
archive), so a reader never sees a partial file. A lock file next to the
destination makes concurrent processes (DataLoader workers, several ranks on one
host) download each file once. The mechanics are shared with the streaming cache
(:mod:`ppwebdataset._download`), including the removal of temporary files left by
killed processes.
"""

from __future__ import annotations

import importlib
import io
import os
import shlex
import shutil
import subprocess
import sys
import threading
import time
from collections import deque
from urllib.parse import urlparse

from ppwebdataset import _download, _locks, _settings
from ppwebdataset.errors import PpwdsError, UnsafeOperationError
from ppwebdataset.gopen import local_path, pipe_allowed, scheme_of  # noqa: F401 - pipe_allowed kept importable

# The module (the package attribute ``ppwebdataset.gopen`` is the function); calls go through
# it so that a patched ``gopen.gopen`` or ``gopen_schemes`` entry is used here as well.
_gopen = importlib.import_module("ppwebdataset.gopen")

#: ``(url, local, end time, seconds)`` of recent downloads in this process.
recent_downloads: deque = deque(maxlen=1000)


class DownloadError(PpwdsError, OSError):
    """A remote file could not be fetched."""

    def __init__(self, message, *, url=None):
        super().__init__(message)
        self.url = url


class ULockFile:
    """An exclusive, blocking lock on ``path`` (``flock``), usable across processes and threads.

    The lock file is left in place: deleting it while another process waits on the
    old file would let a third process lock a new file at the same time.
    """

    def __init__(self, path):
        self.lockfile_path = path
        self._held = None

    def __enter__(self):
        self._held = _locks.locked(self.lockfile_path)
        self._held.__enter__()
        return self

    def __exit__(self, exc_type, exc_val, exc_tb):
        held, self._held = self._held, None
        held.__exit__(exc_type, exc_val, exc_tb)


def _fail(url, what):
    return DownloadError(f"cannot download {url}: {what}", url=url)


def _open_remote(url):
    """``url`` opened for reading by gopen; ftp (which gopen, like webdataset, has no entry
    for) through the same curl call."""
    if scheme_of(url) == "ftp" and "ftp" not in _gopen.gopen_schemes:
        return _gopen.gopen_curl(url, "rb")
    return _gopen.gopen(url, "rb")


# A download that receives nothing for this long is given up (the child is stopped), so a
# stalled server cannot hang a dataset access forever.
TIMEOUT = _settings.env_float("WIDS_DOWNLOAD_TIMEOUT", 300.0)


class _Stall:
    """Watches a download's progress; stops the child when no data arrived for ``timeout`` s."""

    def __init__(self, stream, timeout):
        self.stream, self.timeout = stream, timeout
        self.last = time.monotonic()
        self.fired = False
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self):
        if hasattr(self.stream, "_stop") and self.timeout and self.timeout > 0:
            self._thread.start()
        return self

    def __exit__(self, *exc):
        self._done.set()

    def _watch(self):
        while not self._done.wait(min(1.0, self.timeout)):
            if time.monotonic() - self.last > self.timeout:
                self.fired = True
                self.stream._stop()
                return


def _copy_remote(url, out):
    """Copy ``url`` into the binary file ``out``; a failure is a :class:`DownloadError`."""
    try:
        with _open_remote(url) as stream, _Stall(stream, TIMEOUT) as stall:
            read = getattr(stream, "read1", stream.read)  # read1: progress is seen per chunk
            try:
                while True:  # to the end: the end of data is where a failed transfer raises
                    data = read(1 << 20)
                    if not data:
                        break
                    stall.last = time.monotonic()
                    out.write(data)
            except (OSError, ValueError):
                if stall.fired:
                    raise _fail(url, f"no data for {TIMEOUT:g} s (WIDS_DOWNLOAD_TIMEOUT)") from None
                raise
            if stall.fired:
                raise _fail(url, f"no data for {TIMEOUT:g} s (WIDS_DOWNLOAD_TIMEOUT)")
    except UnsafeOperationError:
        raise
    except DownloadError:
        raise
    except (OSError, ValueError) as e:
        what = str(e)
        raise _fail(url, what[len(url) + 2 :] if what.startswith(url + ": ") else what) from e


def http_download(remote, local):
    """Fetch a remote URL (http(s), ftp, or any scheme gopen opens) into ``local``."""
    with open(local, "wb") as out:
        _copy_remote(remote, out)


def run_download_command(argv, remote):
    """Run a downloader program given as an argument list; a failure names the URL and status."""
    try:
        result = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, check=False)
    except FileNotFoundError:
        raise _fail(remote, f"the program {argv[0]!r} is not installed") from None
    if result.returncode != 0:
        err = result.stderr.decode("utf-8", "replace").strip()[-500:]
        raise _fail(remote, f"{argv[0]} exited with status {result.returncode}: {err}")


# gs: and s3: go through gopen too (gsutil / aws with an argument list, or ais under USE_AIS_FOR).
gs_download = s3_download = http_download


def pipe_download(remote, local):
    """Run a ``pipe:`` command (one read from a remote descriptor needs PPWDS_ALLOW_PIPE=1).

    A command containing ``{local}`` writes that file itself; otherwise its
    standard output is saved.
    """
    _settings.check_pipe(remote)
    cmd = remote[len("pipe:") :]
    if "{local}" in cmd:
        result = subprocess.run(cmd.replace("{local}", shlex.quote(local)), shell=True, check=False)
    else:
        with open(local, "wb") as out:
            result = subprocess.run(cmd, shell=True, stdout=out, check=False)
    if result.returncode != 0:
        raise _fail(remote, f"command exited with status {result.returncode}")


def copy_file(remote, local):
    """Copy a local path or ``file:`` URL."""
    src = os.path.abspath(local_path(remote))
    if src == os.path.abspath(local):
        return
    shutil.copyfile(src, local)


def template_handler(template):
    """Turn an upstream-style command template (``"curl -L {url} -o {local}"``) into a handler.

    The template is split into words first and the URL is substituted into single
    arguments, so no shell ever sees it.
    """
    words = shlex.split(template)

    def run(remote, local):
        run_download_command([w.replace("{url}", remote).replace("{local}", local) for w in words], remote)

    return run


default_cmds = {
    "posixpath": copy_file,
    "file": copy_file,
    "pipe": pipe_download,
    "http": http_download,
    "https": http_download,
    "ftp": http_download,
    "gs": gs_download,
    "s3": s3_download,
}


def url_scheme(url: str) -> str:
    """``pipe`` for pipe: URLs, ``posixpath`` for local paths, else the URL scheme."""
    if url.startswith("pipe:"):
        return "pipe"
    return scheme_of(url) or "posixpath"


def _gopen_opens(scheme) -> bool:
    return scheme != "__default__" and (scheme in _gopen.gopen_schemes or scheme in _gopen._ais_schemes())


def _resolve_handler(remote, handlers):
    handlers = default_cmds if handlers is None else handlers
    schema = url_scheme(remote)
    handler = handlers.get(schema)
    if handler is None and handlers is default_cmds and _gopen_opens(schema):
        handler = http_download  # hf:, htgs:, ais:, sftp: ... : whatever gopen opens
    if handler is None:
        raise _fail(remote, f"unknown URL scheme {schema!r}")
    if isinstance(handler, str):
        handler = template_handler(handler)
    return handler


def download_file_no_log(remote, local, handlers=None, *, validate=None):
    """Download ``remote`` to ``local`` via a temporary file and an atomic rename
    (after ``validate(temp_path)``, which may raise, when given)."""
    handler = _resolve_handler(remote, handlers)
    _download.fetch_unlocked(local, lambda tmp: handler(remote, tmp), validate=validate)
    return local


def download_file(remote, local, handlers=None, verbose=False, *, validate=None):
    """:func:`download_file_no_log`, recorded in :data:`recent_downloads`."""
    start = time.time()
    try:
        return download_file_no_log(remote, local, handlers=handlers, validate=validate)
    finally:
        recent_downloads.append((remote, local, time.time(), time.time() - start))
        if verbose:
            print("downloaded", remote, "to", local, "in", time.time() - start, "seconds", file=sys.stderr)


def fetch(remote, local, handlers=None, verbose=False, *, validate=None) -> bool:
    """Make sure ``local`` holds ``remote``, downloading it once across processes.

    ``validate(temp_path)`` (e.g. :func:`check_shard`) may raise to keep a bad download
    out of the cache. Returns True when this call downloaded the file, False when it was
    already there.
    """
    handler = _resolve_handler(remote, handlers)
    start = time.time()

    def fill(tmp):
        if verbose:
            print("downloading", remote, "to", local, file=sys.stderr)
        handler(remote, tmp)

    try:
        fetched = _download.fetch(local, fill, lock_path=local + ".lock", validate=validate)
    except BaseException:
        recent_downloads.append((remote, local, time.time(), time.time() - start))
        raise
    if fetched:
        recent_downloads.append((remote, local, time.time(), time.time() - start))
        if verbose:
            print("downloaded", remote, "to", local, "in", time.time() - start, "seconds", file=sys.stderr)
    elif verbose:
        print("using cached", local, file=sys.stderr)
    return fetched


def check_shard(remote):
    """A ``validate`` for :func:`fetch`: the download must be a whole tar (to its end marker)."""

    def validate(tmp):
        try:
            _download.check_complete_shard(tmp, remote)
        except Exception as exn:
            raise _fail(remote, f"the download is not a complete shard ({exn})") from exn

    return validate


def evict(local, extra=()):
    """Remove a cached download (and ``extra`` companion files) under its lock."""
    _download.evict(local, lock_path=local + ".lock", extra=extra)


def download_and_open(remote, local, mode="rb", handlers=None, verbose=False):
    """Download ``remote`` to ``local`` unless already there, then open it."""
    fetch(remote, local, handlers=handlers, verbose=verbose)
    return open(local, mode)


def fetch_bytes(url) -> bytes:
    """The contents of a small local or remote file (dataset descriptors)."""
    path = local_path(url)
    if path is not None:
        with open(path, "rb") as f:
            return f.read()
    if _resolve_handler(url, None) is http_download:
        out = io.BytesIO()
        _copy_remote(url, out)
        return out.getvalue()
    import tempfile

    with tempfile.TemporaryDirectory() as tmpdir:
        name = os.path.join(tmpdir, os.path.basename(urlparse(url).path) or "download")
        download_file_no_log(url, name)
        with open(name, "rb") as f:
            return f.read()


__all__ = [
    "DownloadError",
    "check_shard",
    "evict",
    "ULockFile",
    "default_cmds",
    "download_and_open",
    "download_file",
    "download_file_no_log",
    "fetch",
    "fetch_bytes",
    "recent_downloads",
]
