"""Indexed, random access to WebDataset shards: :class:`ShardListDataset` and its samplers.

Each shard is indexed by the Rust core in one pass over its headers (long names,
pax paths and duplicate members handled), so ``ds[i]`` costs one positioned read
(``pread``) and one dict. A shard truncated while open raises
``TruncatedShardError``, never SIGBUS. Remote shards are downloaded once into
a cache directory and checked against the descriptor (``nsamples``, and
``filesize``/``md5sum`` when given) before use.
"""

from __future__ import annotations

import base64
import hashlib
import io
import math
import operator
import os
import random
import re
import sys
import warnings
from bisect import bisect_right
from collections.abc import Callable, Iterator, Sequence
from typing import IO, Any, Self
from urllib.parse import urlparse

import numpy as np

from ppwebdataset import _core, _settings
from ppwebdataset._core import ShardIndex, is_meta
from ppwebdataset.errors import ShardError, ShardIndexError
from ppwebdataset.gopen import local_path
from ppwebdataset.utils import paddle_rank_info

from ._paddle import Dataset, Sampler
from .wids_decode import DefaultDecoder, default_decoder
from .wids_dl import check_shard, download_and_open, evict, fetch
from .wids_lru import LRUCache
from .wids_mmtar import MMIndexedTar
from .wids_specs import load_dsdesc_and_resolve, urldir
from .wids_tar import TarFileReader, find_index_file

DEFAULT_CACHE = "/tmp/_wids_cache"
SIDECAR_SUFFIX = ".ppwidx"


# ---------------------------------------------------------------------------
# Names, checksums, counting
# ---------------------------------------------------------------------------


def compute_file_md5sum(fname, chunksize: int = 1 << 20) -> str:
    """The md5 hex digest of a file (path or binary stream, read from the start)."""
    md5 = hashlib.md5()
    if isinstance(fname, (str, os.PathLike)):
        with open(fname, "rb") as f:
            for chunk in iter(lambda: f.read(chunksize), b""):
                md5.update(chunk)
    else:
        fname.seek(0)
        for chunk in iter(lambda: fname.read(chunksize), b""):
            md5.update(chunk)
    return md5.hexdigest()


def compute_num_samples(fname) -> int:
    """The number of samples in a local shard; a damaged shard (a sample repeating an
    extension included, which could not be read) raises its ``ShardError``."""
    index = ShardIndex(os.fspath(fname))
    try:
        index.check_duplicates()
        return len(index)
    finally:
        index.close()


def splitname(fname):
    """``(key, extension)`` the wids way: the key runs to the first dot of the basename,
    the extension keeps its dot (``"a/b.seg.jpg"`` → ``("a/b", ".seg.jpg")``).

    The rule is the core's ``keys::wids_split``, which the shard index uses too; where
    streaming splits a name at all, it gives streaming's key with a dot before its extension
    (tests/ppwids/test_wids_keys.py checks both on generated names)."""
    raw = fname.encode("utf-8", "surrogatepass")
    k = _core.wids_split(raw)
    if k is None:
        raise ValueError(f"file name {fname!r} has no extension")
    return raw[:k].decode("utf-8", "surrogatepass"), raw[k:].decode("utf-8", "surrogatepass")


def group_by_key(names):
    """Indices of ``names`` grouped into samples of adjacent equal keys, as the shard index
    groups a tar: names without a dot and metadata members (``__name__``, ``__dir__/...``,
    the core's ``is_meta``, also used by streaming) join no sample."""
    groups = []
    last_key = None
    current: list = []
    for i, fname in enumerate(names):
        if "." not in fname or is_meta(fname):
            continue
        key, _ = splitname(fname)
        if key != last_key:
            if current:
                groups.append(current)
            current = []
            last_key = key
        current.append(i)
    if current:
        groups.append(current)
    return groups


def _safe_basename(url: str) -> str:
    name = os.path.basename(urlparse(url).path) or "shard"
    name = re.sub(r"[^A-Za-z0-9._-]", "_", name)[-120:]
    return name.lstrip(".") or "shard"


