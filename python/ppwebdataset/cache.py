"""Opening shard URLs for a pipeline, optionally through a local file cache.

``StreamingOpen`` streams every URL; ``FileCache`` downloads remote shards into
a cache directory first and reads them from there. Local paths are never
copied into the cache.

The cache is safe to share between threads and processes:

* a download goes to a unique temporary file next to its destination and is
  renamed into place atomically, after validation (by default: the whole archive
  reads to its end-of-archive marker, so a cut download never enters the cache);
  failures leave nothing, and temporary files of killed processes are removed the
  next time the directory is used (shared with ppwids: :mod:`ppwebdataset._download`);
* a cached shard that fails to read later is removed, fetched again and read
  once more (skipping the samples already delivered);
* a lock file per entry makes concurrent processes download a URL only once;
* cache names are a hash of the full URL plus its readable basename, so shards
  with the same basename from different places do not collide;
* with ``cache_size > 0``, the least recently *used* files are evicted (every
  use touches the file), never one this process is handing out or reading
  (another process may unlink it, but on POSIX an open file stays readable,
  and a file that vanishes before it is opened is fetched again).

Environment: ``WDS_CACHE`` (cache directory), ``WDS_CACHE_SIZE`` (bytes),
``WDS_VERBOSE_CACHE=1`` (report downloads and evictions on stderr).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib
import logging
import os
import re
import shlex
import sys
import threading
import time
import urllib.parse
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from urllib.parse import urlparse

from . import _download, _settings, filters
from .errors import CorruptShardError, TruncatedShardError
from .gopen import local_path, scheme_of
from .handlers import reraise_exception
from .tariterators import group_by_keys, tar_file_expander
from .utils import obsolete

# The module, as in upstream (the package-level ``gopen`` is the function). Calls go through
# it so that replacing ``ppwebdataset.gopen.gopen`` also changes how the cache opens URLs.
gopen = importlib.import_module(".gopen", __package__)


def _env_float(name, default):
    return _settings.env_float(name, default)


def _env_flag(name):
    return _settings.env_flag(name)


default_cache_dir = _settings.env_str("WDS_CACHE", "./_cache")
default_cache_size = _env_float("WDS_CACHE_SIZE", 1e18)
verbose_cache = int(_env_flag("WDS_VERBOSE_CACHE"))

_logger = logging.getLogger(__name__)

# Internal files in a cache directory; LRU accounting treats them specially.
_TMP_PREFIX = _download.TMP_PREFIX
_LOCK_PREFIX = ".ppwds-lock-"

# Temporary files untouched for this long belong to a crashed process.
STALE_TEMP_SECONDS = _download.STALE_TEMP_SECONDS

# Indirection so tests can observe the retry back-off without waiting.
_sleep = time.sleep


def _say(msg, verbose):
    if verbose or _env_flag("WDS_VERBOSE_CACHE"):
        print(msg, file=sys.stderr, flush=True)
    else:
        _logger.debug(msg)


# ---------------------------------------------------------------------------
# Files currently handed out by this process (never evicted)
# ---------------------------------------------------------------------------

_in_use: Counter = Counter()
_in_use_lock = threading.Lock()


@contextlib.contextmanager
def _using(path):
    if path is None:
        yield
        return
    key = os.path.abspath(path)
    with _in_use_lock:
        _in_use[key] += 1
    try:
        yield
    finally:
        with _in_use_lock:
            _in_use[key] -= 1
            if _in_use[key] <= 0:
                del _in_use[key]


def _busy_paths():
    with _in_use_lock:
        return set(_in_use)


# ---------------------------------------------------------------------------
# File types by magic bytes (no external `file` command)
# ---------------------------------------------------------------------------


# Labels for compressed data. Whether a file is compressed (gzip, bzip2, xz) and whether
# a tar header starts it is the core's decision (_download.probe_tar_start); these
# magic numbers only name what it found, and zstd, which the core does not read.
_COMPRESSED_LABELS = (
    (b"\x1f\x8b", "gzip compressed data"),
    (b"BZh", "bzip2 compressed data"),
    (b"\xfd7zXZ\x00", "XZ compressed data"),
    (b"\x28\xb5\x2f\xfd", "Zstandard compressed data"),
)


def _sniff(fname: str) -> tuple[str, bool]:
    """``(kind, is_tar)`` of a local file: a ``file(1)``-style label, and whether the core
    reads a tar (plain or compressed) at its start."""
    with open(fname, "rb") as f:
        head = f.read(_download.PROBE_BYTES)
    if not head:
        return "empty", False
    compressed, is_tar = _download.probe_tar_start(head, whole=len(head) < _download.PROBE_BYTES)
    label = next((name for magic, name in _COMPRESSED_LABELS if head.startswith(magic)), None)
    if compressed or label is not None:
        return label or "compressed data", is_tar and compressed
    if not is_tar:
        return "data", False
    if not any(head[:1024]):
        return "tar archive (empty)", True
    if head[257:263] == b"ustar\x00":
        return "POSIX tar archive", True
    if head[257:265] == b"ustar  \x00":
        return "POSIX tar archive (GNU)", True
    return "tar archive (V7)", True


def magic_filetype(fname: str) -> str:
    """Describe a file from its first bytes, in the style of ``file(1)``: ``"<fname>: <type>"``."""
    return f"{fname}: {_sniff(fname)[0]}"


def get_filetype(fname: str) -> str:
    """The file type of ``fname`` (by magic bytes; upstream ran the ``file`` command)."""
    if not os.path.exists(fname):
        raise FileNotFoundError(fname)
    return magic_filetype(fname)


def check_tar_format(fname: str) -> bool:
    """True when a tar archive starts the file, plain or compressed (gzip, bzip2, xz), as the
    core reads it: a valid first header, not just the right magic bytes."""
    return _sniff(fname)[1]


# ---------------------------------------------------------------------------
# URLs and cache names
# ---------------------------------------------------------------------------


def islocal(url) -> bool:
    """True for local paths and ``file:`` URLs."""
    return scheme_of(url) in ("", "file")


_URL_WORD = re.compile(r"^(https?|hdfs|gs|ais|s3|hf|htgs|ftps?|sftp|scp):")


def pipe_cleaner(spec):
    """The URL inside a ``pipe:`` command (its first word that looks like a URL).

    Other specs are returned unchanged, so this is a usable ``url_to_name``.
    """
    if not isinstance(spec, str) or not spec.startswith("pipe:"):
        return spec
    cmd = spec[5:]
    try:
        words = shlex.split(cmd)
    except ValueError:
        words = cmd.split()
    for word in words:
        if _URL_WORD.match(word):
            return word
    return spec


_UNSAFE_NAME_CHARS = re.compile(r"[^A-Za-z0-9._+=,@-]")
_NAME_LIMIT = 120


def _readable(part: str) -> str:
    part = _UNSAFE_NAME_CHARS.sub("_", part).lstrip(".")
    return part[-_NAME_LIMIT:]


_PLAIN_SCHEMES = ("", "file", "http", "https", "ftp", "ftps", "gs", "s3", "ais")


def url_to_cache_name(url, ndir=0):
    """Upstream's guess of a cache name: the URL's basename with ``ndir`` parent directories.

    ``"http://h/a/b/shard-1.tar"`` gives ``"shard-1.tar"`` (``ndir=1``: ``"b/shard-1.tar"``);
    URLs of other schemes (``pipe:`` ...) are percent-quoted, keeping the last 128 characters.
    Two URLs with the same basename get the same name; the cache itself does not use this
    function as is (see ``_cache_file_name``), so its entries never collide.
    """
    if not isinstance(url, str):
        raise AssertionError(f"url_to_cache_name expects a str, not {type(url).__name__}")
    parsed = urlparse(url)
    if parsed.scheme in _PLAIN_SCHEMES:
        parts = parsed.path.lstrip("/").split("/")
        return "/".join(parts[-1 - ndir :])
    return urllib.parse.quote(url, safe="_+{}*,-")[-128:]


def _cache_file_name(url, ndir=0):
    """The cache's own, collision-free name for ``url``.

    A hash of the whole URL followed by the URL's basename (and ``ndir`` parent
    directories, joined with ``-``), e.g. ``"1f3c0a9e4b7d2c55-shard-000017.tar"``:
    ``a/x.tar`` and ``b/x.tar`` must not overwrite each other.
    """
    if not isinstance(url, str):
        raise TypeError(f"cache names are made from str URLs, not {type(url).__name__}")
    digest = hashlib.sha256(url.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    target = pipe_cleaner(url)
    path = urlparse(target).path if scheme_of(target) not in ("", "pipe") else target
    parts = [p for p in re.split(r"[/\\]", path) if p and p not in (".", "..")]
    keep = [_readable(p) for p in parts[-1 - max(0, int(ndir)) :]]
    readable = "-".join(p for p in keep if p)[-_NAME_LIMIT:] or "data"
    return f"{digest}-{readable}"


_HAS_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+:")


def _checked_name(name, url) -> str:
    """Validate the output of a ``url_to_name`` function as a relative path in the cache."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"bad cache name {name!r} for {url}")
    if _HAS_SCHEME.match(name):
        # e.g. pipe_cleaner returns a URL: name the entry after that URL.
        return _cache_file_name(name)
    parts = name.replace("\\", "/").split("/")
    if (
        "\0" in name
        or os.path.isabs(name)
        or any(p in ("", ".", "..") for p in parts)
        or parts[-1].startswith((_TMP_PREFIX, _LOCK_PREFIX))
    ):
        raise ValueError(f"bad cache name {name!r} for {url}")
    return os.path.join(*parts)


