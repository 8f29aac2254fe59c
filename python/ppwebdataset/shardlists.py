"""Shard sources and splitters: lists of URLs, resampling, directories, YAML specs."""

from __future__ import annotations

import glob
import os
import random
import re
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from itertools import islice
from typing import TYPE_CHECKING, Any

from . import _settings
from .filters import pipelinefilter
from .paddle import IterableDataset, no_len
from .utils import braceexpand, is_iterable, make_seed, paddle_rank_info, paddle_worker_info, paddle_worker_seed

if TYPE_CHECKING:
    from ._typing import Urls


class MissingVariableError(ValueError, AssertionError):
    """A ``${name}`` in a URL names an unset ``WDS_<name>`` (an AssertionError in webdataset 1.0.2)."""


def envlookup(m):
    """The value of ``WDS_<name>`` for a ``${name}`` match; a clear error if it is unset."""
    key = "WDS_" + m.group(1)
    if key not in os.environ:
        raise MissingVariableError(f"URL uses ${{{m.group(1)}}} but the environment variable {key} is not set")
    return os.environ[key]


def envsubst(s):
    """Replace ``${var}`` with the environment variable ``WDS_var``."""
    return re.sub(r"\$\{(\w+)\}", envlookup, s)


def split_by_node(src, group=None):
    """Keep every ``world_size``-th shard starting at this rank (round robin)."""
    rank, world_size = paddle_rank_info(group)
    if world_size > 1:
        yield from islice(src, rank, None, world_size)
    else:
        yield from src


def single_node_only(src, group=None):
    """Refuse to run with several ranks: an explicit nodesplitter is needed then."""
    _, world_size = paddle_rank_info(group)
    if world_size > 1:
        raise ValueError(
            "you need to add an explicit nodesplitter (e.g. nodesplitter=ppwebdataset.split_by_node) "
            "to your input pipeline for multi-node training"
        )
    yield from src


def split_by_worker(src):
    """Keep every ``num_workers``-th shard starting at this DataLoader worker."""
    _, _, worker, num_workers = paddle_worker_info()
    if num_workers > 1:
        yield from islice(src, worker, None, num_workers)
    else:
        yield from src


def expand_urls(urls):
    """Expand a URL string (``::`` lists, ``${VAR}`` from ``WDS_VAR``, braces); lists pass through."""
    if not isinstance(urls, str):
        result = []
        for u in urls:
            result.extend(expand_urls(u) if isinstance(u, str) else [u])
        return result
    result = []
    for url in urls.split("::"):
        for _ in range(10):
            last = url
            url = envsubst(url)
            if url == last:
                break
        result.extend(braceexpand(url))
    return result


def expand_source(source, max_urls=int(1e9)):
    """A list of URLs from a string, a list or any iterable."""
    if isinstance(source, str):
        return expand_urls(source)
    if isinstance(source, list):
        return source
    if is_iterable(source):
        return list(islice(source, max_urls))
    raise ValueError(f"cannot handle {type(source)}")


def _url_text(url):
    return os.fspath(url) if hasattr(url, "__fspath__") else url


def _directory(path):
    """``path`` as a directory name ending in ``/``; ValueError when it is not a directory."""
    path = _url_text(path)
    if not os.path.isdir(path):
        raise ValueError(f"{path}: not a directory")
    return path if path.endswith("/") else path + "/"


def _matching(directory, pattern):
    """Sorted files of ``directory`` matching the brace/glob ``pattern``."""
    return sorted({f for pat in braceexpand(pattern) for f in glob.glob(directory + pat)})


class SimpleShardList(IterableDataset):
    """Yields ``dict(url=...)`` for each shard.

    Args:
        urls: a brace pattern (``"data-{000..099}.tar"``, ``::``-separated) or a list of URLs.
        seed: None for the given order; an int shuffles (the same order on every pass);
            True shuffles with a time-based seed.
    """

    def __init__(self, urls: str | Iterable[Any], seed: float | None = None) -> None:
        super().__init__()
        if isinstance(urls, str):
            urls = expand_urls(urls)
        else:
            urls = [_url_text(u) for u in urls]
        self.urls: list[str] = list(urls)
        if self.urls and not isinstance(self.urls[0], str):
            raise TypeError(f"shard URLs must be strings, got {type(self.urls[0]).__name__}")
        if seed is True:
            seed = time.time()
        self.seed = seed

    def __len__(self):
        return len(self.urls)

    def __iter__(self):
        urls = list(self.urls)
        if self.seed is not None:
            random.Random(self.seed).shuffle(urls)
        for url in urls:
            yield dict(url=url)