def url_hash(url: str) -> str:
    """16 hex digits identifying a URL (used to make cache names unique)."""
    return hashlib.sha256(url.encode("utf-8", "surrogatepass")).hexdigest()[:16]


class CacheLocalname:
    """Maps a shard URL to a file in ``cachedir``: a hash of the whole URL plus its basename,
    so shards with the same basename in different places never share a cache file."""

    def __init__(self, cachedir: str) -> None:
        self.cachedir = os.fspath(cachedir)

    def __call__(self, shard: str) -> str:
        os.makedirs(self.cachedir, exist_ok=True)
        return os.path.join(self.cachedir, f"{url_hash(shard)}__{_safe_basename(shard)}")

    def __repr__(self):
        return f"CacheLocalname({self.cachedir!r})"


DefaultLocalname = CacheLocalname


def cache_localname(cachedir):
    """A picklable local-name function for ``cachedir``."""
    return CacheLocalname(cachedir)


def default_localname(dldir=DEFAULT_CACHE):
    """A picklable local-name function for ``dldir``."""
    return CacheLocalname(dldir)


hash_localname = default_localname


def hash_dataset_name(input_string):
    """The first 16 characters of the url-safe base64 SHA-256 of ``input_string``."""
    digest = hashlib.sha256(input_string.encode()).digest()
    return base64.urlsafe_b64encode(digest)[:16].decode("ascii")


# ---------------------------------------------------------------------------
# One shard
# ---------------------------------------------------------------------------

_md5_seen: dict = {}


def _verify_file(path, url, desc):
    """Checks size and md5 against the descriptor entry (md5 once per file version)."""
    st = os.stat(path)
    expected = desc.get("filesize")
    if expected is not None and st.st_size != expected:
        raise ShardIndexError(
            f"shard {url} ({path}) has {st.st_size} bytes but the descriptor says {expected}: "
            "the cached copy is stale or the descriptor is out of date"
        )
    md5sum = desc.get("md5sum")
    if md5sum:
        stamp = (path, st.st_size, st.st_mtime_ns, st.st_ino)
        got = _md5_seen.get(stamp)
        if got is None:
            got = _md5_seen[stamp] = compute_file_md5sum(path)
        if got != md5sum:
            raise ShardIndexError(f"shard {url} ({path}) has md5 {got} but the descriptor says {md5sum}")


class IndexedTarSamples:
    """The samples of one local shard, by position.

    ``samples[i]`` is ``{".ext": bytes, ..., "__key__": key}``. With ``md5sum`` or
    ``expected_size`` (the sample count) the shard is checked first and a mismatch
    raises :class:`~ppwebdataset.errors.ShardIndexError`.
    """

    def __init__(
        self,
        *,
        path=None,
        stream=None,
        md5sum=None,
        expected_size=None,
        use_mmap=True,
        index_file=None,
        url=None,
        filesize=None,
    ):
        if path is None and stream is not None:
            path = getattr(stream, "name", None)
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError("IndexedTarSamples needs the path of a local shard file")
        self.path = os.fspath(path)
        self.url = url or self.path
        _verify_file(self.path, self.url, {"md5sum": md5sum, "filesize": filesize})
        sidecar = index_file(self.path) if callable(index_file) else index_file
        self.index = ShardIndex(self.path, sidecar=sidecar, url=self.url)
        # Bound once: the hot path in ShardListDataset calls them directly.
        self.get_sample = self.index.get_sample
        self.dataset_sample = self.index.dataset_sample
        if expected_size is not None and len(self.index) != expected_size:
            n = len(self.index)
            self.index.close()
            raise ShardIndexError(
                f"shard {self.url} has {n} samples but the descriptor says {expected_size}: "
                "the descriptor (or a cached copy of the shard) is out of date; "
                "rebuild the descriptor with `widsindex create`"
            )

    def __len__(self):
        return len(self.index)

    def __getitem__(self, idx):
        return self.index.get_sample(operator.index(idx))

    def keys(self):
        return self.index.keys()

    def close(self):
        self.index.close()

    def __repr__(self):
        return f"<IndexedTarSamples {self.url} ({len(self.index)} samples)>"