def _lock_path(dest: str) -> str:
    folder, base = os.path.split(dest)
    digest = hashlib.sha256(base.encode("utf-8", "surrogatepass")).hexdigest()[:24]
    return os.path.join(folder, _LOCK_PREFIX + digest)


def _entry_lock(dest: str):
    """Exclusive lock (across threads and processes) on one cache entry."""
    return _download.locked(_lock_path(dest))


def _remove_lock(dest: str):
    """Delete an evicted entry's lock file unless someone holds it."""
    _download.remove_unheld_lock(_lock_path(dest))


def _touch(path):
    with contextlib.suppress(OSError):
        os.utime(path)


# ---------------------------------------------------------------------------
# Eviction
# ---------------------------------------------------------------------------


def last_used(path) -> float:
    """When a cache file was last used: the later of its access and modification times."""
    st = os.stat(path)
    return max(st.st_atime, st.st_mtime)


class LRUCleanup:
    """Keep the files under ``cache_dir`` below ``cache_size`` bytes, evicting the least recently used.

    ``keyfn(path)`` orders files for eviction (smallest first); the default is
    :func:`last_used` (upstream's ``os.path.getctime`` made it FIFO). A scan
    runs at most every ``interval`` seconds (``None`` or 0: every call). Files
    being read through this module, and ``keep``, are never evicted; stale
    temporary files of crashed downloads are removed.
    """

    def __init__(
        self,
        cache_dir=None,
        cache_size=int(1e12),
        keyfn=last_used,
        verbose=False,
        interval=30,
    ):
        self.cache_dir = cache_dir
        self.cache_size = cache_size
        self.keyfn = keyfn
        self.verbose = verbose
        self.interval = interval
        self.last_run = 0.0

    def set_cache_dir(self, cache_dir):
        self.cache_dir = cache_dir

    def cleanup(self, keep=()):
        """Evict files until the directory fits; returns the paths removed."""
        removed = []
        if self.cache_dir is None or not os.path.isdir(self.cache_dir):
            return removed
        now = time.time()
        if self.interval and now - self.last_run < self.interval:
            return removed
        self.last_run = now
        total = 0
        candidates = []
        for dirpath, _dirnames, filenames in os.walk(self.cache_dir):
            for fname in filenames:
                path = os.path.join(dirpath, fname)
                try:
                    st = os.stat(path)
                except OSError:
                    continue  # removed meanwhile by another process
                if fname.startswith(_LOCK_PREFIX):
                    continue
                if fname.startswith(_TMP_PREFIX):
                    if _download.is_stale_temp(path, now):
                        with contextlib.suppress(OSError):
                            os.unlink(path)
                            removed.append(path)
                        continue
                    total += st.st_size  # an active download: counts, but is not ours to delete
                    continue
                total += st.st_size
                candidates.append((path, st.st_size))
        if total <= self.cache_size:
            return removed
        protected = _busy_paths() | {os.path.abspath(p) for p in keep}
        ordered = []
        for path, size in candidates:
            if os.path.abspath(path) in protected:
                continue
            try:
                ordered.append((self.keyfn(path), path, size))
            except OSError:
                continue
        ordered.sort(key=lambda t: t[0])
        for _key, path, size in ordered:
            if total <= self.cache_size:
                break
            try:
                os.unlink(path)
            except FileNotFoundError:
                total -= size
                continue
            except OSError:
                continue
            total -= size
            removed.append(path)
            _remove_lock(path)
            _say(f"# evicted {path} ({size} bytes)", self.verbose)
        return removed


