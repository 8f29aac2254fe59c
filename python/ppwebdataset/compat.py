"""The fluent interface: ``WebDataset(urls).shuffle(...).decode(...).to_tuple(...).batched(...)``."""

from __future__ import annotations

import os
import random
import warnings
from urllib.parse import urlparse

from . import filters, shardlists
from .filters import (
    pipelinefilter,  # noqa: F401 - importable from here in 0.2.86
    reraise_exception,
)
from .paddle import DataLoader
from .pipeline import DataPipeline
from .tariterators import check_select_files, group_by_keys, read_shard, tar_file_expander  # noqa: F401
from .utils import paddle_worker_info


def _default_url_to_name(url):
    from .cache import pipe_cleaner

    return pipe_cleaner(url)


class FluidInterface:
    """Methods that append a stage and return the new pipeline (see ``filters`` for each stage)."""

    def batched(self, batchsize, collation_fn=filters.default_collation_fn, partial=True):
        return self.compose(filters.batched(batchsize, collation_fn=collation_fn, partial=partial))

    def unbatched(self):
        return self.compose(filters.unbatched())

    def listed(self, batchsize, partial=True):
        return self.compose(filters.batched(batchsize=batchsize, collation_fn=None, partial=partial))

    def unlisted(self):
        return self.compose(filters.unlisted())

    def log_keys(self, logfile=None):
        return self.compose(filters.log_keys(logfile))

    def shuffle(self, size, **kw):
        if size < 1:
            return self
        return self.compose(filters.shuffle(size, **kw))

    def map(self, f, handler=reraise_exception):
        return self.compose(filters.map(f, handler=handler))

    def decode(self, *args, pre=None, post=None, only=None, partial=False, handler=reraise_exception):
        from .autodecode import Decoder, ImageHandler

        handlers = [ImageHandler(x) if isinstance(x, str) else x for x in args]
        decoder = Decoder(handlers, pre=pre, post=post, only=only, partial=partial)
        return self.map(decoder, handler=handler)

    def map_dict(self, handler=reraise_exception, **kw):
        return self.compose(filters.map_dict(handler=handler, **kw))

    def select(self, predicate, **kw):
        return self.compose(filters.select(predicate, **kw))

    def to_tuple(self, *args, handler=reraise_exception, **kw):
        return self.compose(filters.to_tuple(*args, handler=handler, **kw))

    def map_tuple(self, *args, handler=reraise_exception):
        return self.compose(filters.map_tuple(*args, handler=handler))

    def slice(self, *args):
        return self.compose(filters.slice(*args))

    def rename(self, **kw):
        return self.compose(filters.rename(**kw))

    def rsample(self, p=0.5):
        return self.compose(filters.rsample(p))

    def rename_keys(self, *args, **kw):
        return self.compose(filters.rename_keys(*args, **kw))

    def extract_keys(self, *args, **kw):
        return self.compose(filters.extract_keys(*args, **kw))

    def xdecode(self, *args, **kw):
        return self.compose(filters.xdecode(*args, **kw))

    def mcached(self):
        return self.compose(filters.Cached())

    def lmdb_cached(self, *args, **kw):
        return self.compose(filters.LMDBCached(*args, **kw))


_EMPTY_EPOCH = (
    "No samples found in dataset; perhaps you have fewer shards than workers.\n"
    "Turn off using empty_check=False in the WebDataset constructor."
)


class ShardSamples:
    """Pipeline stage: opened or listed shards → samples, read by the Rust core.

    With ``empty_check`` a worker that read shards but produced no sample
    raises; a worker that got no shard at all (fewer shards than ranks×workers)
    only warns, so the other workers keep training.
    """

    def __init__(self, handler=reraise_exception, select_files=None, rename_files=None, empty_check=True):
        check_select_files(select_files)
        self.handler = handler
        self.select_files = select_files
        self.rename_files = rename_files
        self.empty_check = empty_check

    def __call__(self, src):
        stats = {"shards": 0, "samples": 0}
        for source in src:
            keep_going = yield from read_shard(source, self.handler, self.select_files, self.rename_files, stats)
            if not keep_going:
                return
        if self.empty_check and stats["samples"] == 0:
            rank, world, worker, nworkers = paddle_worker_info()
            if stats["shards"] == 0 and world * nworkers > 1:
                warnings.warn(
                    f"rank {rank} worker {worker} got no shards: there are fewer shards than "
                    f"ranks×workers ({world}×{nworkers}); this worker yields nothing",
                    stacklevel=2,
                )
                return
            raise ValueError(_EMPTY_EPOCH)


def _seed_from_env(seed):
    if seed is not None:
        return seed, True
    env = os.environ.get("WDS_SEED")
    if env is not None:
        try:
            return int(env), True
        except ValueError:
            return env, True
    return random.randint(0, 1000000), False


