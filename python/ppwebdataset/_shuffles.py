"""Shuffle stages: ``shuffle`` / ``Shuffle`` and ``detshuffle``, over the Rust buffer.

Private: re-exported by ``ppwebdataset.filters`` (see ``_curry``).
"""

from __future__ import annotations

import os

import numpy as np

from . import utils
from ._curry import _StageFactory
from .utils import PipelineStage, make_seed


def pick(buf, rng):
    """Remove and return a random element of list ``buf`` (the last one fills its slot)."""
    k = rng.randint(0, len(buf) - 1)
    sample = buf[k]
    buf[k] = buf[-1]
    buf.pop()
    return sample


# Input items handed to the Rust buffer per call: few crossings, little extra memory.
_CHUNK = 32


def _random_seed():
    # Fresh entropy per call: forked workers get different seeds.
    return int.from_bytes(os.urandom(8), "little")


def _seed64(seed):
    return int(seed) & 0xFFFF_FFFF_FFFF_FFFF


def _next_or_handle(it, handler):
    """``next(it)``; on an error in the source, ask ``handler`` (None re-raises) and end."""
    try:
        return next(it), True
    except StopIteration:
        return None, False
    except Exception as exn:
        if handler is None:
            raise
        handler(exn)
        # The source generator is finished after raising; end the input either way.
        return None, False


def _shuffle_python(data, bufsize, initial, rng, handler):
    # webdataset's algorithm with a caller-supplied `random.Random` (same output as upstream).
    data = iter(data)
    initial = min(initial, bufsize)
    buf = []
    while True:
        sample, ok = _next_or_handle(data, handler)
        if not ok:
            break
        buf.append(sample)
        if len(buf) < bufsize:
            sample, ok = _next_or_handle(data, handler)
            if ok:
                buf.append(sample)
        if len(buf) >= initial:
            yield pick(buf, rng)
        if not ok:
            break
    while buf:
        yield pick(buf, rng)


def _shuffle_rust(data, bufsize, initial, seed, handler):
    from ._core import ShuffleBuffer

    buf = ShuffleBuffer(max(int(bufsize), 0), max(int(initial), 0), _seed64(seed))
    push_many = buf.push_many
    data = iter(data)
    chunk = []
    while True:
        sample, ok = _next_or_handle(data, handler)
        if not ok:
            break
        chunk.append(sample)
        if len(chunk) >= _CHUNK:
            ready = push_many(chunk)
            chunk.clear()
            yield from ready
    if chunk:
        yield from push_many(chunk)
    yield from buf.drain()


def _shuffle(data, bufsize=1000, initial=100, rng=None, seed=None, handler=None):
    """Shuffle a stream through a buffer of ``bufsize`` items.

    Output starts once ``initial`` items are buffered (a smaller ``initial``
    starts faster but mixes the first items less). With ``rng`` (a
    ``random.Random``) the upstream Python algorithm runs with that generator;
    with ``seed`` the order is a pure function of the seed and the input;
    with neither, a fresh seed comes from ``os.urandom``. ``handler`` decides
    what happens when the *source* raises: None re-raises, otherwise the
    buffered items are still delivered and the stream ends.
    """
    if rng is not None and seed is not None:
        raise ValueError("shuffle: pass either rng or seed, not both")
    if rng is not None:
        return _shuffle_python(data, bufsize, initial, rng, handler)
    # make_seed(seed, 0): the same order as the first pass of shuffle(seed=seed).
    seed = _random_seed() if seed is None else make_seed(seed, 0)
    return _shuffle_rust(data, bufsize, initial, seed, handler)


class Shuffle(PipelineStage):
    """The stage ``shuffle(...)`` returns: a shuffle buffer that counts its passes.

    With ``seed``, pass ``k`` of the stage (the k-th time the pipeline is
    iterated in this process) uses ``make_seed(seed, k)``: a run is
    reproducible, but epochs do not repeat the same order (webdataset gives
    the identical order every epoch). The seed does not mix in the rank or
    worker, so a shuffle placed before node splitting gives every rank the
    same permutation. The pass counter lives in each process: DataLoader
    workers that are not persistent start from pass 0 every epoch unless
    ``set_epoch`` (or ``WebDataset.set_epoch``) is called before each epoch.
    """

    def __init__(self, bufsize=1000, initial=100, rng=None, seed=None, handler=None):
        if rng is not None and seed is not None:
            raise ValueError("shuffle: pass either rng or seed, not both")
        self.bufsize = bufsize
        self.initial = initial
        self.rng = rng
        self.seed = seed
        self.handler = handler
        self.passes = 0

    def set_epoch(self, epoch):
        """Make the next pass use pass number ``epoch`` (for DataLoader workers that restart)."""
        self.passes = int(epoch)

    def run(self, src):
        n = self.passes
        self.passes += 1
        if self.rng is not None:
            return _shuffle_python(src, self.bufsize, self.initial, self.rng, self.handler)
        seed = _random_seed() if self.seed is None else make_seed(self.seed, n)
        return _shuffle_rust(src, self.bufsize, self.initial, seed, self.handler)

    __call__ = run

    def __repr__(self):
        return f"shuffle(bufsize={self.bufsize}, initial={self.initial}, seed={self.seed!r})"


shuffle = _StageFactory(_shuffle, Shuffle)


class detshuffle(PipelineStage):
    """Stage: a deterministic shuffle whose order changes every epoch.

    Each ``run`` (pipeline pass) increments ``epoch`` and seeds the buffer with
    ``seed + epoch``, as both references do, so every rank and every DataLoader
    worker produces the same order: placed before ``split_by_node`` /
    ``split_by_worker`` it shuffles shards without reading any twice.
    ``per_worker=True`` (opt-in) mixes the rank and worker into the seed, for
    use *after* the splitters. The epoch counter lives in the process that
    iterates: with DataLoader workers that are not persistent, call
    ``set_epoch(e)`` in the main process before each epoch.
    """

    def __init__(self, bufsize=1000, initial=100, seed=0, epoch=-1, *, per_worker=False):
        self.bufsize = bufsize
        self.initial = initial
        self.seed = seed
        self.epoch = epoch
        self.per_worker = per_worker

    def set_epoch(self, epoch):
        """Make the next pass use epoch ``epoch``."""
        self.epoch = int(epoch) - 1

    def current_seed(self, epoch=None):
        """The buffer seed for ``epoch`` (default: the current one) in this process."""
        epoch = self.epoch if epoch is None else epoch
        if isinstance(self.seed, int | np.integer) and not isinstance(self.seed, bool):
            base = int(self.seed) + epoch
        else:
            base = make_seed(self.seed, epoch)  # e.g. a string seed from WDS_SEED
        if not self.per_worker:
            return base
        rank, _, worker, _ = utils.paddle_worker_info()
        return make_seed(base, rank, worker)

    def run(self, src):
        self.epoch += 1
        return _shuffle_rust(src, self.bufsize, self.initial, self.current_seed(), None)

    __call__ = run

    def __repr__(self):
        return f"detshuffle(bufsize={self.bufsize}, initial={self.initial}, seed={self.seed!r}, epoch={self.epoch})"