# ---------------------------------------------------------------------------
# Downloading
# ---------------------------------------------------------------------------


def _temp_file(folder):
    """Create a unique temporary file in ``folder`` (host + pid + thread + random); returns (fd, path)."""
    return _download.new_temp(folder)


def _invalid_download(url, temp):
    kind = magic_filetype(temp).rsplit(": ", 1)[-1]
    with open(temp, "rb") as f:
        head = f.read(200)
    return ValueError(f"{url}: downloaded data is not a tar archive but {kind}; it starts with {head!r}")


class IncompleteDownloadError(TruncatedShardError):
    """A download ended before its archive did (a server that closed early, say)."""


def check_tar_complete(fname: str) -> bool:
    """:func:`check_tar_format`, and the whole archive reads to its end-of-archive marker
    (a compressed one to the end of its stream); a cut or damaged file raises a ``ShardError``.

    The default validator of :class:`FileCache`: a truncated download never enters the cache.
    """
    if not check_tar_format(fname):
        return False
    _download.check_complete_shard(fname)
    return True


def download(url, dest, chunk_size=1024**2, verbose=False, *, validator=None):
    """Download ``url`` to ``dest`` atomically.

    The data goes to a unique temporary file in ``dest``'s directory, is checked
    with ``validator(path)`` when one is given, and is then renamed to ``dest``.
    On any failure the temporary file is removed and the error propagates.
    """

    def fill(temp):
        with open(temp, "wb") as out, gopen.gopen(url, "rb") as stream:
            while True:
                data = stream.read(chunk_size)
                if not data:
                    break
                out.write(data)

    def validate(temp):
        if validator is None:
            return
        try:
            ok = validator(temp)
        except (TruncatedShardError, CorruptShardError) as exn:
            raise IncompleteDownloadError(
                f"{url}: the download is not a complete shard ({exn}); not cached",
                url=url,
                member=exn.member,
                offset=exn.offset,
            ) from exn
        if not ok:
            raise _invalid_download(url, temp)

    _download.fetch_unlocked(dest, fill, validate=validate)
    _say(f"# downloaded {url} to {dest}", verbose)
    return dest