class WebDataset(DataPipeline, FluidInterface):
    """A streaming dataset over tar shards, as a ``paddle.io.IterableDataset``.

    Stages: shard list → ``nodesplitter`` → ``workersplitter`` → shard shuffle →
    open (optionally through a file cache) → Rust tar reading and grouping →
    empty check. See the README for the differences from webdataset 1.0.2 (a
    shard order that changes every epoch, no partial samples after damage).
    """

    def __init__(
        self,
        urls,
        handler=reraise_exception,
        mode=None,
        resampled=False,
        repeat=False,
        shardshuffle=None,
        cache_size=-1,
        cache_dir=None,
        url_to_name=_default_url_to_name,
        detshuffle=False,
        nodesplitter=shardlists.single_node_only,
        workersplitter=shardlists.split_by_worker,
        select_files=None,
        rename_files=None,
        verbose=False,
        seed=None,
        empty_check=True,
    ):
        super().__init__()
        if resampled:
            mode = "resampled"
        if mode == "resampled" and shardshuffle not in (False, None):
            warnings.warn("WebDataset(shardshuffle=...) is ignored for resampled datasets", stacklevel=2)
            shardshuffle = False
        elif shardshuffle is None and mode != "resampled":
            warnings.warn("WebDataset(shardshuffle=...) is None; set explicitly to False or a number", stacklevel=2)
        if shardshuffle is True:
            warnings.warn("set WebDataset(shardshuffle=...) to a positive integer or 0 or False", stacklevel=2)
            shardshuffle = 100
        self.seed, seed_given = _seed_from_env(seed)
        self.verbose = verbose
        self.repeat_dataset = repeat
        cache_dir, cache_size = self._cache_settings(cache_dir, cache_size)

        self._add_url_source(urls, mode)
        if nodesplitter is not None:
            self.append(nodesplitter)
        if workersplitter:
            self.append(workersplitter)
        if shardshuffle and mode != "resampled":
            if detshuffle:
                self.append(filters.detshuffle(shardshuffle, seed=self.seed))
            else:
                # A new order every pass; reproducible when a seed was given (upstream repeated one order).
                self.append(filters.shuffle(shardshuffle, seed=self.seed if seed_given else None))
        if cache_dir is not None and cache_size != 0:
            from .cache import make_opener

            custom_name = None if url_to_name is _default_url_to_name else url_to_name
            self.append(make_opener(cache_dir, cache_size, handler=handler, url_to_name=custom_name, verbose=verbose))
        self.append(
            ShardSamples(handler=handler, select_files=select_files, rename_files=rename_files, empty_check=empty_check)
        )
        if repeat:
            self.repeat()

    @staticmethod
    def _cache_settings(cache_dir, cache_size):
        from .cache import resolve_cache_settings

        return resolve_cache_settings(cache_dir, cache_size)

    def _add_url_source(self, urls, mode):
        if isinstance(urls, os.PathLike):
            urls = os.fspath(urls)
        if isinstance(urls, str) and urls.endswith((".yaml", ".yml")):
            self.append(shardlists.MultiShardSample(urls))
        elif isinstance(urls, dict):
            if "datasets" not in urls:
                raise ValueError("a dict shard spec needs a 'datasets' key")
            self.append(shardlists.MultiShardSample(urls))
        elif isinstance(urls, str) and urls.endswith(".json"):
            raise ValueError(f"{urls}: JSON shard lists are read by ppwids.ShardListDataset, not WebDataset")
        elif isinstance(urls, str) and urlparse(urls).path.endswith("/"):
            self.append(shardlists.DirectoryShardList(urls, mode=mode))
        elif isinstance(urls, shardlists.IterableDataset):
            self.append(urls)
        elif isinstance(urls, str) or shardlists.is_iterable(urls):
            if mode == "resampled":
                self.append(shardlists.ResampledShards(urls))
            else:
                self.append(shardlists.SimpleShardList(urls))
        else:
            raise ValueError(f"cannot handle urls of type {type(urls)}")

    def set_epoch(self, epoch):
        """Tell the shard shuffle and resampler which epoch starts next (for non-persistent workers)."""
        for stage in self.pipeline:
            if hasattr(stage, "set_epoch") and stage is not self:
                stage.set_epoch(epoch)
        return self

    def update_cache_info(self, args):
        """Apply WDS_CACHE / WDS_CACHE_SIZE to ``args.cache_dir`` / ``args.cache_size``."""
        args.cache_dir, args.cache_size = self._cache_settings(args.cache_dir, args.cache_size)

    def create_url_iterator(self, args):
        """Append the shard source for ``args.urls`` / ``args.mode`` (upstream's hook for subclasses)."""
        self._add_url_source(args.urls, getattr(args, "mode", None))

    def __enter__(self):
        return self

    def __exit__(self, *args):
        self.close()


class FluidWrapper(DataPipeline, FluidInterface):
    """A pipeline starting from ``initial`` with the fluent methods."""

    def __init__(self, initial):
        super().__init__()
        self.append(initial)


def _wants_empty_check(dataset):
    stages = getattr(dataset, "pipeline", None) or []
    return any(isinstance(s, ShardSamples) and s.empty_check for s in stages)


class WebLoader(DataPipeline, FluidInterface):
    """``paddle.io.DataLoader(*args, **kw)`` with the fluent methods.

    A worker that got no shard only warns (see ``ShardSamples``); if the
    whole loader then yields nothing in an epoch and the dataset has
    ``empty_check``, the epoch raises ``ValueError`` here, in the main process.
    """

    def __init__(self, *args, **kw):
        super().__init__(DataLoader(*args, **kw))
        self.empty_check = _wants_empty_check(args[0] if args else kw.get("dataset"))

    def iterator1(self):
        source = self.invoke(self.pipeline[0])
        if self.empty_check:
            source = check_empty(source)
        for step in self.pipeline[1:]:
            source = self.invoke(step, source)
        return source


def check_empty(source):
    """Pass ``source`` through; raise ``ValueError`` at its end if it yielded nothing."""
    count = 0
    for item in source:
        count += 1
        yield item
    if count == 0:
        raise ValueError(_EMPTY_EPOCH)


__all__ = ["FluidInterface", "FluidWrapper", "ShardSamples", "WebDataset", "WebLoader", "check_empty"]
