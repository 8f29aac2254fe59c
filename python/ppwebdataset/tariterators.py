"""Tar shards → samples.

``tarfile_samples`` / ``tarfile_to_samples`` are the fast path: each shard is
read, split into members and grouped into samples by the Rust core, which
hands Python whole batches of finished sample dicts. The member-level
functions (``url_opener``, ``tar_file_iterator``, ``tar_file_expander``,
``group_by_keys``) keep webdataset's composable interface for custom pipelines.
"""

from __future__ import annotations

import importlib
import io
import random
import re
import warnings
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeGuard

from . import _settings
from ._core import TarSampleReader, split_key
from .errors import CorruptShardError, TruncatedShardError
from .filters import pipelinefilter
from .gopen import local_path, rewrite_url
from .handlers import reraise_exception
from .utils import braceexpand, paddle_worker_info

# Called through the module so that replacing ppwebdataset.gopen.gopen reaches every opener.
_gopen = importlib.import_module("ppwebdataset.gopen")

trace = False
meta_prefix = "__"
meta_suffix = "__"


def base_plus_ext(path):
    """``(key, extension)`` of a member name: directory + basename up to its first dot, and the rest.

    ``(None, None)`` when the name has no such split (the member is then dropped).
    """
    return split_key(path)


def valid_sample(sample: dict[str, Any] | None) -> TypeGuard[dict[str, Any]]:
    """A non-empty dict without a truthy ``__bad__``."""
    return isinstance(sample, dict) and len(sample) > 0 and not sample.get("__bad__", False)


def shardlist(urls, *, shuffle=False):
    """``dict(url=...)`` for each URL (brace patterns expanded)."""
    urls = list(braceexpand(urls)) if isinstance(urls, str) else list(urls)
    if shuffle:
        random.shuffle(urls)
    for url in urls:
        yield dict(url=url)


def _close(stream):
    close = getattr(stream, "close", None)
    if close is not None:
        close()


def _finish(stream):
    """At the end of a shard: lets a pipe report a failing exit status (see Pipe.finish_reading)."""
    finish = getattr(stream, "finish_reading", None)
    if finish is not None:
        finish()


def url_opener(
    data: Iterable[dict[str, Any]],
    handler: Callable[[Exception], bool] = reraise_exception,
    **kw: Any,
):
    """Open each ``dict(url=...)``; yields it with ``stream`` (and ``local_path`` for local files)."""
    for sample in data:
        if not isinstance(sample, dict) or "url" not in sample:
            raise TypeError(f"url_opener expects dict(url=...), got {sample!r}")
        url = sample["url"]
        try:
            stream = _gopen.gopen(url, **kw)
            sample.update(stream=stream)
            path = local_path(url)
            if path is not None:
                sample.setdefault("local_path", path)
            yield sample
        except Exception as exn:
            exn.args = exn.args + (url,)
            if handler(exn):
                continue
            break


def check_select_files(select_files):
    """``select_files`` is a predicate on member names; upstream's docs wrongly showed a glob string."""
    if select_files is not None and not callable(select_files):
        raise TypeError("select_files must be a callable taking a member name (a glob string is not accepted)")


def _stream_name(fileobj):
    name = getattr(fileobj, "name", None)
    if isinstance(name, str):
        return name
    return str(fileobj)


def tar_file_iterator(
    fileobj,
    skip_meta: str | None = r"__[^/]*__($|/)",
    handler: Callable[[Exception], bool] = reraise_exception,
    select_files: Callable[[str], bool] | None = None,
    rename_files: Callable[[str], str] | None = None,
    *,
    ignore_zeros: bool = False,
) -> Iterator[dict[str, Any]]:
    """Yield ``dict(fname=..., data=...)`` for each regular member of a tar stream.

    Metadata members (``__name__`` files, names matching ``skip_meta``) are
    skipped; ``rename_files`` is applied before ``select_files``. Errors in the
    tar stream itself propagate (they name the shard, member and byte offset).
    ``ignore_zeros=True`` reads past end-of-archive blocks like ``tarfile``'s
    option of that name (concatenated archives); see :func:`tarfile_samples`.
    """
    check_select_files(select_files)
    skip = re.compile(skip_meta) if skip_meta is not None else None
    reader = TarSampleReader(fileobj, _stream_name(fileobj), group=False, ignore_zeros=ignore_zeros)
    try:
        while True:
            batch = reader.next_batch()
            if not batch:
                _finish(fileobj)
                return
            for fname, data in batch:
                try:
                    if "/" not in fname and fname.startswith(meta_prefix) and fname.endswith(meta_suffix):
                        continue
                    if skip is not None and skip.match(fname):
                        continue
                    if rename_files:
                        fname = rename_files(fname)
                    if select_files is not None and not select_files(fname):
                        continue
                    yield dict(fname=fname, data=data)
                except Exception as exn:
                    if exn.args:
                        exn.args = (f"{exn.args[0]} @ {_stream_name(fileobj)}",) + exn.args[1:]
                    if handler(exn):
                        continue
                    return
    finally:
        reader.close()