# ---------------------------------------------------------------------------
# Pipeline stages
# ---------------------------------------------------------------------------


def _split_sample(sample):
    """``(url, other_fields)`` from a shard-list item (a dict with ``url``, a str or a path)."""
    if isinstance(sample, dict):
        if "url" not in sample:
            raise ValueError(f"shard item {sample!r} has no 'url'")
        extra = {k: v for k, v in sample.items() if k not in ("url", "stream", "local_path")}
        return sample["url"], extra
    return sample, {}


def _open_local(url, path):
    return dict(url=url, stream=open(path, "rb"), local_path=path)


class StreamingOpen:
    """Pipeline stage: ``dict(url=...)`` items in, ``dict(url=..., stream=...)`` out.

    Local paths and ``file:`` URLs are opened directly and also report
    ``local_path``; other URLs are opened with :func:`gopen`. An error goes to
    ``handler``: True skips the URL, False ends the stage, raising propagates.
    The consumer closes each stream.
    """

    def __init__(self, verbose=False, handler=reraise_exception):
        self.verbose = verbose
        self.handler = handler

    def __call__(self, urls):
        for sample in urls:
            try:
                url, extra = _split_sample(sample)
                url = os.fspath(url)
                _say(f"# opening {url}", self.verbose)
                path = local_path(url)
                if path is not None:
                    item = _open_local(url, path)
                else:
                    item = dict(url=url, stream=gopen.gopen(url, "rb"))
            except Exception as exn:
                if self.handler(exn):
                    continue
                return
            yield {**extra, **item}