def _close_shard(key, value):
    value.close()


class LRUShards:
    """Open shards by URL, at most ``lru_size`` at a time.

    Local paths and ``file:`` URLs are used in place; other URLs are downloaded
    (once, across processes) to ``localname(url)``. A cached copy that fails the
    descriptor's checks is downloaded again once; a fresh copy that fails raises.
    """

    def __init__(self, lru_size, keep=False, localname=None, *, index_dir="auto", handlers=None, verbose=False):
        self.lru_size = lru_size
        self.keep = keep
        self.localname = localname if localname is not None else default_localname(DEFAULT_CACHE)
        self.index_dir = index_dir
        self.handlers = handlers
        self.verbose = verbose
        self.lru = LRUCache(lru_size, release_handler=_close_shard)
        # Changes whenever a shard may have been opened, evicted or closed.
        self.generation = 0
        self.reset_stats()

    def reset_stats(self):
        self.accesses = 0
        self.misses = 0
        self.last_missed = False

    def __len__(self):
        return len(self.lru)

    def release_handler(self, key, value):
        value.close()

    def clear(self):
        self.generation += 1
        self.lru.clear()

    def _local_sidecar(self, path):
        if self.index_dir in (None, False, "auto"):
            return None
        os.makedirs(self.index_dir, exist_ok=True)
        name = f"{url_hash(os.path.abspath(path))}__{_safe_basename(path)}{SIDECAR_SUFFIX}"
        return os.path.join(self.index_dir, name)

    def _cached_sidecar(self, local):
        return None if self.index_dir in (None, False) else local + SIDECAR_SUFFIX

    def _open(self, path, url, desc, sidecar):
        return IndexedTarSamples(
            path=path,
            url=url,
            md5sum=desc.get("md5sum"),
            filesize=desc.get("filesize"),
            expected_size=desc.get("nsamples"),
            index_file=sidecar,
        )

    def open_shard(self, url, desc=None):
        desc = desc or {}
        path = None if url.startswith("pipe:") else local_path(url)
        if path is not None:
            return self._open(path, url, desc, self._local_sidecar(path))
        local = self.localname(url)
        downloaded = fetch(url, local, handlers=self.handlers, verbose=self.verbose, validate=check_shard(url))
        try:
            return self._open(local, url, desc, self._cached_sidecar(local))
        except (ShardIndexError, ShardError):
            if downloaded:
                raise
        # A stale or damaged cached copy: replace it once.
        evict(local, extra=[local + SIDECAR_SUFFIX])
        fetch(url, local, handlers=self.handlers, verbose=self.verbose, validate=check_shard(url))
        return self._open(local, url, desc, self._cached_sidecar(local))

    def get_shard(self, url, desc=None):
        self.accesses += 1
        shard = self.lru.get(url)
        if shard is not None:
            self.last_missed = False
            return shard
        self.misses += 1
        self.last_missed = True
        shard = self.open_shard(url, desc)
        self.generation += 1
        self.lru[url] = shard
        return shard


# ---------------------------------------------------------------------------
# The dataset
# ---------------------------------------------------------------------------


def interpret_transformations(transformations):
    """A list of callables from ``"PIL"``, ``"numpy"``, callables, lists of those, or None."""
    if transformations is None:
        return []
    if not isinstance(transformations, (list, tuple)):
        transformations = [transformations]
    result = []
    for t in transformations:
        if isinstance(t, str):
            if t.lower() not in ("pil", "numpy"):
                raise ValueError(f"unknown transformation {t!r}: use 'PIL', 'numpy' or a callable")
            t = DefaultDecoder(format=t)
        elif not callable(t):
            raise TypeError(f"transformations must be callables or 'PIL'/'numpy', got {t!r}")
        result.append(t)
    return result


