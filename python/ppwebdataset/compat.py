"""The fluent interface: ``WebDataset(urls).shuffle(...).decode(...).to_tuple(...).batched(...)``."""

from __future__ import annotations

import errno
import os
import random
import warnings
from collections.abc import Callable, Iterable
from typing import IO, TYPE_CHECKING, Any, Self
from urllib.parse import urlparse

from . import _settings, filters, shardlists
from .filters import (
    pipelinefilter,  # noqa: F401 - importable from here in 0.2.86
    reraise_exception,
)
from .paddle import DataLoader
from .pipeline import DataPipeline
from .tariterators import (  # noqa: F401 - importable from here (ShardSamples lived here)
    _EMPTY_EPOCH,
    ShardSamples,
    check_select_files,
    group_by_keys,
    read_shard,
    tar_file_expander,
)

if TYPE_CHECKING:
    from ._typing import CollationFn, Handler, Predicate, Urls


def _default_url_to_name(url):
    from .cache import pipe_cleaner

    return pipe_cleaner(url)


class FluidInterface:
    """Methods that append a stage and return the new pipeline (see ``filters`` for each stage).

    Each method returns a new pipeline of the same class (a shallow copy with one more stage);
    the pipeline it was called on is left as it was.
    """

    if TYPE_CHECKING:

        def compose(self, *args: Any) -> Self: ...

    def batched(
        self, batchsize: int, collation_fn: CollationFn | None = filters.default_collation_fn, partial: bool = True
    ) -> Self:
        """Group ``batchsize`` samples and combine them with ``collation_fn`` (tuples of arrays by
        default); with ``partial=False`` a short last batch is dropped."""
        return self.compose(filters.batched(batchsize, collation_fn=collation_fn, partial=partial))

    def unbatched(self) -> Self:
        """Split batches back into single samples."""
        return self.compose(filters.unbatched())

    def listed(self, batchsize: int, partial: bool = True) -> Self:
        """Group ``batchsize`` samples into plain lists (no collation)."""
        return self.compose(filters.batched(batchsize=batchsize, collation_fn=None, partial=partial))

    def unlisted(self) -> Self:
        """Split lists made by ``listed`` back into single samples."""
        return self.compose(filters.unlisted())

    def log_keys(self, logfile: str | IO[str] | None = None) -> Self:
        """Write each sample's ``__key__`` to ``logfile`` (a path or an open text file)."""
        return self.compose(filters.log_keys(logfile))

    def shuffle(self, size: int, **kw: Any) -> Self:
        """Shuffle samples through a buffer of ``size`` items (``size < 1``: no shuffle).

        Keyword arguments go to ``filters.shuffle`` (``initial``, ``seed``, ``rng``, ``handler``).
        """
        if isinstance(size, bool) or not isinstance(size, int):
            raise TypeError(f"shuffle() wants an int buffer size, got {size!r} ({type(size).__name__})")
        if size < 1:
            return self
        if getattr(self, "_exact", False):
            from .exact import with_shuffle

            return with_shuffle(self, size, **kw)
        return self.compose(filters.shuffle(size, **kw))

    def map(self, f: Callable[[Any], Any], handler: Handler = reraise_exception) -> Self:
        """Replace each sample by ``f(sample)``; ``handler`` decides what an exception does."""
        return self.compose(filters.map(f, handler=handler))

    def decode(
        self,
        *args: str | Callable[..., Any],
        pre: list[Callable[..., Any]] | None = None,
        post: list[Callable[..., Any]] | None = None,
        only: str | Iterable[str] | None = None,
        partial: bool = False,
        handler: Handler = reraise_exception,
        **kw: Any,
    ) -> Self:
        """Decode sample fields by extension: strings name an image format (``"pil"``, ``"rgb8"``,
        ``"paddle"``, ...), callables are handlers ``f(key, data)``; ``only`` limits the fields.

        ``native=True`` (with ``resize=``, ``crop=``, ``random_crop=``, ``threads=``) decodes JPEG/PNG
        image fields in Rust; see ``filters.decode``."""
        # Only the options given, so that repr(pipeline) shows decode('rgb8'), not every default.
        opts = dict(pre=pre, post=post, only=only, partial=partial)
        given = {k: v for k, v in opts.items() if v is not None and v is not False}
        stage = filters.decode(*args, **given, handler=handler, **kw)
        if not kw.get("native"):
            # Bad image specs raise here, at the call, as upstream's fluid decode did (and not
            # later in a DataLoader worker); filters.decode itself builds its Decoder lazily.
            filters._decoder(args, pre=pre, post=post, only=only, partial=partial)
        return self.compose(stage)

    def map_dict(self, handler: Handler = reraise_exception, **kw: Callable[[Any], Any]) -> Self:
        """Apply ``kw[field]`` to each named field of dict samples."""
        return self.compose(filters.map_dict(handler=handler, **kw))

    def select(self, predicate: Predicate, **kw: Any) -> Self:
        """Keep the samples for which ``predicate(sample)`` is true."""
        return self.compose(filters.select(predicate, **kw))

    def to_tuple(self, *args: str, handler: Handler = reraise_exception, **kw: Any) -> Self:
        """Turn dict samples into tuples of fields: ``to_tuple("jpg;png", "cls")`` (``;`` lists
        alternatives; ``missing_is_error=False`` gives None for missing fields)."""
        return self.compose(filters.to_tuple(*args, handler=handler, **kw))

    def map_tuple(self, *args: Callable[[Any], Any] | None, handler: Handler = reraise_exception) -> Self:
        """Apply the i-th function to the i-th element of tuple samples (None keeps it)."""
        return self.compose(filters.map_tuple(*args, handler=handler))

    def slice(self, *args: int | None) -> Self:
        """Keep ``itertools.islice(samples, *args)``."""
        return self.compose(filters.slice(*args))

    def rename(self, **kw: str) -> Self:
        """Rename fields: ``rename(image="jpg;png")`` (the new name = the old ones, ``;`` alternatives)."""
        return self.compose(filters.rename(**kw))

    def rsample(self, p: float = 0.5) -> Self:
        """Keep each sample with probability ``p``."""
        return self.compose(filters.rsample(p))

    def rename_keys(self, *args: tuple[str, str], **kw: str) -> Self:
        """Rename fields by glob patterns: ``rename_keys(("*.jpg", "image"))`` or ``image="*.jpg"``."""
        return self.compose(filters.rename_keys(*args, **kw))

    def extract_keys(self, *args: str, **kw: Any) -> Self:
        """Turn samples into tuples of the fields matching each glob pattern."""
        return self.compose(filters.extract_keys(*args, **kw))

    def xdecode(self, *args: Any, **kw: Any) -> Self:
        """Decode fields with functions chosen by glob patterns on their names."""
        return self.compose(filters.xdecode(*args, **kw))

    def mcached(self) -> Self:
        """Cache samples in memory on the first pass and replay them on later passes."""
        return self.compose(filters.Cached())

    def lmdb_cached(self, *args: Any, **kw: Any) -> Self:
        """Cache samples in an LMDB database on the first pass (needs ``lmdb``)."""
        return self.compose(filters.LMDBCached(*args, **kw))


