"""Mixing several datasets into one stream: round robin or random by weight."""

from __future__ import annotations

import bisect
import itertools
import os
import random

from .paddle import IterableDataset
from .paddle import no_len as _no_len
from .utils import make_seed, paddle_worker_info


def round_robin_shortest(*sources):
    """One item from each source in turn; stop as soon as any source is exhausted."""
    sources = [iter(s) for s in sources]
    if not sources:
        return
    for src in itertools.cycle(sources):
        try:
            item = next(src)
        except StopIteration:
            return
        yield item


def round_robin_longest(*sources):
    """One item from each source in turn; exhausted sources drop out until none is left."""
    sources = [iter(s) for s in sources]
    i = 0
    while sources:
        i %= len(sources)
        try:
            item = next(sources[i])
        except StopIteration:
            del sources[i]
            continue
        i += 1
        yield item


class RoundRobin(IterableDataset):
    """Alternate between datasets; ``longest=True`` continues until all are exhausted."""

    def __init__(self, datasets, longest=False):
        super().__init__()
        self.datasets = datasets
        self.longest = longest

    def __iter__(self):
        sources = [iter(d) for d in self.datasets]
        if self.longest:
            return round_robin_longest(*sources)
        return round_robin_shortest(*sources)

    __len__ = _no_len


def _check_probs(probs, n):
    if probs is None:
        return [1.0] * n
    probs = [float(p) for p in probs]
    if len(probs) != n:
        raise ValueError(f"got {len(probs)} probabilities for {n} sources")
    if any(p < 0 or p != p for p in probs):
        raise ValueError(f"probabilities must be non-negative numbers, got {probs}")
    if n and sum(probs) <= 0:
        raise ValueError(f"probabilities must not all be zero, got {probs}")
    return probs


def random_samples(sources, probs=None, longest=False, rng=None):
    """Draw each item from a source chosen at random with weights ``probs`` (default equal).

    Stops when the chosen source is exhausted, or with ``longest=True`` drops
    it and goes on while any source with a positive weight is left. ``rng``
    is a ``random.Random``; by default a fresh one seeded from ``os.urandom``
    (never the global ``random``, which forked workers share).
    """
    sources = [iter(s) for s in sources]
    probs = _check_probs(probs, len(sources))
    if rng is None:
        rng = random.Random(int.from_bytes(os.urandom(8), "little"))
    # Zero-weight sources can never be drawn; dropping them keeps `longest` from spinning.
    live = [(s, p) for s, p in zip(sources, probs, strict=True) if p > 0]
    sources = [s for s, _ in live]
    probs = [p for _, p in live]
    while sources:
        cum = list(itertools.accumulate(probs))
        total = cum[-1]
        i = min(bisect.bisect_right(cum, rng.random() * total), len(cum) - 1)
        try:
            item = next(sources[i])
        except StopIteration:
            if not longest:
                return
            del sources[i]
            del probs[i]
            continue
        yield item


class RandomMix(IterableDataset):
    """Mix datasets at random with weights ``probs``.

    The generator belongs to the instance: with ``seed`` the mix of pass ``k``
    in a given rank and worker is ``make_seed(seed, k, rank, worker)`` (so it
    is reproducible yet differs between workers and epochs); without it each
    pass seeds from ``os.urandom``.
    """

    def __init__(self, datasets, probs=None, longest=False, seed=None):
        super().__init__()
        self.datasets = datasets
        self.probs = probs
        self.longest = longest
        self.seed = seed
        self.passes = 0
        _check_probs(probs, len(datasets))

    def _rng(self):
        n = self.passes
        self.passes += 1
        if self.seed is None:
            return random.Random(int.from_bytes(os.urandom(8), "little"))
        rank, _, worker, _ = paddle_worker_info()
        return random.Random(make_seed(self.seed, n, rank, worker))

    def __iter__(self):
        sources = [iter(d) for d in self.datasets]
        return random_samples(sources, self.probs, longest=self.longest, rng=self._rng())

    __len__ = _no_len


__all__ = ["RandomMix", "RoundRobin", "random_samples", "round_robin_longest", "round_robin_shortest"]