class ShardListDataset(Dataset):
    """A map-style dataset over a list of shards.

    Args:
        shards: a list of ``{"url": ..., "nsamples": ...}`` dicts (optionally with
            ``md5sum`` and ``filesize``), or the path/URL/stream of a JSON descriptor
            (see :mod:`ppwids.wids_specs`).
        cache_dir: where remote shards are downloaded (default: ``$WIDS_CACHE`` or
            ``/tmp/_wids_cache``). Cache names are a hash of the full URL plus the
            basename, so they never collide.
        lru_size: how many shards stay open at once.
        dataset_name: name used when ``shards`` is a list.
        localname: a function URL → local file name (overrides ``cache_dir``).
        transformations: ``"PIL"`` (default), ``"numpy"``, a callable taking and
            returning a sample, a list of those, or ``[]`` for raw samples.
        base: where relative shard URLs resolve (default: the descriptor's directory).
        options: entries merged into the descriptor before resolving it.
        index_dir: sidecar index files: ``"auto"`` keeps one next to each downloaded
            shard, a directory path keeps them there for local shards too, None
            disables them.
        as_streams: return ``io.BytesIO`` values like wids 0.1.11 instead of ``bytes``.
        verbose: print a summary and downloads to stderr (default: ``$WIDS_VERBOSE``).
        cache_size, keep: accepted for compatibility; downloaded files are kept
            (use :mod:`ppwids.wids_cleanup` to bound the cache).

    ``ds[i]`` is ``{".jpg": ..., "__key__", "__dataset__", "__index__", "__shard__",
    "__shardindex__"}`` after the transformations. Negative indices count from the end.
    """

    def __init__(
        self,
        shards: str | os.PathLike[str] | IO[str] | Sequence[dict[str, Any]],
        *,
        cache_size: int = int(1e12),
        cache_dir: str | os.PathLike[str] | None = None,
        lru_size: int = 10,
        dataset_name: str | None = None,
        localname: Callable[[str], str] | None = None,
        transformations: str | Callable[..., Any] | Sequence[str | Callable[..., Any]] | None = "PIL",
        keep: bool = False,
        base: str | None = None,
        options: dict[str, Any] | None = None,
        index_dir: str | None = "auto",
        as_streams: bool = False,
        verbose: bool | None = None,
    ) -> None:
        super().__init__()
        if options is None:
            options = {}
        if isinstance(shards, (str, os.PathLike)) or hasattr(shards, "read"):
            if isinstance(shards, os.PathLike):
                shards = os.fspath(shards)
            if base is None and isinstance(shards, str):
                base = urldir(shards)
            self.base = base
            self.spec = load_dsdesc_and_resolve(shards, options=options, base=base)
            self.shards = self.spec.get("shardlist", [])
            self.dataset_name = self.spec.get("name") or hash_dataset_name(str(shards))
        else:
            from .wids_specs import check_shards

            self.base = None
            self.spec = dict(options)
            self.shards = check_shards([dict(s) for s in shards])
            self.dataset_name = dataset_name or hash_dataset_name(str(shards))

        self.lengths = [int(shard["nsamples"]) for shard in self.shards]
        self.cum_lengths = np.cumsum(self.lengths, dtype=np.int64)
        self.total_length = int(sum(self.lengths))
        self._ends = [int(x) for x in self.cum_lengths]
        self._starts = [end - n for end, n in zip(self._ends, self.lengths, strict=True)]

        if cache_dir is not None:
            self.cache_dir: str | None = os.fspath(cache_dir)
            self.localname = cache_localname(self.cache_dir)
        elif localname is not None:
            self.cache_dir = None
            self.localname = localname
        else:
            self.cache_dir = _settings.env_str("WIDS_CACHE", DEFAULT_CACHE)
            self.localname = default_localname(self.cache_dir)

        if verbose is None:
            verbose = _settings.env_flag("WIDS_VERBOSE")
        self.verbose = bool(verbose)
        if self.verbose:
            nbytes = sum(shard.get("filesize", 0) for shard in self.shards)
            print(
                str(shards)[:50],
                "base:",
                self.base,
                "name:",
                self.spec.get("name"),
                "nfiles:",
                len(self.shards),
                "nbytes:",
                nbytes,
                "samples:",
                self.total_length,
                "cache:",
                self.cache_dir,
                file=sys.stderr,
            )
        self.transformations = interpret_transformations(transformations)
        if lru_size > 200:
            warnings.warn("LRU size is very large; consider reducing it to avoid running out of file descriptors")
        self.cache_size = cache_size
        self.keep = keep
        self.lru_size = lru_size
        self.index_dir = index_dir
        self.as_streams = as_streams
        self._miss_warned = False
        self._hot: tuple | None = None
        self.cache = self._make_cache()

    def _make_cache(self):
        return LRUShards(
            self.lru_size,
            keep=self.keep,
            localname=self.localname,
            index_dir=self.index_dir,
            verbose=self.verbose,
        )

    # Open shards hold file handles: never pickle them, reopen lazily in the new process.
    def __getstate__(self):
        state = self.__dict__.copy()
        state["cache"] = None
        state["_hot"] = None
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self.cache = self._make_cache()

    def add_transform(self, transform: str | Callable[..., Any] | Sequence[str | Callable[..., Any]]) -> Self:
        """Appends a transformation; returns the dataset."""
        self.transformations.extend(interpret_transformations(transform))
        return self

    def __len__(self) -> int:
        return self.total_length

    def get_stats(self) -> tuple[int, int]:
        """``(accesses, misses)`` of the open-shard cache."""
        return self.cache.accesses, self.cache.misses

    def check_cache_misses(self):
        """Warns once when over 30% of accesses open a shard (raise ``lru_size``, or use a shard sampler)."""
        accesses, misses = self.get_stats()
        if not self._miss_warned and accesses > 100 and misses / accesses > 0.3:
            self._miss_warned = True
            warnings.warn(
                f"ShardListDataset has a shard cache miss rate of {misses / accesses:.1%}; "
                "increase lru_size or use ShardListSampler/ChunkedSampler"
            )

    def _position(self, index):
        if not isinstance(index, int):
            index = operator.index(index)
        n = self.total_length
        i = index + n if index < 0 else index
        if i < 0 or i >= n:
            raise IndexError(f"index {index} out of range for a dataset of {n} samples")
        return i

    def get_shard(self, index):
        """``(shard, index within it, descriptor entry)`` for a global index."""
        i = self._position(index)
        k = bisect_right(self._ends, i)
        desc = self.shards[k]
        return self.cache.get_shard(desc["url"], desc), i - self._starts[k], desc

    def __getitem__(self, index: int) -> Any:
        """Sample ``index`` as a dict (after the transformations); negative indices count from the end."""
        hot = self._hot
        if hot is not None and type(index) is int:
            start, end, cache, generation, read, dataset, url = hot
            if start <= index < end and cache.generation == generation and cache is self.cache:
                # The shard of the last access, and nothing opened or evicted since: it
                # is still open and already the most recently used entry.
                cache.accesses += 1
                cache.last_missed = False
                # Adds __dataset__, __index__, __shard__, __shardindex__ in the same call.
                sample = read(index - start, dataset, index, url)
                if self.as_streams or self.transformations:
                    return self._finish(sample)
                return sample
        return self._getitem(index)

    def _getitem(self, index):
        if not isinstance(index, int):
            if isinstance(index, slice):
                return [self[i] for i in range(*index.indices(self.total_length))]
            index = operator.index(index)
        n = self.total_length
        i = index + n if index < 0 else index
        if i < 0 or i >= n:
            raise IndexError(f"index {index} out of range for a dataset of {n} samples")
        k = bisect_right(self._ends, i)
        start = self._starts[k]
        desc = self.shards[k]
        cache = self.cache
        read = cache.get_shard(desc["url"], desc).dataset_sample
        dataset, url = desc.get("dataset"), desc["url"]
        self._hot = (start, self._ends[k], cache, cache.generation, read, dataset, url)
        sample = read(i - start, dataset, i, url)
        if cache.last_missed:
            self.check_cache_misses()
        return self._finish(sample)

    def _finish(self, sample):
        if self.as_streams:
            for key, value in sample.items():
                if key[0] == ".":
                    sample[key] = io.BytesIO(value)
        for transform in self.transformations:
            sample = transform(sample)
        return sample

    def close(self) -> None:
        """Closes every open shard (they reopen on the next access)."""
        self.cache.clear()

    def __repr__(self):
        return f"<ShardListDataset {self.dataset_name}: {len(self.shards)} shards, {self.total_length} samples>"