class FileCache:
    """Pipeline stage that downloads remote shards into ``cache_dir`` and opens the local copy.

    Yields ``dict(url=..., stream=<binary file>, local_path=...)`` once per URL.

    Args:
        cache_dir: cache directory (created if missing); None means
            ``WDS_CACHE`` or ``./_cache``.
        url_to_name: maps a URL to a cache file name (a relative path). A
            result that is itself a URL (``pipe_cleaner``) is hashed into a name.
        verbose: report downloads and evictions on stderr (also ``WDS_VERBOSE_CACHE=1``).
        validator: ``validator(path) -> bool`` run on each download before it
            enters the cache (None: no check). The default,
            :func:`check_tar_complete`, reads the whole archive.
        handler: error handler. True retries the URL with a short back-off (up
            to ``max_attempts`` tries, then the URL is skipped); False ends the
            stage at once; raising propagates.
        cache_size: byte limit for the directory; <= 0 means unlimited.
        cache_cleanup_interval: minimum seconds between eviction scans.
        max_attempts, retry_delay: retry policy (delay doubles each time).
    """

    def __init__(
        self,
        cache_dir: str | None = None,
        *,
        url_to_name: Callable[[str], str] | None = url_to_cache_name,
        verbose: bool = False,
        validator: Callable[[str], bool] | None = check_tar_complete,
        handler: Callable[[Exception], bool] = reraise_exception,
        cache_size: int = -1,
        cache_cleanup_interval: int = 30,
        max_attempts: int = 5,
        retry_delay: float = 0.1,
    ):
        # The default (upstream's basename naming) lets a/x.tar and b/x.tar collide; use the hashed name.
        self.url_to_name = _cache_file_name if url_to_name in (None, url_to_cache_name) else url_to_name
        self.validator = validator
        self.handler = handler
        if cache_dir is None:
            cache_dir = _settings.env_str("WDS_CACHE") or default_cache_dir
        self.cache_dir = os.path.expanduser(os.fspath(cache_dir))
        self.verbose = verbose
        self.cache_size = cache_size
        self.max_attempts = max(1, int(max_attempts))
        self.retry_delay = retry_delay
        if cache_size is not None and cache_size > 0:
            self.cleaner: LRUCleanup | None = LRUCleanup(
                self.cache_dir,
                cache_size,
                verbose=verbose,
                interval=cache_cleanup_interval,
            )
        else:
            self.cleaner = None

    def cache_path(self, url: str) -> str:
        """Where ``url`` is (or would be) cached."""
        return os.path.join(self.cache_dir, _checked_name(self.url_to_name(url), url))

    def _cleanup(self, keep):
        if self.cleaner is not None:
            self.cleaner.cleanup(keep=keep)

    def get_file(self, url: str) -> str:
        """The local path holding ``url``'s data, downloading it into the cache if needed."""
        url = os.fspath(url)
        path = local_path(url)
        if path is not None:
            return path
        dest = self.cache_path(url)
        _download.clean_stale_temps(os.path.dirname(dest))
        if os.path.exists(dest):
            _touch(dest)
            return dest
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        with _using(dest):
            with _entry_lock(dest):
                if os.path.exists(dest):  # another thread or process got it first
                    _touch(dest)
                    return dest
                self._cleanup(keep=[dest])
                _say(f"# downloading {url} to {dest}", self.verbose)
                download(url, dest, verbose=self.verbose, validator=self.validator)
            self._cleanup(keep=[dest])
        return dest

    def _open(self, url):
        path = local_path(url)
        if path is not None:
            return _open_local(url, path)
        for attempt in range(2):
            dest = self.get_file(url)
            try:
                return dict(url=url, stream=open(dest, "rb"), local_path=dest)
            except FileNotFoundError:
                if attempt:  # evicted by another process twice in a row
                    raise

    def _refetch(self, url, dest, exn):
        """A cached copy failed to read: remove it, fetch it again, open the new copy."""
        _say(f"# {dest} failed to read ({exn}); fetching {url} again", self.verbose)
        with _entry_lock(dest):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(dest)
        path = self.get_file(url)
        return dict(url=url, stream=open(path, "rb"), local_path=path)

    def __call__(self, urls: Iterable) -> Iterator[dict]:
        for sample in urls:
            delay = self.retry_delay
            for attempt in range(1, self.max_attempts + 1):
                held = contextlib.ExitStack()
                try:
                    url, extra = _split_sample(sample)
                    url = os.fspath(url)
                    if local_path(url) is None:
                        # Protect the entry from eviction until the consumer moves on.
                        held.enter_context(_using(self.cache_path(url)))
                    item = self._open(url)
                except Exception as exn:
                    held.close()
                    if not self.handler(exn):
                        return
                    if attempt < self.max_attempts:
                        _sleep(delay)
                        delay *= 2
                    continue
                if local_path(url) is None:
                    item["__refetch__"] = functools.partial(self._refetch, url, item["local_path"])
                with held:
                    yield {**extra, **item}
                break


