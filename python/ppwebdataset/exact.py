"""Exact epochs on plain tar shards: balanced ranks, exactly-once coverage, resume by seeking.

``WebDataset(urls, exact=True, ...)`` replaces the shard list, node/worker
splitters and tar reader with :class:`ExactSamples`:

1. **Counts.** Every shard's sample count comes from the Rust header scan of
   ``ShardIndex`` (local shards; cached in the ``<shard>.ppwidx`` sidecar that
   ppwids uses, checked by size and mtime), from a wids descriptor when the URL
   is a ``.json`` file, or from ``nsamples=`` for remote shards.
2. **Plan.** :func:`plan_epoch` is a pure function: shuffle the shard order with
   ``(seed, epoch)``, concatenate the shards into one sequence, cut it into one
   contiguous segment per rank (equal lengths, or the validation split), and
   each rank's segment into one per DataLoader worker. A segment is a list of
   ``(shard, first sample, count)`` ranges.
3. **Read.** A worker reads its ranges through the shard index: sample ``i`` is
   a slice of the memory-mapped shard at the member offsets the index holds, so
   starting anywhere costs no reading of earlier samples.
4. **Sample shuffle.** ``.shuffle(n)`` on an exact dataset does not buffer data:
   the order a size-``n`` shuffle buffer would produce over the worker's
   sample positions is computed from ``(seed, epoch, rank, worker)`` (integers
   only, no reads), block by block (:class:`ShuffledPositions`). Output ``t`` is
   therefore known without replaying the pass, and resuming at ``t`` costs one
   block's order.
5. **State.** :class:`ExactLoader` (behind ``WebLoader(ds, ...)``) tags every
   batch with the worker that made it and the number of samples that worker has
   handed out, and delivers worker batches in a fixed round-robin (the order
   ``paddle.io.DataLoader`` uses for iterable datasets), so a saved state —
   epoch, per-worker positions, the round-robin cursor — restarts every worker
   at its position and reproduces the remaining batches exactly.
"""

from __future__ import annotations

import bisect
import collections
import copy
import hashlib
import json
import math
import os
import random
from collections.abc import Sequence

import numpy as np

from . import _settings
from .errors import ShardError
from .handlers import reraise_exception
from .paddle import IterableDataset
from .utils import make_seed, paddle_rank_info, paddle_worker_only_info

STATE_VERSION = 1

# ---------------------------------------------------------------------------
# Planner (pure)
# ---------------------------------------------------------------------------


def shard_order(nshards: int, seed, epoch: int, shuffle: bool = True) -> list[int]:
    """The shard order of one epoch: a permutation seeded by ``(seed, epoch)``, or the given order."""
    order = list(range(nshards))
    if shuffle:
        random.Random(make_seed("exact.shards", seed, epoch)).shuffle(order)
    return order


