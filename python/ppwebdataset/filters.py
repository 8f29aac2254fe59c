"""Placeholder until the filters module lands: only the stage-currying helpers."""

from __future__ import annotations

from .utils import PipelineStage


class RestCurried(PipelineStage):
    """A stage: ``f(src, *args, **kw)`` with the arguments bound in advance."""

    def __init__(self, f, *args, **kw):
        self.f, self.args, self.kw = f, args, kw

    def __call__(self, src):
        return self.f(src, *self.args, **self.kw)

    def run(self, src):
        return self(src)


def pipelinefilter(f):
    """Turn ``f(src, *args, **kw)`` into a stage factory ``f(*args, **kw)(src)``."""

    def curried(*args, **kw):
        return RestCurried(f, *args, **kw)

    curried.__name__ = f.__name__
    curried.__doc__ = f.__doc__
    return curried


from .handlers import reraise_exception  # noqa: E402,F401


def default_collation_fn(samples, combine_tensors=True, combine_scalars=True):
    """Placeholder: lists of fields."""
    return [list(x) for x in zip(*samples, strict=True)]