def _seed_from_env(seed):
    if seed is not None:
        return seed, True
    env = _settings.env_str("WDS_SEED")
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
        urls: Urls,
        handler: Handler = reraise_exception,
        mode: str | None = None,
        resampled: bool = False,
        repeat: bool = False,
        shardshuffle: int | bool | None = None,
        cache_size: int = -1,
        cache_dir: str | None = None,
        url_to_name: Callable[[str], str] = _default_url_to_name,
        detshuffle: bool = False,
        nodesplitter: Callable[..., Any] | None = shardlists.single_node_only,
        workersplitter: Callable[..., Any] | None = shardlists.split_by_worker,
        select_files: Callable[[str], bool] | None = None,
        rename_files: Callable[[str], str] | None = None,
        verbose: bool = False,
        seed: int | str | None = None,
        empty_check: bool = True,
        exact: bool = False,
        drop_last: bool = False,
        pad: bool = True,
        nsamples: int | None = None,
    ) -> None:
        super().__init__()
        if exact:  # planned epochs with a resumable state: see exact.py
            from .exact import setup_webdataset

            setup_webdataset(
                self, urls, handler=handler, shardshuffle=shardshuffle, mode=mode, resampled=resampled,
                repeat=repeat, select_files=select_files, rename_files=rename_files, seed=seed,
                drop_last=drop_last, pad=pad, nsamples=nsamples,
            )  # fmt: skip
            return
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
            # Read-only: a training run never renames the user's files (1.0.2 used the work queue here).
            self.append(shardlists.DirectoryListing(urls, resampled=mode == "resampled"))
        elif isinstance(urls, str) and os.path.isdir(urls):
            raise IsADirectoryError(
                errno.EISDIR, f"{urls} is a directory: add a trailing '/' ({urls}/) to read every shard in it", urls
            )
        elif isinstance(urls, shardlists.IterableDataset):
            self.append(urls)
        elif isinstance(urls, str) or shardlists.is_iterable(urls):
            if mode == "resampled":
                self.append(shardlists.ResampledShards(urls))
            else:
                self.append(shardlists.SimpleShardList(urls))
        else:
            raise ValueError(f"cannot handle urls of type {type(urls)}")

    def update_cache_info(self, args: Any) -> None:
        """Apply WDS_CACHE / WDS_CACHE_SIZE to ``args.cache_dir`` / ``args.cache_size``."""
        args.cache_dir, args.cache_size = self._cache_settings(args.cache_dir, args.cache_size)

    def create_url_iterator(self, args: Any) -> None:
        """Append the shard source for ``args.urls`` / ``args.mode`` (upstream's hook for subclasses)."""
        self._add_url_source(args.urls, getattr(args, "mode", None))

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *args: object) -> None:
        self.close()