def tar_file_expander(
    data: Iterable[dict[str, Any]],
    handler: Callable[[Exception], bool] = reraise_exception,
    select_files: Callable[[str], bool] | None = None,
    rename_files: Callable[[str], str] | None = None,
    eof_value: Any | None = None,
    *,
    ignore_zeros: bool = False,
) -> Iterator[dict[str, Any]]:
    """Members of every opened shard, each tagged with ``__url__`` (and ``__local_path__``).

    Only member dicts are yielded, as in ppwebdataset 0.2.86, so custom grouping
    code may read ``item["fname"]`` on every item. A caller that wants an
    end-of-shard marker passes ``eof_value`` (webdataset 1.0.2 yields ``{}``);
    ``group_by_keys`` honours ``{}`` and also starts a new sample when
    ``__url__`` changes. Streams are closed when their shard is done.
    """
    for source in data:
        url = source["url"]
        path = source.get("local_path")
        try:
            if "stream" not in source:
                raise ValueError(f"{url}: tar_file_expander needs opened streams (use url_opener first)")
            for sample in tar_file_iterator(
                source["stream"],
                handler=handler,
                select_files=select_files,
                rename_files=rename_files,
                ignore_zeros=ignore_zeros,
            ):
                sample["__url__"] = url
                if path is not None:
                    sample["__local_path__"] = path
                yield sample
            if eof_value is not None:
                yield eof_value
        except Exception as exn:
            exn.args = exn.args + (source.get("stream"), source.get("url"))
            if handler(exn):
                continue
            break
        finally:
            _close(source.get("stream"))


def group_by_keys(
    data: Iterable[dict[str, Any]],
    keys: Callable[[str], tuple[str, str]] = base_plus_ext,
    lcase: bool = True,
    suffixes: set[str] | None = None,
    handler: Callable[[Exception], bool] = reraise_exception,
) -> Iterator[dict[str, Any]]:
    """Group consecutive members with the same key into samples (member-level interface).

    An empty dict (an end-of-shard marker) or a change of ``__url__`` ends the
    current sample, so samples never merge across shards. A repeated extension
    in one sample raises ValueError through ``handler``.
    """
    current: dict[str, Any] | None = None
    for filesample in data:
        try:
            if not isinstance(filesample, dict):
                raise TypeError(f"group_by_keys expects dicts, got {type(filesample).__name__}")
            if filesample == {}:
                if valid_sample(current):
                    yield current
                current = None
                continue
            fname, value = filesample["fname"], filesample["data"]
            prefix, suffix = keys(fname)
            if prefix is None:
                continue
            if lcase:
                suffix = suffix.lower()
            if current is None or prefix != current["__key__"] or filesample["__url__"] != current["__url__"]:
                if valid_sample(current):
                    yield current
                current = dict(__key__=prefix, __url__=filesample["__url__"])
            if suffix in current:
                raise ValueError(
                    f"{fname}: duplicate file name in tar file {suffix} {list(current.keys())} "
                    f"(shard {filesample.get('__url__')!r})"
                )
            if suffixes is None or suffix in suffixes:
                current[suffix] = value
            lp = filesample.get("__local_path__")
            if lp is not None:
                current["__local_path__"] = lp
        except Exception as exn:
            exn.args = exn.args + (filesample.get("stream"), filesample.get("url"))
            if handler(exn):
                continue
            break
    if valid_sample(current):
        yield current


def _open_source(source: dict[str, Any]):
    """What the Rust reader should read: a path for local files, else an opened stream."""
    if "stream" in source:
        stream = source["stream"]
        path = source.get("local_path")
        # A plain local file not yet read from is reopened by path so reading runs without the GIL.
        if path is not None and isinstance(stream, io.BufferedReader | io.FileIO) and stream.tell() == 0:
            _close(stream)
            return path, path, None
        return stream, path, stream
    url = source["url"]
    path = local_path(rewrite_url(url)) if isinstance(url, str) else local_path(url)
    if path is not None:
        _settings.check_secure("local")  # the Rust reader opens the path itself, not through gopen
        return path, path, None
    stream = _gopen.gopen(url)
    return stream, None, stream