def resampled_(src, n=sys.maxsize):
    """Draw ``n`` items with replacement from the (materialised) source."""
    items = list(src)
    if not items:
        return
    rng = random.Random(int.from_bytes(os.urandom(8), "little"))
    for _ in range(n):
        yield rng.choice(items)


resampled = pipelinefilter(resampled_)


def non_empty(src):
    """Pass items through; raise if there were none."""
    count = 0
    for s in src:
        yield s
        count += 1
    if count == 0:
        raise ValueError("pipeline stage received no data at all and this was declared as an error")


class ResampledShards(IterableDataset):
    """Shards drawn with replacement, ``nshards`` per pass (endless by default; bound it with ``with_epoch``).

    The seed mixes the worker seed, the pass number and ``seed``; unless
    ``deterministic`` it also mixes fresh entropy, so passes and processes differ.
    """

    def __init__(
        self,
        urls: Urls,
        nshards: int = sys.maxsize,
        seed: int | str = 0,
        worker_seed: Any = None,
        deterministic: bool = False,
        max_urls: int = int(1e6),
        empty_check: bool = True,
    ) -> None:
        super().__init__()
        self.urls = [_url_text(u) for u in expand_source(urls, max_urls)]
        if empty_check and len(self.urls) == 0:
            raise ValueError("empty_check=True, but no shards found in ResampledShards")
        if self.urls and not isinstance(self.urls[0], str):
            raise TypeError("shard URLs must be strings")
        self.nshards = nshards
        self.worker_seed = paddle_worker_seed if worker_seed is None else worker_seed
        self.deterministic = deterministic
        self.seed = seed
        self.epoch = -1

    def set_epoch(self, epoch):
        """Set the pass number used in the seed (the next pass uses ``epoch``)."""
        self.epoch = epoch - 1

    def __iter__(self):
        self.epoch += 1
        if self.deterministic:
            seed = make_seed(self.worker_seed(), self.epoch, self.seed)
        else:
            seed = make_seed(self.worker_seed(), self.epoch, self.seed, os.getpid(), time.time_ns(), os.urandom(8))
        if _settings.env_flag("WDS_SHOW_SEED"):
            print(f"# ResampledShards seed {seed}", file=sys.stderr)
        if not self.urls:
            return
        self.rng = random.Random(seed)
        for _ in range(self.nshards):
            yield dict(url=self.urls[self.rng.randrange(len(self.urls))])


# The name webdataset's constructor uses (0.2.86 referenced it without defining it).
ResampledShardList = ResampledShards


def check_pid_is_running(pid):
    """True when a process with this pid exists."""
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


def without_last_extension(fname):
    """``a/b.tar.gz`` → ``a/b.tar``."""
    return re.sub(r"\.[^.]*$", "", fname)


def get_pid_from_filename(fname):
    """The pid in a ``name._<pid>_`` file name, else None."""
    match = re.match(r"^(.*)\._(\d+)_$", fname)
    return int(match.group(2)) if match else None


