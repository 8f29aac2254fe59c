"""Small datasets and wrappers: a mock source, repetition, epoch length and nominal length.

Every class here is defined at module level (no dynamic subclasses), so
instances pickle for spawned DataLoader workers.
"""

from __future__ import annotations

import itertools

from . import utils
from .paddle import IterableDataset, no_len
from .utils import PipelineStage


class MockDataset(IterableDataset):
    """Yields the same ``sample`` ``length`` times (for tests and benchmarks)."""

    def __init__(self, sample, length):
        super().__init__()
        self.sample = sample
        self.length = length

    def __iter__(self):
        for _ in range(self.length):
            yield self.sample

    # No __len__ (as in both references): len() is a TypeError, list() iterates.
    __len__ = no_len


class repeatedly(IterableDataset, PipelineStage):
    """Iterate a source again and again, up to ``nepochs`` passes or ``nbatches`` items.

    As a dataset, ``repeatedly(ds, nepochs=3)`` re-iterates ``ds``; as a
    stage, ``repeatedly(None, nepochs=3)`` re-iterates its input (which only
    helps when the input can be iterated more than once). A pass that yields
    nothing ends the repetition. ``length`` is what ``len()`` reports.
    """

    def __init__(self, source=None, nepochs=None, nbatches=None, length=None):
        super().__init__()
        self.source = source
        self.nepochs = nepochs
        self.nbatches = nbatches
        self.length = length

    def invoke(self, source):
        return utils.repeatedly(source, nepochs=self.nepochs, nbatches=self.nbatches)

    def __iter__(self):
        if self.source is None:
            raise ValueError("repeatedly: no source dataset; pass one or use it as a pipeline stage")
        return self.invoke(self.source)

    def __len__(self):
        if self.length is None:
            # TypeError (not paddle's RuntimeError) keeps list(ds) working.
            raise TypeError("repeatedly: no length given")
        return self.length


class with_epoch(IterableDataset, PipelineStage):
    """Impose epochs of exactly ``length`` items on a dataset.

    As a wrapper, ``with_epoch(dataset, length)`` yields ``length`` items per
    ``__iter__``, continuing where the previous epoch stopped and restarting
    the dataset whenever it runs out (an empty dataset ends the epoch). As a
    pipeline stage, ``with_epoch(length)`` cuts each pass of its input after
    ``length`` items; to make a finite pipeline endless first, use
    ``DataPipeline.with_epoch``.
    """

    def __init__(self, dataset=None, length=None):
        super().__init__()
        if length is None and isinstance(dataset, int):
            dataset, length = None, dataset
        if length is None:
            raise TypeError("with_epoch needs a length: with_epoch(dataset, length) or with_epoch(length)")
        self.dataset = dataset
        self.length = length
        self.source = None

    def __getstate__(self):
        # A live iterator cannot be pickled; a copy starts a fresh pass.
        state = dict(self.__dict__)
        state["source"] = None
        return state

    def invoke(self, src):
        return itertools.islice(src, self.length)

    def _epoch(self):
        produced = 0
        while produced < self.length:
            if self.source is None:
                self.source = iter(self.dataset)
                fresh = True
            else:
                fresh = False
            for sample in self.source:
                yield sample
                produced += 1
                fresh = False
                if produced >= self.length:
                    return
            self.source = None
            if fresh:  # the dataset yields nothing at all
                return

    def __iter__(self):
        if self.dataset is None:
            raise ValueError("with_epoch(length) is a pipeline stage; use with_epoch(dataset, length) to wrap")
        return self._epoch()

    def __len__(self):
        return self.length


class with_length(IterableDataset, PipelineStage):
    """Give a dataset a nominal ``len()`` without changing what it yields."""

    def __init__(self, dataset, length):
        super().__init__()
        self.dataset = dataset
        self.length = length

    def invoke(self, dataset):
        return iter(dataset)

    def __iter__(self):
        return iter(self.dataset)

    def __len__(self):
        return self.length


__all__ = ["MockDataset", "repeatedly", "with_epoch", "with_length"]