def read_shard(source, handler=reraise_exception, select_files=None, rename_files=None, stats=None, ignore_zeros=False):
    """Samples of one shard (``dict(url=...)``, optionally with ``stream``/``local_path``).

    Errors go through ``handler`` with the shard URL appended to ``args``; a
    True result skips the rest of the shard. Returns False when the handler
    asked to stop. A sample cut off by damage is never yielded.

    A source from a file cache may carry ``__refetch__(exn)``: when the cached copy
    turns out cut or corrupt, it is fetched again once (returning a new source) and
    read on after the samples already yielded.
    """
    url = source["url"]
    refetch = source.get("__refetch__")
    delivered = 0
    counted = stats is None
    while True:
        stream = None
        reader = None
        try:
            target, path, stream = _open_source(source)
            reader = TarSampleReader(
                target,
                url,
                source.get("local_path", path),
                select_files=select_files,
                rename_files=rename_files,
                ignore_zeros=ignore_zeros,
            )
            if not counted:
                stats["shards"] += 1
                counted = True
            skip = delivered
            while True:
                try:
                    batch = reader.next_batch()
                except Exception as exn:
                    if reader.done:
                        raise
                    # A recoverable error (duplicate extension, failing callback): the shard goes on.
                    exn.args = exn.args + (url,)
                    if handler(exn):
                        continue
                    return False
                if not batch:
                    _finish(stream)
                    break
                if skip:
                    cut = min(skip, len(batch))
                    batch, skip = batch[cut:], skip - cut
                if stats is not None:
                    stats["samples"] += len(batch)
                yield from batch
                delivered += len(batch)
        except (TruncatedShardError, CorruptShardError) as exn:
            if refetch is not None:
                again, refetch = refetch, None
                try:
                    source = again(exn)
                except Exception as exn2:
                    exn2.args = exn2.args + (url,)
                    return bool(handler(exn2))
                continue
            exn.args = exn.args + (url,)
            if not handler(exn):
                return False
        except Exception as exn:
            exn.args = exn.args + (url,)
            if not handler(exn):
                return False
        finally:
            if reader is not None:
                reader.close()
            if stream is not None:
                _close(stream)
        return True


def tarfile_samples(
    src: Iterable[dict[str, Any]],
    handler: Callable[[Exception], bool] = reraise_exception,
    select_files: Callable[[str], bool] | None = None,
    rename_files: Callable[[str], str] | None = None,
    *,
    ignore_zeros: bool = False,
) -> Iterator[dict[str, Any]]:
    """Samples from a stream of ``dict(url=...)`` (or already opened) shards.

    A zero block followed by more archive data in a local file or a compressed
    shard is damage (a ``CorruptShardError``), not the end of the shard: its rest
    would otherwise be lost silently. ``ignore_zeros=True`` instead reads on to the
    end of the input, like ``tarfile.open(..., ignore_zeros=True)`` and ``tar -i``:
    for concatenated archives (``cat a.tar b.tar``). Unlike ``tarfile``, a damaged
    header is still an error then.
    """
    check_select_files(select_files)
    sources = (dict(url=source) if isinstance(source, str) else source for source in src)
    yield from _read_shards(sources, handler, select_files, rename_files, ignore_zeros=ignore_zeros)


def _read_shards(sources, handler, select_files, rename_files, stats=None, ignore_zeros=False):
    # The shard loop of tarfile_samples and ShardSamples: read on until a handler says stop
    # (then returns False, and ShardSamples skips its empty check).
    for source in sources:
        keep_going = yield from read_shard(source, handler, select_files, rename_files, stats, ignore_zeros)
        if not keep_going:
            return False
    return True


tarfile_to_samples = pipelinefilter(tarfile_samples)


_EMPTY_EPOCH = (
    "No samples found in dataset; perhaps you have fewer shards than workers.\n"
    "Turn off using empty_check=False in the WebDataset constructor."
)


class ShardSamples:
    """Pipeline stage: opened or listed shards → samples, read by the Rust core (``WebDataset``'s reader).

    ``tarfile_samples`` with a check for empty epochs (both loop over ``_read_shards``).
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
        if not (yield from _read_shards(src, self.handler, self.select_files, self.rename_files, stats)):
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


__all__ = [
    "ShardSamples",
    "base_plus_ext",
    "group_by_keys",
    "read_shard",
    "shardlist",
    "tar_file_expander",
    "tar_file_iterator",
    "tarfile_samples",
    "tarfile_to_samples",
    "url_opener",
    "valid_sample",
]