class FluidWrapper(DataPipeline, FluidInterface):
    """A pipeline starting from ``initial`` with the fluent methods."""

    def __init__(self, initial: Any) -> None:
        super().__init__()
        self.append(initial)


def _wants_empty_check(dataset):
    stages = getattr(dataset, "pipeline", None) or []
    return any(isinstance(s, ShardSamples) and s.empty_check for s in stages)


class WebLoader(DataPipeline, FluidInterface):
    """``paddle.io.DataLoader(*args, **kw)`` with the fluent methods.

    Over a ``WebDataset(..., exact=True)`` it is an ``exact.ExactLoader``: it also has
    ``state_dict()`` / ``set_state_dict()`` (alias ``load_state_dict``) and ``set_epoch()``.

    A worker that got no shard only warns (see ``ShardSamples``); if the
    whole loader then yields nothing in an epoch and the dataset has
    ``empty_check``, the epoch raises ``ValueError`` here, in the main process.
    """

    def __init__(self, *args: Any, **kw: Any) -> None:
        from .exact import ExactLoader, exact_stage

        if args and exact_stage(args[0]) is not None:
            super().__init__(ExactLoader(*args, **kw))
        else:
            super().__init__(DataLoader(*args, **kw))
        self.empty_check = _wants_empty_check(args[0] if args else kw.get("dataset"))

    def iterator1(self):
        source = self.invoke(self.pipeline[0])
        if self.empty_check:
            source = check_empty(source)
        for step in self.pipeline[1:]:
            source = self.invoke(step, source)
        return source

    def _exact_loader(self):
        from .exact import ExactLoader

        if not self.pipeline or not isinstance(self.pipeline[0], ExactLoader):
            raise TypeError("state_dict()/set_state_dict() need a WebLoader over WebDataset(..., exact=True)")
        return self.pipeline[0]

    def __len__(self):
        from .exact import ExactLoader

        if self.pipeline and isinstance(self.pipeline[0], ExactLoader) and "size" not in self.__dict__:
            return len(self.pipeline[0])  # batches per epoch on this rank, from the plan
        return super().__len__()

    def state_dict(self):
        return self._exact_loader().state_dict()

    def set_state_dict(self, state):
        self._exact_loader().set_state_dict(state)
        return self

    load_state_dict = set_state_dict


def check_empty(source):
    """Pass ``source`` through; raise ``ValueError`` at its end if it yielded nothing."""
    count = 0
    for item in source:
        count += 1
        yield item
    if count == 0:
        raise ValueError(_EMPTY_EPOCH)


__all__ = ["FluidInterface", "FluidWrapper", "ShardSamples", "WebDataset", "WebLoader", "check_empty"]
