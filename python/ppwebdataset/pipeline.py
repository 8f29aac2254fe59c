"""``DataPipeline``: a source followed by stages, as a Paddle ``IterableDataset``."""

from __future__ import annotations

import copy
import reprlib
import sys
import warnings
from collections.abc import Iterator
from itertools import islice
from typing import Any, Self

from .paddle import DataLoader, IterableDataset
from .utils import PipelineStage


def _short(value: Any) -> str:
    """A value as a stage argument: functions and classes by name, opaque objects by type."""
    if isinstance(value, type):
        return value.__name__
    if callable(value) and hasattr(value, "__name__"):
        return str(value.__name__)
    if type(value).__repr__ is object.__repr__:
        return type(value).__name__
    if isinstance(value, str | bytes | list | tuple | dict | set):
        return reprlib.repr(value)
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def describe_stage(stage: Any) -> str:
    """One line naming a pipeline stage and its arguments (used by ``repr(pipeline)``)."""
    from .filters import FilterFunction
    from .handlers import reraise_exception

    if isinstance(stage, FilterFunction):
        name = getattr(stage.f, "__name__", type(stage.f).__name__).lstrip("_")
        args = [_short(a) for a in stage.args]
        args += [f"{k}={_short(v)}" for k, v in stage.kw.items() if v is not reraise_exception]
        return f"{name}({', '.join(args)})"
    if isinstance(stage, DataPipeline):
        return f"{type(stage).__name__}({len(stage.pipeline)} stages)"
    urls = getattr(stage, "urls", None)
    if isinstance(urls, list):
        first = ", ".join(repr(u) for u in urls[:2]) + (", ..." if len(urls) > 2 else "")
        return f"{type(stage).__name__}({len(urls)} urls: {first})"
    if isinstance(stage, list):
        return f"list({len(stage)} items)"
    return _short(stage)


def add_length_method(obj):
    """Give ``obj`` a ``__len__`` returning ``obj.size`` (kept for API compatibility).

    DataPipeline already answers ``len()`` once ``size`` is set, so no dynamic
    class is created and the object stays picklable.
    """
    if not isinstance(obj, DataPipeline):
        raise TypeError("add_length_method works on DataPipeline objects")
    return obj


class DataPipeline(IterableDataset, PipelineStage):
    """A source followed by processing stages.

    Each argument is a stage: an iterable dataset or list (the source), a
    ``PipelineStage``, or a callable taking the previous iterator. Lists of
    stages are flattened, ``None`` is skipped.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__()
        self.pipeline = []
        self.length = -1
        self.repetitions = 1
        self.nsamples = -1
        for arg in args:
            if arg is None:
                continue
            if isinstance(arg, list):
                self.pipeline.extend(arg)
            else:
                self.pipeline.append(arg)

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__}("]
        lines += [f"  {i}: {describe_stage(stage)}," for i, stage in enumerate(self.pipeline)]
        if self.repetitions != 1 or self.nsamples > 0:
            reps = "forever" if self.repetitions == sys.maxsize else str(self.repetitions)
            lines.append(f"  repeated {reps}" + (f", {self.nsamples} items per epoch" if self.nsamples > 0 else ""))
        if "size" in self.__dict__:
            lines.append(f"  len() = {self.size}")
        lines.append(")")
        return "\n".join(lines)

    def close(self) -> None:
        """Close every stage that can be closed."""
        for step in getattr(self, "pipeline", []):
            if hasattr(step, "close") and step is not self:
                step.close()
        self.pipeline = []

    def invoke(self, f, *args, **kwargs):
        """Run one stage on the output of the previous one."""
        if isinstance(f, IterableDataset | DataLoader) and len(args) == 0:
            return iter(f)
        if isinstance(f, PipelineStage):
            return f.run(*args, **kwargs)
        if isinstance(f, list):
            return iter(f)
        if callable(f):
            return f(*args, **kwargs)
        raise ValueError(f"{f}: not a valid pipeline stage")

    def iterator1(self) -> Iterator[Any]:
        """One pass through the pipeline."""
        if not self.pipeline:
            return iter(())
        source = self.invoke(self.pipeline[0])
        for step in self.pipeline[1:]:
            source = self.invoke(step, source)
        return source

    def iterator(self) -> Iterator[Any]:
        """Passes through the pipeline, ``repetitions`` times; an empty pass ends it."""
        for _ in range(self.repetitions):
            count = 0
            for sample in self.iterator1():
                yield sample
                count += 1
            if count == 0:
                break

    def __iter__(self) -> Iterator[Any]:
        if self.repetitions != 1 and self.nsamples > 0:
            return islice(self.iterator(), self.nsamples)
        return self.iterator()

    def __len__(self) -> int:  # type: ignore[override]  # paddle types it as always raising
        size = self.__dict__.get("size")
        if size is None:
            raise TypeError(f"{type(self).__name__} has no length; call .with_length(n) to set one")
        return size

    def set_epoch(self, epoch: int) -> Self:
        """Tell every stage with an epoch (shuffles, resamplers, exact plans) that epoch ``epoch`` starts next."""
        for stage in self.pipeline:
            if hasattr(stage, "set_epoch") and stage is not self:
                stage.set_epoch(epoch)
        return self

    def stage(self, i: int) -> Any:
        """Pipeline stage ``i``."""
        return self.pipeline[i]

    def append(self, f: Any) -> None:
        """Append a stage (in place)."""
        self.pipeline.append(f)

    def compose(self, *args: Any) -> Self:
        """A shallow copy of this pipeline with stages appended."""
        result = copy.copy(self)
        result.pipeline = copy.copy(result.pipeline)
        for arg in args:
            result.append(arg)
        return result

    def with_length(self, n: int, silent: bool = False) -> Self:
        """Make ``len()`` return ``n`` (the epoch itself is not changed)."""
        if not silent:
            warnings.warn(
                ".with_length() only sets the value of __len__ for compatibility with some training "
                "environments. It does not change the number of samples in an epoch.",
                stacklevel=2,
            )
        self.size = n
        return add_length_method(self)

    def with_epoch(self, nsamples: int = -1, nbatches: int = -1) -> Self:
        """Repeat the pipeline endlessly and cut each epoch after this many items (per worker)."""
        self.repetitions = sys.maxsize
        self.nsamples = max(nsamples, nbatches)
        return self

    def repeat(self, nepochs: int = -1, nbatches: int = -1) -> Self:
        """Repeat the pipeline ``nepochs`` times (forever if ``nepochs <= 0``), up to ``nbatches`` items."""
        self.repetitions = nepochs if nepochs > 0 else sys.maxsize
        self.nsamples = nbatches
        return self


__all__ = ["DataPipeline", "add_length_method"]