def resolve_cache_settings(cache_dir=None, cache_size=-1):
    """``(cache_dir, cache_size)`` as ``WebDataset`` uses them.

    ``WDS_CACHE`` overrides the directory and ``WDS_CACHE_SIZE`` the size; the
    directory is user-expanded and must exist (ValueError otherwise).
    """
    size = _settings.env_float("WDS_CACHE_SIZE")
    if size is not None:
        cache_size = int(size)
    cache_dir = _settings.env_str("WDS_CACHE") or cache_dir
    if cache_dir is not None:
        cache_dir = os.path.expanduser(os.fspath(cache_dir))
        if not os.path.isdir(cache_dir):
            raise ValueError(f"cache directory {cache_dir} does not exist")
    return cache_dir, cache_size


def make_opener(cache_dir=None, cache_size=-1, handler=reraise_exception, url_to_name=None, verbose=False):
    """The opener stage ``WebDataset`` uses: ``StreamingOpen`` unless a cache is configured.

    Call :func:`resolve_cache_settings` first to apply the environment.
    """
    if cache_dir is None or cache_size == 0:
        return StreamingOpen(handler=handler, verbose=verbose)
    return FileCache(
        cache_dir,
        cache_size=cache_size,
        handler=handler,
        url_to_name=url_to_name or url_to_cache_name,
        verbose=verbose,
    )


# ---------------------------------------------------------------------------
# Obsolete upstream API (raises unless ALLOW_OBSOLETE=1, like upstream; works when allowed)
# ---------------------------------------------------------------------------


@obsolete
def cached_url_opener(
    data,
    handler=reraise_exception,
    cache_size=-1,
    cache_dir=None,
    url_to_name=pipe_cleaner,
    validator=check_tar_complete,
    verbose=False,
    always=False,
):
    """Open each ``dict(url=...)`` through a file cache, adding ``stream`` (and ``local_path``).

    ``always`` is accepted for compatibility; local paths are never copied.
    """
    cache = FileCache(
        cache_dir,
        url_to_name=url_to_name,
        verbose=verbose or verbose_cache,
        validator=validator,
        handler=handler,
        cache_size=cache_size,
    )
    for sample in data:
        if not isinstance(sample, dict) or "url" not in sample:
            raise ValueError(f"expected dict(url=...), got {sample!r}")
        url = os.fspath(sample["url"])
        try:
            path = cache.get_file(url)
            if local_path(url) is not None and validator and not validator(path):
                raise _invalid_download(url, path)
            sample.update(stream=open(path, "rb"), local_path=path)
        except Exception as exn:
            exn.args = (*exn.args, url)
            if handler(exn):
                continue
            return
        with _using(path):
            yield sample


@obsolete
def cached_tarfile_samples(
    src,
    handler=reraise_exception,
    cache_size=-1,
    cache_dir=None,
    verbose=False,
    url_to_name=pipe_cleaner,
    always=False,
    select_files=None,
    rename_files=None,
):
    """Samples from tar shards opened through a file cache."""
    streams = cached_url_opener(
        src,
        handler=handler,
        cache_size=cache_size,
        cache_dir=cache_dir,
        verbose=verbose or _env_flag("GOPEN_VERBOSE"),
        url_to_name=url_to_name,
        always=always,
    )
    # The marker keeps a shard listed twice in a row (resampling) from merging its samples.
    files = tar_file_expander(
        streams, handler=handler, select_files=select_files, rename_files=rename_files, eof_value={}
    )
    return group_by_keys(files, handler=handler)


#: ``cached_tarfile_samples`` as a pipeline stage factory (upstream's ``pipelinefilter``).
cached_tarfile_to_samples = filters.pipelinefilter(cached_tarfile_samples)


__all__ = [
    "FileCache",
    "LRUCleanup",
    "StreamingOpen",
    "cached_tarfile_samples",
    "cached_tarfile_to_samples",
    "cached_url_opener",
    "check_tar_format",
    "default_cache_dir",
    "default_cache_size",
    "download",
    "get_filetype",
    "islocal",
    "last_used",
    "magic_filetype",
    "make_opener",
    "pipe_cleaner",
    "resolve_cache_settings",
    "url_to_cache_name",
    "verbose_cache",
]