class DirectoryShardList(IterableDataset):
    """A directory used as a work queue of shards, as in webdataset 1.0.2.

    Each step picks a file matching ``pattern`` (``select="random"`` or
    ``"oldest"`` by mtime), claims it by renaming it to ``<name>._<pid>_`` and
    yields that name; when the consumer asks for the next shard the claimed
    file is recycled by ``mode``: ``"resample"`` renames it back, ``"keep"``
    renames it to ``<name>._done_``, ``"unlink"`` deletes it (any other mode
    leaves it claimed). Files claimed by processes that are gone are recycled
    too (``cleanup_files_without_processes``). While no file matches it waits
    ``poll`` seconds and looks again, for up to ``timeout`` seconds in all;
    with ``poll=None`` it stops as soon as the directory has no candidate.

    This class renames and deletes files by design. ``WebDataset("dir/")``
    does not use it: it reads a directory read-only (:class:`DirectoryListing`).
    Unlike 1.0.2, braces in ``pattern`` are expanded, so the default pattern
    matches ``.tar``, ``.tgz`` and ``.tar.tgz`` files (1.0.2 globbed it literally).
    """

    def __init__(
        self,
        path,
        pattern="*.{tar,tgz,tar.tgz}",
        poll=1,
        timeout=1e12,
        mode="resample",
        select="random",
        fate=None,
    ):
        self.path = _directory(path)
        self.poll = poll
        self.pattern = pattern
        self.mode = mode
        self.select = select
        self.fate = fate
        self.timeout = timeout

    def _candidates(self):
        return _matching(self.path, self.pattern)

    def recycle(self, activename):
        """Release a claimed file according to ``mode``."""
        if self.mode == "unlink":
            os.unlink(activename)
        elif self.mode == "keep":
            os.rename(activename, without_last_extension(activename) + "._done_")
        elif self.mode in ("resample", "resampled"):
            os.rename(activename, without_last_extension(activename))

    def cleanup_files_without_processes(self):
        """Recycle files claimed by processes that no longer run."""
        for fname in glob.glob(os.path.join(self.path, "*._*_")):
            pid = get_pid_from_filename(fname)
            if pid is not None and not check_pid_is_running(pid):
                self.recycle(fname)

    def _pick(self, candidates):
        if self.select == "oldest":
            return min(candidates, key=lambda fn: os.stat(fn).st_mtime)
        if self.select == "random":
            return random.choice(candidates)
        raise ValueError(f"unknown selection strategy {self.select}")

    def __iter__(self):
        start = time.time()
        while time.time() - start < self.timeout:
            candidates = self._candidates()
            if not candidates:
                if self.poll is None:
                    return
                time.sleep(self.poll)
                continue
            candidate = self._pick(candidates)
            activename = f"{candidate}._{os.getpid()}_"
            try:
                os.rename(candidate, activename)
            except FileNotFoundError:  # another process claimed it first
                if self.poll:
                    time.sleep(self.poll)
                continue
            yield dict(url=activename)
            self.recycle(activename)
            self.cleanup_files_without_processes()


class DirectoryListing(IterableDataset):
    """The shards of a directory, read-only: what ``WebDataset("dir/")`` iterates.

    Yields every file matching ``pattern`` once per pass in sorted order, or,
    with ``resampled=True``, draws from them at random without end. Files are
    never renamed or deleted (webdataset 1.0.2 renamed them while reading).
    """

    def __init__(self, path, pattern="*.{tar,tgz,tar.tgz,tar.gz}", resampled=False):
        self.path = _directory(path)
        self.pattern = pattern
        self.resampled = resampled

    def listing(self):
        return _matching(self.path, self.pattern)

    def __iter__(self):
        names = self.listing()
        if not self.resampled:
            for name in names:
                yield dict(url=name)
            return
        if not names:
            return
        rng = random.Random(make_seed(paddle_worker_seed(), os.getpid(), time.time_ns()))
        while True:
            yield dict(url=rng.choice(names))


# Compatibility alias for the misspelt name 0.2.86 referenced.
DirectoryShardlist = DirectoryShardList


@dataclass
class MSSource:
    """One source of a multi-shard spec."""

    name: str = ""
    perepoch: int = -1
    resample: bool = False
    urls: list[str] = field(default_factory=list)


def expand(s):
    """Expand ``~`` and environment variables."""
    return os.path.expanduser(os.path.expandvars(s))