# ---------------------------------------------------------------------------
# Samplers
# ---------------------------------------------------------------------------


def lengths_to_ranges(lengths):
    """``[3, 2]`` → ``[(0, 3), (3, 5)]``."""
    ranges = []
    start = 0
    for length in lengths:
        ranges.append((start, start + length))
        start += length
    return ranges


def intersect_range(a, b):
    """The intersection of two half-open ranges, or None."""
    result = max(a[0], b[0]), min(a[1], b[1])
    if result[0] >= result[1]:
        return None
    return result


def intersect_ranges(rangelist, r):
    """The non-empty intersections of ``r`` with each range of ``rangelist``."""
    result = []
    for a in rangelist:
        x = intersect_range(a, r)
        if x is not None:
            result.append(x)
    return result


def iterate_ranges(ranges, rng, indexshuffle=True, shardshuffle=True):
    """Indices of ``ranges``, range by range; both orders optionally shuffled with ``rng``."""
    order = list(range(len(ranges)))
    if shardshuffle:
        rng.shuffle(order)
    for i in order:
        lo, hi = ranges[i]
        indexes = list(range(lo, hi))
        if indexshuffle:
            rng.shuffle(indexes)
        yield from indexes


_EPOCH_STRIDE = 1289738273


class ShardListSampler(Sampler):
    """Shuffles shards, then the samples within each shard, so reads stay local.

    Epoch ``e`` uses ``random.Random(seed + 1289738273 * e)`` (same order as wids);
    the shard order is kept in epoch 0 unless ``shufflefirst``. The epoch advances
    after each complete pass, or is set with :meth:`set_epoch`.
    """

    def __init__(
        self, dataset: Any, *, lengths: Sequence[int] | None = None, seed: int = 0, shufflefirst: bool = False
    ) -> None:
        super().__init__(None)
        if lengths is None:
            lengths = list(dataset.lengths)
        self.ranges = lengths_to_ranges(lengths)
        self.seed = seed
        self.shufflefirst = shufflefirst
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """The epoch whose order the next pass uses."""
        self.epoch = epoch

    def __len__(self) -> int:
        return sum(hi - lo for lo, hi in self.ranges)

    def __iter__(self) -> Iterator[int]:
        rng = random.Random(self.seed + _EPOCH_STRIDE * self.epoch)
        shardshuffle = self.shufflefirst or self.epoch > 0
        yield from iterate_ranges(self.ranges, rng, shardshuffle=shardshuffle)
        self.epoch += 1


