"""Currying helpers of the filters: stage factories and function composition.

Private: everything here is re-exported by ``ppwebdataset.filters`` with
``__module__ == "ppwebdataset.filters"`` (pickles and reprs name that module).
"""

from __future__ import annotations

import functools
from functools import reduce


class FilterFunction:
    """A filter with its arguments bound: ``FilterFunction(f, *args, **kw)(data)``.

    A class rather than a closure so that pipelines can be pickled (spawned
    DataLoader workers).
    """

    def __init__(self, f, *args, **kw):
        self.f = f
        self.args = args
        self.kw = kw

    def __call__(self, data):
        return self.f(data, *self.args, **self.kw)

    def run(self, data):
        """Same as calling the object (lets it act as a pipeline stage)."""
        return self.f(data, *self.args, **self.kw)

    def __str__(self):
        return f"<{getattr(self.f, '__name__', self.f)} {self.args} {self.kw}>"

    __repr__ = __str__


class RestCurried:
    """Binds every argument but the first: ``RestCurried(f)(*args, **kw)`` is a FilterFunction."""

    def __init__(self, f):
        self.f = f

    def __call__(self, *args, **kw):
        return FilterFunction(self.f, *args, **kw)


def pipelinefilter(f):
    """Decorator: turn ``f(data, *args, **kw)`` into a stage factory ``f(*args, **kw)(data)``."""
    result = RestCurried(f)
    functools.update_wrapper(result, f)
    return result


def identity(x):
    """Return the argument."""
    return x


class _Composed:
    # A picklable g(f(x)).
    def __init__(self, f, g):
        self.f, self.g = f, g

    def __call__(self, x):
        return self.g(self.f(x))


def compose2(f, g):
    """Compose two functions: ``compose2(f, g)(x) == g(f(x))``."""
    return _Composed(f, g)


def compose(*args):
    """Compose functions left to right: ``compose(f, g, h)(x) == h(g(f(x)))``."""
    return reduce(compose2, args)


def pipeline(source, *args):
    """Apply filters to a source, left to right."""
    if len(args) == 0:
        return source
    return compose(*args)(source)


def getfirst(a, keys, default=None, missing_is_error=True):
    """The value of the first key of ``keys`` present in dict ``a``.

    ``keys`` is a list or a string of alternatives separated by ``;``.
    """
    if isinstance(keys, str):
        if " " in keys:
            raise ValueError(f"getfirst: key spec {keys!r} contains a space; use ';' between alternatives")
        keys = keys.split(";")
    for k in keys:
        if k in a:
            return a[k]
    if missing_is_error:
        raise ValueError(f"didn't find {keys} in {list(a.keys())}")
    return default


def parse_field_spec(fields):
    """Parse ``"jpg;png cls"`` (or a list) into ``[["jpg", "png"], ["cls"]]``."""
    if isinstance(fields, str):
        fields = fields.split()
    return [field.split(";") for field in fields]


def transform_with(sample, transformers):
    """Apply ``transformers[i]`` to ``sample[i]``; missing or None transformers keep the value."""
    if transformers is None or len(transformers) == 0:
        return sample
    if len(transformers) > len(sample):
        raise ValueError(f"transform_with: {len(transformers)} transformers for {len(sample)} values")
    result = list(sample)
    for i, f in enumerate(transformers):
        if f is not None:
            result[i] = f(sample[i])
    return result


class _StageFactory(RestCurried):
    # Like pipelinefilter(f), but each call builds a stage object that keeps state across passes.
    def __init__(self, f, stage):
        super().__init__(f)
        self.stage = stage
        functools.update_wrapper(self, f)

    def __call__(self, *args, **kw):
        return self.stage(*args, **kw)