class MultiShardSample(IterableDataset):
    """Shards from a YAML spec (or dict) with per-dataset ``choose``/``resample`` counts.

    Spec keys: ``prefix``, ``buckets``, ``datasets`` (each with ``shards``, optional
    ``name``, ``buckets``, ``choose`` = shards per epoch without replacement,
    ``resample`` = shards per epoch with replacement). The RNG belongs to the
    instance and is reseeded per worker, so forked workers do not repeat each other.
    """

    def __init__(self, fname: str | dict[str, Any], seed: int | str | None = None) -> None:
        self.epoch = -1
        self.seed = seed
        self.rng = None
        self.parse_spec(fname)

    def parse_spec(self, fname):
        origin = None
        if isinstance(fname, dict):
            spec = fname
        else:
            try:
                import yaml
            except ImportError:
                raise ModuleNotFoundError(
                    f"{fname}: reading a YAML shard spec needs PyYAML: pip install pyyaml", name="yaml"
                ) from None

            fname = _url_text(fname)
            if _settings.is_remote(fname):
                # A spec fetched from elsewhere is data: its URLs are marked so a pipe: among them is refused.
                from .gopen import gopen

                origin = fname
                with gopen(fname, "rb") as stream:
                    spec = yaml.safe_load(stream.read())
            else:
                with open(fname) as stream:
                    spec = yaml.safe_load(stream)
        if not isinstance(spec, dict):
            raise ValueError(f"{fname}: a shard spec must be a mapping")
        unknown = set(spec.keys()) - {"prefix", "datasets", "buckets"}
        if unknown:
            raise ValueError(f"unknown keys in shard spec: {sorted(unknown)}")
        prefix = expand(spec.get("prefix", ""))
        self.sources = []
        for ds in spec["datasets"]:
            unknown = set(ds.keys()) - {"buckets", "name", "shards", "resample", "choose"}
            if unknown:
                raise ValueError(f"unknown keys in dataset spec: {sorted(unknown)}")
            buckets = ds.get("buckets", spec.get("buckets", []))
            if isinstance(buckets, str):
                buckets = [buckets]
            buckets = [expand(s) for s in buckets] or [""]
            if len(buckets) != 1:
                raise ValueError(f"{buckets}: only one bucket per dataset is supported")
            bucket = buckets[0]
            name = ds.get("name", "@" + bucket)
            urls = ds["shards"]
            if isinstance(urls, str):
                urls = [urls]
            urls = [prefix + os.path.join(bucket, u) for url in urls for u in braceexpand(expand(url))]
            if origin is not None:
                urls = [_settings.from_data(u, origin) for u in urls]
            resample = ds.get("resample", -1)
            nsample = ds.get("choose", -1)
            if nsample > len(urls):
                raise ValueError(f"choose={nsample} must be no greater than the number of shards ({len(urls)})")
            if nsample > 0 and resample > 0:
                raise ValueError("specify only one of choose or resample")
            self.sources.append(MSSource(name=name, urls=urls, perepoch=nsample, resample=resample))

    def set_epoch(self, seed):
        """Reseed the shard selection."""
        self.rng = random.Random(seed)

    def get_shards_for_epoch(self):
        if self.rng is None:
            base = self.seed if self.seed is not None else int.from_bytes(os.urandom(8), "little")
            self.rng = random.Random(make_seed(base, paddle_worker_seed()))
        result = []
        for source in self.sources:
            if source.resample > 0:
                chosen = self.rng.choices(source.urls, k=source.resample)
            elif source.perepoch > 0:
                chosen = list(source.urls)
                self.rng.shuffle(chosen)
                chosen = chosen[: source.perepoch]
            else:
                chosen = list(source.urls)
            result += chosen
        self.rng.shuffle(result)
        return result

    def __iter__(self):
        self.epoch += 1
        for shard in self.get_shards_for_epoch():
            yield dict(url=shard)


def shardspec(spec):
    """A YAML spec file becomes a MultiShardSample, anything else a SimpleShardList."""
    if isinstance(spec, str) and spec.endswith((".yaml", ".yml")):
        return MultiShardSample(spec)
    return SimpleShardList(spec)


# len() of a shard stream without a fixed list is a TypeError, as for any unsized iterable.
for _cls in (ResampledShards, DirectoryShardList, MultiShardSample):
    _cls.__len__ = no_len  # type: ignore[method-assign]
del _cls


__all__ = [
    "DirectoryListing",
    "DirectoryShardList",
    "MultiShardSample",
    "ResampledShardList",
    "ResampledShards",
    "SimpleShardList",
    "expand_source",
    "expand_urls",
    "non_empty",
    "resampled",
    "shardspec",
    "single_node_only",
    "split_by_node",
    "split_by_worker",
]