ShardedSampler = ShardListSampler


class ChunkedSampler(Sampler):
    """Cuts ``[lo, hi)`` into chunks of ``chunksize`` indices, shuffles the chunk order and
    the indices inside each chunk (locality with a good shuffle).

    ``num_samples`` is the dataset length (default), an int ``hi`` or a ``(lo, hi)`` pair.
    Seeding and epochs work as in :class:`ShardListSampler`.
    """

    def __init__(
        self,
        dataset: Any,
        *,
        num_samples: int | tuple[int, int] | None = None,
        chunksize: int = 2000,
        seed: int = 0,
        shuffle: bool = True,
        shufflefirst: bool = False,
    ) -> None:
        super().__init__(None)
        if isinstance(num_samples, int):
            lo, hi = 0, num_samples
        elif num_samples is None:
            lo, hi = 0, len(dataset)
        else:
            lo, hi = num_samples
        chunksize = int(chunksize)
        if chunksize < 1:
            raise ValueError(f"chunksize must be positive, got {chunksize}")
        self.lo, self.hi = lo, hi
        self.ranges = [(i, min(i + chunksize, hi)) for i in range(lo, hi, chunksize)]
        self.seed = seed
        self.shuffle = shuffle
        self.shufflefirst = shufflefirst
        self.epoch = 0
        # Indices at or past this wrap around (padding in DistributedChunkedSampler).
        self.modulus: int | None = None

    def set_epoch(self, epoch: int) -> None:
        """The epoch whose order the next pass uses."""
        self.epoch = epoch

    def __len__(self) -> int:
        return max(0, self.hi - self.lo)

    def __iter__(self) -> Iterator[int]:
        rng = random.Random(self.seed + _EPOCH_STRIDE * self.epoch)
        shardshuffle = self.shufflefirst or self.epoch > 0
        indices = iterate_ranges(
            self.ranges,
            rng,
            indexshuffle=self.shuffle,
            shardshuffle=(self.shuffle and shardshuffle),
        )
        m = self.modulus
        if m is None or self.hi <= m:
            yield from indices
        else:
            for i in indices:
                yield i % m
        self.epoch += 1