def rank_totals(nsamples: int, world_size: int, *, num_workers=1, drop_last=False, pad=True, batch_size=None):
    """Samples per rank for one epoch.

    ``pad`` (default): every rank gets ``ceil(N / world_size)``, the shortfall
    repeated from the start of the epoch's permutation. ``drop_last``: every
    rank gets the same count, the remainder dropped (and, when ``batch_size``
    is known, rounded down to whole batches for every worker). Neither
    (validation): every sample exactly once, ranks differ by at most one.
    """
    if world_size < 1 or num_workers < 1:
        raise ValueError(f"world_size and num_workers must be >= 1, got {world_size} and {num_workers}")
    if drop_last:
        unit = num_workers * batch_size if batch_size else 1
        per = (nsamples // (world_size * unit)) * unit
        if per == 0:
            raise ValueError(
                f"drop_last=True leaves nothing: {nsamples} samples are fewer than "
                f"world_size×num_workers×batch_size = {world_size}×{num_workers}×{batch_size or 1}"
            )
        return [per] * world_size
    if pad:
        return [-(-nsamples // world_size)] * world_size
    return [nsamples // world_size + (r < nsamples % world_size) for r in range(world_size)]


def split_counts(total: int, parts: int) -> list[int]:
    """``total`` split into ``parts`` contiguous shares differing by at most one (larger first)."""
    return [total // parts + (i < total % parts) for i in range(parts)]


def _segment_ranges(start: int, length: int, order: Sequence[int], counts: Sequence[int], cum: Sequence[int]):
    # Positions wrap modulo N: padding repeats the permutation from its start.
    total = cum[-1]
    out: list[tuple[int, int, int]] = []
    pos, left = start, length
    while left > 0:
        x = pos % total
        k = bisect.bisect_right(cum, x) - 1
        first = x - cum[k]
        n = min(left, counts[order[k]] - first)
        if out and out[-1][0] == order[k] and out[-1][1] + out[-1][2] == first:
            out[-1] = (order[k], out[-1][1], out[-1][2] + n)
        else:
            out.append((order[k], first, n))
        pos += n
        left -= n
    return out


def plan_epoch(
    counts: Sequence[int],
    *,
    seed,
    epoch: int,
    world_size: int,
    num_workers: int,
    shuffle: bool = True,
    drop_last: bool = False,
    pad: bool = True,
    batch_size: int | None = None,
) -> list[list[list[tuple[int, int, int]]]]:
    """``plan[rank][worker]``: the ``(shard, first sample, count)`` ranges each reader gets this epoch.

    Deterministic in its arguments; see :func:`rank_totals` for the three modes.
    """
    counts = [int(c) for c in counts]
    if any(c < 0 for c in counts):
        raise ValueError("shard sample counts must be >= 0")
    nsamples = sum(counts)
    if nsamples == 0:
        raise ValueError("exact epochs need at least one sample; every shard is empty")
    totals = rank_totals(
        nsamples, world_size, num_workers=num_workers, drop_last=drop_last, pad=pad, batch_size=batch_size
    )
    order = [s for s in shard_order(len(counts), seed, epoch, shuffle) if counts[s] > 0]
    cum = [0]
    for s in order:
        cum.append(cum[-1] + counts[s])
    plan = []
    start = 0
    for total in totals:
        workers = []
        for share in split_counts(total, num_workers):
            workers.append(_segment_ranges(start, share, order, counts, cum))
            start += share
        plan.append(workers)
    return plan


def plan(counts, *, seed, epoch, world_size, rank, num_workers, worker, **kw) -> list[tuple[int, int, int]]:
    """The ranges of one ``(rank, worker)``: ``plan_epoch(...)[rank][worker]``."""
    if not (0 <= rank < world_size and 0 <= worker < num_workers):
        raise ValueError(f"rank {rank}/{world_size} or worker {worker}/{num_workers} out of range")
    return plan_epoch(counts, seed=seed, epoch=epoch, world_size=world_size, num_workers=num_workers, **kw)[rank][
        worker
    ]


def buffer_order(n: int, bufsize: int, seed, initial: int | None = None) -> list[int]:
    """The order in which the shuffle buffer of ``.shuffle(bufsize, initial)`` emits positions ``0..n-1``.

    The same Rust buffer (and fill/emit rules) as the streaming shuffle, fed
    integers instead of samples: output ``t`` is known for every ``t`` without
    reading any sample (about 10 ns per position).
    """
    from ._core import ShuffleBuffer

    if bufsize <= 1 or n <= 1:
        return list(range(n))
    initial = bufsize if initial is None else initial
    buf = ShuffleBuffer(int(bufsize), max(int(initial), 0), make_seed("exact.samples", seed))
    out = buf.push_many(list(range(n)))
    out.extend(buf.drain())
    return out


class ShuffledPositions:
    """Output ``t`` -> position of one reader's shuffled pass, computed one block at a time.

    The positions are cut into blocks of ``block`` (at least 64 × ``bufsize``); each block goes
    through its own shuffle buffer (:func:`buffer_order`, seeded by the block number), which
    drains at the block's end. Output ``t`` lies in block ``t // block``, so looking it up
    costs one block's order, whatever ``t`` is; memory stays at one block.
    """

    def __init__(self, total: int, bufsize: int, seed, initial: int | None = None, block: int | None = None):
        self.total = total
        self.bufsize = bufsize
        self.initial = initial
        self.seed = seed
        self.block = max(64 * bufsize, 1 << 16) if block is None else max(int(block), 1)
        self._k = -1
        self._order: list[int] = []

    def block_order(self, k: int) -> list[int]:
        """Positions of block ``k`` in output order."""
        if k != self._k:
            lo = k * self.block
            n = min(self.block, self.total - lo)
            self._order = [lo + p for p in buffer_order(n, self.bufsize, (self.seed, k), self.initial)]
            self._k = k
        return self._order

    def __getitem__(self, t: int) -> int:
        return self.block_order(t // self.block)[t % self.block]

    def emitted_before(self, t: int):
        """A predicate: was position ``pos`` handed out before output ``t``?"""
        lo = (t // self.block) * self.block
        done = set(self.block_order(t // self.block)[: t - lo])
        return lambda pos: pos < lo or pos in done


# ---------------------------------------------------------------------------
# Sample counts
# ---------------------------------------------------------------------------


def _local_path(url):
    from .gopen import local_path, rewrite_url

    return local_path(rewrite_url(url))


def _sidecar(path):
    from ppwids.wids_tar import find_index_file

    return find_index_file(path)


def _open_index(path, url):
    from ._core import ShardIndex

    return ShardIndex(path, sidecar=_sidecar(path), url=url)


def scan_counts(urls: Sequence[str], nsamples=None) -> list[int]:
    """Sample count of every shard: the header scan (or sidecar) for local files, else ``nsamples``."""
    given = _given_counts(urls, nsamples)
    out = []
    for i, url in enumerate(urls):
        path = _local_path(url)
        if path is not None and os.path.exists(path):
            index = _open_index(path, url)
            try:
                n = len(index)
            finally:
                index.close()
            if given[i] is not None and given[i] != n:
                raise ValueError(f"shard {url!r}: nsamples says {given[i]} samples, its index has {n}")
            out.append(n)
        elif given[i] is not None:
            out.append(given[i])
        else:
            raise ValueError(
                f"shard {url!r} is not a local file: exact=True needs its sample count "
                "(pass nsamples=, or use a wids descriptor .json that lists nsamples)"
            )
    return out


def _given_counts(urls, nsamples):
    if nsamples is None:
        return [None] * len(urls)
    if isinstance(nsamples, int):
        return [nsamples] * len(urls)
    if isinstance(nsamples, dict):
        return [None if nsamples.get(u) is None else int(nsamples[u]) for u in urls]
    nsamples = [int(n) for n in nsamples]
    if len(nsamples) != len(urls):
        raise ValueError(f"nsamples has {len(nsamples)} entries for {len(urls)} shards")
    return nsamples


def resolve_urls(urls):
    """``(urls, counts from a descriptor or None)`` for a pattern, a list, or a wids ``.json`` descriptor."""
    from .shardlists import expand_urls

    if isinstance(urls, os.PathLike):
        urls = os.fspath(urls)
    if isinstance(urls, str) and urls.endswith(".json"):
        from ppwids.wids_specs import load_dsdesc_and_resolve, urldir

        spec = load_dsdesc_and_resolve(urls, base=urldir(urls))
        shards = spec["shardlist"]
        return [s["url"] for s in shards], [int(s["nsamples"]) for s in shards]
    if isinstance(urls, str):
        return expand_urls(urls), None
    return [os.fspath(u) if hasattr(u, "__fspath__") else u for u in urls], None


# ---------------------------------------------------------------------------
# The dataset stage
# ---------------------------------------------------------------------------


def _sample_from_index(d, url, path):
    out = {"__key__": d.pop("__key__"), "__url__": url, "__local_path__": path}
    for ext, value in d.items():
        # The streaming reader's keys: no leading dot, lower case.
        out[ext[1:].lower()] = value
    return out


class ExactSamples(IterableDataset):
    """The source stage of ``WebDataset(exact=True)``: this reader's planned ranges, in order.

    ``set_epoch(e)`` makes the next pass epoch ``e``; each pass advances the
    epoch by one in the process that runs it (with non-persistent DataLoader
    workers that is a copy, so call ``set_epoch`` every epoch, or use
    ``WebLoader``, which does).
    """

    def __init__(
        self,
        urls,
        *,
        seed=0,
        shardshuffle=True,
        drop_last=False,
        pad=True,
        nsamples=None,
        handler=reraise_exception,
    ):
        super().__init__()
        self.urls, desc_counts = resolve_urls(urls)
        if not self.urls:
            raise ValueError("exact=True: no shards given")
        if desc_counts is not None and nsamples is None:
            nsamples = desc_counts
        self.nsamples = nsamples
        self.seed = seed
        self.shardshuffle = bool(shardshuffle)
        self.drop_last = bool(drop_last)
        self.pad = bool(pad)
        self.handler = handler
        self.epoch = 0
        self.shuffle_size = 0
        self.shuffle_initial = None
        self.shuffle_block = None  # ShuffledPositions' default; small values only in tests
        self.batch_size = None
        self.resume = None  # {"epoch": e, "positions": [per worker]} for the next pass only
        self.position = 0  # samples this reader has handed out in the current pass
        self._counts = None

    # -- configuration -------------------------------------------------

    @property
    def counts(self) -> list[int]:
        """Per-shard sample counts (scanned once, in the process that first asks)."""
        if self._counts is None:
            self._counts = scan_counts(self.urls, self.nsamples)
        return self._counts

    def __len__(self):
        """Samples this rank reads per epoch (all workers together)."""
        rank, world = paddle_rank_info()
        return rank_totals(sum(self.counts), world, drop_last=self.drop_last, pad=self.pad, batch_size=self.batch_size)[
            rank
        ]

    def set_epoch(self, epoch):
        """The next pass uses epoch ``epoch``."""
        self.epoch = int(epoch)
        return self

    def fingerprint(self) -> str:
        """A short hash of what the plan depends on besides epoch and topology."""
        text = json.dumps(
            [
                self.urls,
                self.counts,
                repr(self.seed),
                self.shardshuffle,
                self.drop_last,
                self.pad,
                self.shuffle_size,
                self.shuffle_initial,
                self.shuffle_block,
            ]
        )
        return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()

    def ranges(self, epoch, rank, world_size, worker, num_workers):
        """This reader's ``(shard, first, count)`` ranges for ``epoch``."""
        return plan(
            self.counts,
            seed=self.seed,
            epoch=epoch,
            world_size=world_size,
            rank=rank,
            num_workers=num_workers,
            worker=worker,
            shuffle=self.shardshuffle,
            drop_last=self.drop_last,
            pad=self.pad,
            batch_size=self.batch_size,
        )

    # -- iteration -----------------------------------------------------

    def __iter__(self):
        # Everything the pass depends on is read now, not when the generator first runs.
        epoch = self.epoch
        self.epoch += 1
        rank, world = paddle_rank_info()
        worker, nworkers = paddle_worker_only_info()
        ranges = self.ranges(epoch, rank, world, worker, nworkers)
        total = sum(r[2] for r in ranges)
        order = None
        if self.shuffle_size > 1:
            seed = (self.seed, epoch, rank, worker)
            order = ShuffledPositions(total, self.shuffle_size, seed, self.shuffle_initial, self.shuffle_block)
        start = 0
        resume, self.resume = self.resume, None
        if resume is not None and resume["epoch"] == epoch:
            start = int(resume["positions"][worker])
        self.position = start
        return self._read(ranges, order, start, total)

    def _read(self, ranges, order, start, total):
        starts = [0]
        for r in ranges:
            starts.append(starts[-1] + r[2])
        local = {s: _local_path(self.urls[s]) for s, _, _ in ranges}
        if any(p is None or not os.path.exists(p) for p in local.values()):
            yield from self._read_streaming(ranges, starts, order, start, total, local)
            return
        open_ = collections.OrderedDict()
        try:
            for t in range(start, total):
                pos = order[t] if order is not None else t
                k = bisect.bisect_right(starts, pos) - 1
                shard, first, _ = ranges[k]
                index = open_.get(shard)
                if index is None:
                    index = _open_index(local[shard], self.urls[shard])
                    open_[shard] = index
                    if len(index) != self.counts[shard]:
                        raise ValueError(
                            f"shard {self.urls[shard]!r} has {len(index)} samples, but the epoch was planned "
                            f"with {self.counts[shard]}: it changed after it was counted"
                        )
                    if len(open_) > 4:
                        open_.popitem(last=False)[1].close()
                else:
                    open_.move_to_end(shard)
                try:
                    raw = index.get_sample(first + pos - starts[k])
                except ShardError as exn:  # one bad sample (a repeated extension): the handler decides
                    self.position = t + 1
                    exn.args = exn.args + (self.urls[shard],)
                    if self.handler(exn):
                        continue
                    return
                sample = _sample_from_index(raw, self.urls[shard], local[shard])
                self.position = t + 1
                yield sample
        finally:
            for index in open_.values():
                index.close()

    def _read_streaming(self, ranges, starts, order, start, total, local):
        # Remote shards cannot be seeked into: read the ranges in order, keep the items
        # the shuffle order has not reached yet, drop those handed out before `start`.
        # Ranges wholly before the first position still needed are not opened at all.
        from contextlib import closing
        from itertools import islice

        from .tariterators import read_shard

        floor = start if order is None else (start // order.block) * order.block

        def sequential():
            for k, (shard, first, count) in enumerate(ranges):
                if starts[k + 1] <= floor:
                    continue
                skip = max(floor - starts[k], 0)
                src = dict(url=self.urls[shard])
                if local[shard] is not None:
                    src["local_path"] = local[shard]
                with closing(read_shard(src, self.handler)) as samples:
                    for i, sample in enumerate(islice(samples, first + skip, first + count)):
                        yield starts[k] + skip + i, sample

        before = order.emitted_before(start) if order is not None else (lambda pos: pos < start)
        pending = {}
        it = sequential()
        for t in range(start, total):
            want = order[t] if order is not None else t
            while want not in pending:
                try:
                    pos, sample = next(it)
                except StopIteration:
                    raise ValueError(
                        f"shard data ended early: exact plan expected {total} samples for this reader"
                    ) from None
                if not before(pos):
                    pending[pos] = sample
            self.position = t + 1
            yield pending.pop(want)

    def __repr__(self):
        return (
            f"ExactSamples({len(self.urls)} shards, seed={self.seed!r}, epoch={self.epoch}, "
            f"shardshuffle={self.shardshuffle}, drop_last={self.drop_last}, pad={self.pad}, "
            f"shuffle={self.shuffle_size})"
        )


def setup_webdataset(
    ds,
    urls,
    *,
    handler,
    shardshuffle,
    mode,
    resampled,
    repeat,
    select_files,
    rename_files,
    seed,
    drop_last,
    pad,
    nsamples,
):
    """Build ``WebDataset(urls, exact=True, ...)``: one :class:`ExactSamples` source instead of the usual stages."""
    for name, value in (("resampled", resampled or mode == "resampled"), ("repeat", repeat)):
        if value:
            raise ValueError(f"WebDataset(exact=True) cannot be combined with {name}=True")
    if select_files is not None or rename_files is not None:
        raise ValueError("WebDataset(exact=True) groups samples from the shard index: no select_files/rename_files")
    if seed is None:  # every rank must plan with the same seed, never a random one
        seed = 0
        if _settings.env_str("WDS_SEED") is not None:
            from .compat import _seed_from_env

            seed = _seed_from_env(None)[0]
    ds._exact = True
    ds.seed, ds.verbose, ds.repeat_dataset = seed, False, False
    ds.append(
        ExactSamples(
            urls,
            seed=seed,
            shardshuffle=shardshuffle is not False and shardshuffle != 0,  # None: shuffled
            drop_last=drop_last,
            pad=pad,
            nsamples=nsamples,
            handler=handler,
        )
    )
    return ds


def exact_stage(ds):
    """The :class:`ExactSamples` source of a pipeline, or None."""
    pipeline = getattr(ds, "pipeline", None)
    if pipeline and isinstance(pipeline[0], ExactSamples):
        return pipeline[0]
    return None


def with_shuffle(ds, size, initial=100, **kw):
    """``ds.shuffle(size)`` for an exact dataset: a deterministic, position-addressable shuffle at the source."""
    if kw.get("rng") is not None:
        raise ValueError("an exact dataset's shuffle is seeded by WebDataset(seed=...), not rng=")
    result = ds.compose()
    stage = copy.copy(result.pipeline[0])
    stage.shuffle_size = int(size)
    stage.shuffle_initial = int(initial)
    result.pipeline[0] = stage
    return result


# ---------------------------------------------------------------------------
# The loader with state
# ---------------------------------------------------------------------------


class _End:
    """Marks the end of one worker's stream inside its last batch."""


class _Tag:
    # Last stage of the loader's pipeline: pairs each item with its reader's position.
    def __init__(self, stage):
        self.stage = stage

    def __call__(self, src):
        for item in src:
            yield item, self.stage.position
        yield _End()


class _Collate:
    def __init__(self, collate_fn):
        self.collate_fn = collate_fn

    def __call__(self, items):
        worker = paddle_worker_only_info()[0]
        done = bool(items) and isinstance(items[-1], _End)
        real = [x for x in items if not isinstance(x, _End)]
        pos = real[-1][1] if real else -1
        data = self.collate_fn([x for x, _ in real]) if real else 0
        # An array, not a list: Paddle silently drops a batch that holds no array or tensor.
        return data, np.array([worker, pos, int(done), len(real)], dtype=np.int64)


def _default_collate():
    from paddle.io.dataloader.collate import default_collate_fn

    return default_collate_fn


def _meta_ints(meta):
    return [int(m) for m in np.asarray(meta.numpy() if hasattr(meta, "numpy") else meta).reshape(-1)]


class ExactLoader(IterableDataset):
    """Batches of an exact dataset through ``paddle.io.DataLoader``, with a resumable state.

    Each pass builds a DataLoader over a copy of the dataset fixed to the
    pass's epoch and resume positions; worker batches are delivered in
    round-robin order (worker 0, 1, ..., skipping finished workers), which is
    what Paddle does and what a resumed pass continues from.
    """

    def __init__(self, dataset, batch_size=1, num_workers=0, collate_fn=None, **kw):
        super().__init__()
        stage = exact_stage(dataset)
        if stage is None:
            raise TypeError("ExactLoader needs a WebDataset(..., exact=True) pipeline")
        if kw.pop("persistent_workers", False):
            raise ValueError("exact WebLoader starts fresh workers every pass; persistent_workers is not supported")
        if kw.pop("drop_last", False) and not stage.drop_last:
            raise ValueError("pass drop_last=True to WebDataset(..., exact=True), where the plan is made")
        kw.pop("shuffle", None)
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.num_workers = int(num_workers)
        self.collate_fn = collate_fn
        self.kw = kw
        self._resume = None  # a loaded state, used by the next pass if it is that state's epoch
        self._cur = None  # per-pass progress while a pass runs

    def _stage(self):
        return exact_stage(self.dataset)

    @property
    def epoch(self):
        """The epoch of the next pass; it lives in the dataset, so ``ds.set_epoch`` moves it too."""
        return self._stage().epoch

    def set_epoch(self, epoch):
        """The next pass is epoch ``epoch``: from a loaded state if it is that epoch's, else from its start."""
        self._stage().set_epoch(epoch)
        self._cur = None
        return self

    def __len__(self):
        """Batches this rank gets per epoch (from the plan, assuming 1:1 stages)."""
        rank, world, nw = self._topology()
        stage = self._stage()
        total = rank_totals(
            sum(stage.counts),
            world,
            num_workers=nw,
            drop_last=stage.drop_last,
            pad=stage.pad,
            batch_size=self.batch_size,
        )[rank]
        return sum(math.ceil(n / self.batch_size) for n in split_counts(total, nw))

    def _topology(self):
        rank, world = paddle_rank_info()
        return rank, world, max(self.num_workers, 1)

    def __iter__(self):
        rank, world, nw = self._topology()
        base = self._stage()
        _ = base.counts  # scanned once here, not in every worker
        epoch = base.epoch
        base.epoch = epoch + 1  # a pass advances the epoch, here in the main process
        stage = copy.copy(base)
        stage.batch_size = self.batch_size
        stage.set_epoch(epoch)
        resume, self._resume = self._resume, None
        if resume is not None and resume["epoch"] == epoch:
            positions = list(resume["positions"])
            cursor, live, batches = resume["cursor"], list(resume["live"]), resume["batches"]
        else:
            positions, cursor, live, batches = [0] * nw, 0, list(range(nw)), 0
        stage.resume = {"epoch": epoch, "positions": list(positions)}
        ds = self.dataset.compose(_Tag(stage))
        ds.pipeline[0] = stage
        ds.pipeline[-1].stage = stage
        from .paddle import DataLoader

        collate = self.collate_fn if self.collate_fn is not None else _default_collate()
        loader = DataLoader(
            ds,
            batch_size=self.batch_size,
            num_workers=self.num_workers,
            collate_fn=_Collate(collate),
            drop_last=False,
            **self.kw,
        )
        cur = {"epoch": epoch, "positions": positions, "cursor": cursor, "live": live, "batches": batches}
        self._cur = cur
        return self._deliver(iter(loader), cur, nw)

    def _deliver(self, it, cur, nw):
        pending = {w: collections.deque() for w in range(nw)}
        while cur["live"]:
            live = cur["live"]
            w = next((x for x in live if x >= cur["cursor"]), live[0])
            while not pending[w]:
                try:
                    data, meta = next(it)
                except StopIteration:
                    raise RuntimeError(
                        f"DataLoader ended before worker {w} finished its planned range (did a worker fail?)"
                    ) from None
                mw, pos, done, n = _meta_ints(meta)
                pending[mw].append((data if n else None, pos, done))
            data, pos, done = pending[w].popleft()
            if pos >= 0:
                cur["positions"][w] = pos
            if done:
                live.remove(w)
            cur["cursor"] = w + 1
            if data is not None:
                cur["batches"] += 1
                yield data
        self._cur = None

    # -- state ----------------------------------------------------------

    def state_dict(self) -> dict:
        """A JSON-serialisable dict that lets a fresh loader continue exactly here."""
        rank, world, nw = self._topology()
        stage = self._stage()
        if self._cur is not None:
            cur = self._cur
            epoch = cur["epoch"]
            body = {k: copy.copy(cur[k]) for k in ("positions", "cursor", "live", "batches")}
        else:
            epoch = stage.epoch
            pending = self._resume if self._resume is not None and self._resume["epoch"] == epoch else None
            body = pending or {"positions": [0] * nw, "cursor": 0, "live": list(range(nw)), "batches": 0}
        return {
            "version": STATE_VERSION,
            "epoch": epoch,
            "seed": stage.seed if isinstance(stage.seed, int | str) else repr(stage.seed),
            "rank": rank,
            "world_size": world,
            "num_workers": nw,
            "batch_size": self.batch_size,
            # The shuffle's RNG state is a function of these, the seed, epoch, rank, worker and position.
            "shuffle": {"size": stage.shuffle_size, "initial": stage.shuffle_initial, "block": stage.shuffle_block},
            "fingerprint": stage.fingerprint(),
            "samples": body["positions"],
            **{k: body[k] for k in ("positions", "cursor", "live", "batches")},
        }

    def set_state_dict(self, state):
        """Continue from ``state`` (from :meth:`state_dict`, possibly after a JSON round trip).

        ``state`` may also be ``{"ranks": [state of rank 0, state of rank 1, ...]}``.
        A different world size, ``num_workers``, ``batch_size`` or dataset raises
        ValueError: the remaining order could not be reproduced.
        """
        rank, world, nw = self._topology()
        if "ranks" in state:
            states = [s for s in state["ranks"] if s.get("rank") == rank]
            if not states:
                raise ValueError(f"no state for rank {rank} in the saved states")
            state = states[0]
        if state.get("version") != STATE_VERSION:
            raise ValueError(f"unknown exact loader state version {state.get('version')!r}")
        stage = self._stage()
        for key, mine in (
            ("world_size", world),
            ("rank", rank),
            ("num_workers", nw),
            ("batch_size", self.batch_size),
            ("fingerprint", stage.fingerprint()),
        ):
            if state[key] != mine:
                raise ValueError(
                    f"cannot resume exactly: the state was saved with {key}={state[key]!r}, this loader has "
                    f"{key}={mine!r} (resume with the same ranks, num_workers, batch_size, shards, seed and shuffle)"
                )
        stage.set_epoch(int(state["epoch"]))
        self._cur = None
        self._resume = {
            "epoch": int(state["epoch"]),
            "positions": [int(p) for p in state["positions"]],
            "cursor": int(state["cursor"]),
            "live": [int(w) for w in state["live"]],
            "batches": int(state["batches"]),
        }
        return self

    load_state_dict = set_state_dict


__all__ = [
    "ExactLoader",
    "ExactSamples",
    "ShuffledPositions",
    "buffer_order",
    "exact_stage",
    "plan",
    "plan_epoch",
    "rank_totals",
    "scan_counts",
    "setup_webdataset",
    "shard_order",
    "split_counts",
    "with_shuffle",
]