class DistributedChunkedSampler(ChunkedSampler):
    """A :class:`ChunkedSampler` over this rank's contiguous share of the dataset.

    Every rank gets ``ceil(N / num_replicas)`` indices; the last ones wrap around to the
    start, so all ranks run the same number of steps (with ``drop_last=True`` each gets
    ``floor(N / num_replicas)`` and the tail is left out). ``rank`` and ``num_replicas``
    default to Paddle's (env ``RANK``/``WORLD_SIZE``, an initialised
    ``paddle.distributed``, or ``PADDLE_TRAINER_ID``/``PADDLE_TRAINERS_NUM``); an explicit
    ``rank=0`` is respected.
    """

    def __init__(
        self,
        dataset: Any,
        *,
        num_replicas: int | None = None,
        num_samples: int | None = None,
        rank: int | None = None,
        shuffle: bool = True,
        shufflefirst: bool = False,
        seed: int = 0,
        drop_last: bool | None = None,
        chunksize: int = 1000000,
    ) -> None:
        if rank is None or num_replicas is None:
            env_rank, env_world = paddle_rank_info()
            if num_replicas is None:
                num_replicas = env_world
            if rank is None:
                rank = env_rank
        num_replicas, rank = int(num_replicas), int(rank)
        if num_replicas < 1 or not 0 <= rank < num_replicas:
            raise ValueError(f"invalid rank {rank} for {num_replicas} replicas")
        total = int(num_samples) if num_samples is not None else len(dataset)
        per_rank = total // num_replicas if drop_last else math.ceil(total / num_replicas)
        lo = rank * per_rank
        super().__init__(
            dataset,
            num_samples=(lo, lo + per_rank),
            chunksize=chunksize,
            seed=seed,
            shuffle=shuffle,
            shufflefirst=shufflefirst,
        )
        self.rank = rank
        self.num_replicas = num_replicas
        self.total_size = total
        self.drop_last = bool(drop_last)
        self.modulus = total if total > 0 else None


__all__ = [
    "ChunkedSampler",
    "MMIndexedTar",
    "TarFileReader",
    "download_and_open",
    "find_index_file",
    "DistributedChunkedSampler",
    "IndexedTarSamples",
    "LRUShards",
    "ShardListDataset",
    "ShardListSampler",
    "ShardedSampler",
    "compute_file_md5sum",
    "compute_num_samples",
    "default_decoder",
    "group_by_key",
    "interpret_transformations",
    "splitname",
]
