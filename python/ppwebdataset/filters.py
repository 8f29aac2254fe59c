"""Pipeline filters: the stages between a sample source and the training loop.

Each public filter is a factory: ``wds.map(f)`` returns a stage that takes the
previous iterator, so stages can be listed in ``DataPipeline(...)`` or added
with the fluent methods. The plain iterator functions are available under the
same names with a leading underscore (``_map(data, f)``), as upstream.

Differences from ppwebdataset 0.2.86 / webdataset 1.0.2 that callers can see:

* Errors passed to a ``handler`` name the sample (``__key__``, ``__url__``).
* ``shuffle(seed=...)`` is reproducible (0.2.86 ignored the seed) and varies
  from pass to pass; ``detshuffle`` seeds with ``seed + epoch``, the same in every process.
  Both run in a Rust buffer whose order does not depend on ``PYTHONHASHSEED``.
* ``batched`` emits a batch as soon as it is full; ``default_collation_fn``
  collates dict (and nested dict) samples, NumPy scalars, Paddle and torch
  tensors, and names the field when shapes or types do not match.
* ``xdecode`` does not unpickle ``.pyd`` unless ``PPWDS_ALLOW_PICKLE=1``.

Layout: the per-sample stages and ``xdecode`` are defined here; the currying helpers
(``pipelinefilter``, ``compose``, ...) in ``_curry``, the shuffles in ``_shuffles``,
batching and collation in ``_collate``, ``Cached``/``LMDBCached`` in ``_cachestages``, and
the per-sample error rule (annotate, ask the handler) in ``_handling``. All of them are
importable, pickled and shown as ``ppwebdataset.filters.<name>``.
"""

from __future__ import annotations

import functools
import importlib
import io
import itertools
import operator
import os  # noqa: F401 - attributes of this module before the split: os, reduce, np, utils
import pickle
import random
import re
import sys
import types
from fnmatch import fnmatch
from functools import reduce  # noqa: F401

import numpy as np  # noqa: F401

# The stages live in private modules along this file's former sections; every name stays
# importable from here (see _rehome below). The per-sample stages and xdecode stay in this file.
from . import _cachestages, _collate, _curry, _handling, _settings, _shuffles, utils  # noqa: F401
from ._cachestages import _LMDB_ENVS, Cached, LMDBCached  # noqa: F401
from ._collate import (  # noqa: F401
    _SCALARS,
    _batch_len,
    _batched,
    _check_shapes,
    _collate_dicts,
    _field_name,
    _listed,
    _tensor_module,
    _unbatch_dict,
    _unbatched,
    _unlisted,
    batched,
    combine_values,
    default_collation_fn,
    dict2tuple,
    listed,
    nested_collation_fn,
    tuple2dict,
    unbatched,
    unlisted,
)
from ._curry import (  # noqa: F401
    FilterFunction,
    RestCurried,
    _Composed,
    _StageFactory,
    compose,
    compose2,
    getfirst,
    identity,
    parse_field_spec,
    pipeline,
    pipelinefilter,
    transform_with,
)
from ._handling import _annotate, _each, _handle, _where  # noqa: F401
from ._shuffles import (  # noqa: F401
    _CHUNK,
    Shuffle,
    _next_or_handle,
    _random_seed,
    _seed64,
    _shuffle,
    _shuffle_python,
    _shuffle_rust,
    detshuffle,
    pick,
    shuffle,
)
from .errors import DecodingError, UnsafeOperationError  # noqa: F401 - importable from here
from .handlers import reraise_exception
from .utils import PipelineStage, make_seed


def _rehome(namespace, modules):
    # Classes, functions and stage factories moved out of this file keep "ppwebdataset.filters"
    # as their __module__: pickles (DataLoader workers) and reprs name the old home, and
    # pickles written before the split still load.
    names = {m.__name__ for m in modules}
    for value in namespace.values():
        if not isinstance(value, types.ModuleType) and getattr(value, "__module__", None) in names:
            value.__module__ = __name__


_rehome(globals(), (_cachestages, _collate, _curry, _handling, _shuffles))

# ---------------------------------------------------------------------------
# Iterators
# ---------------------------------------------------------------------------


def _info(data, fmt=None, n=3, every=-1, width=50, stream=sys.stderr, name=""):
    """Print the first ``n`` samples (and every ``every``-th) while passing everything through."""
    for i, sample in enumerate(data):
        if i < n or (every > 0 and (i + 1) % every == 0):
            if fmt is None:
                print("---", name, file=stream)
                for k, v in sample.items():
                    print(k, repr(v)[:width], file=stream)
            else:
                print(fmt.format(**sample), file=stream)
        yield sample


info = pipelinefilter(_info)


def _select(data, predicate):
    """Keep the samples for which ``predicate(sample)`` is true."""
    for sample in data:
        if predicate(sample):
            yield sample


select = pipelinefilter(_select)


def _log_keys(data, logfile=None):
    """Append ``index, __worker__, __rank__, __key__`` lines to ``logfile`` (if given)."""
    if logfile is None or logfile == "":
        yield from data
        return
    from . import _locks  # not POSIX: no lock, but lines are short appends anyway

    with open(logfile, "a") as stream:
        for i, sample in enumerate(data):
            line = f"{i}\t{sample.get('__worker__')}\t{sample.get('__rank__')}\t{sample.get('__key__')}\n"
            with _locks.holding(stream.fileno()):
                stream.write(line)
                stream.flush()
            yield sample


log_keys = pipelinefilter(_log_keys)


def _image_handler(spec):
    autodecode = importlib.import_module(".autodecode", __package__)
    make = getattr(autodecode, "ImageHandler", None) or autodecode.imagehandler
    return make(spec)


def _decoder(args, **kw):
    # The Decoder of decode(*args, pre=, post=, only=, partial=): strings are image specs.
    from .autodecode import Decoder

    return Decoder([_image_handler(x) if isinstance(x, str) else x for x in args], **kw)


def _decode(data, /, *args, handler=reraise_exception, **kw):
    """Decode dict samples with ``autodecode.Decoder``; string arguments are image specs ("rgb8")."""
    f = _decoder(args, **kw)

    def one(sample):
        if not isinstance(sample, dict):
            raise TypeError(f"decode expects dict samples, got {type(sample).__name__}")
        return f(sample)

    yield from _each(data, one, handler, "decode")


_NATIVE_ONLY = ("resize", "crop", "random_crop", "seed", "threads", "filter", "window")


class _DecodeFactory(RestCurried):
    # decode(spec, native=True, ...) builds the native image stage (a stage object: it counts
    # passes for random crops); without native it is the plain decode filter.
    def __call__(self, *args, native=False, **kw):
        if native:
            from ._native_image import NativeDecode

            return NativeDecode(*args, native=native, **kw)
        extra = [k for k in _NATIVE_ONLY if k in kw]
        if extra:
            raise TypeError(f"decode: {', '.join(extra)} only apply with native=True")
        unknown = sorted(set(kw) - {"pre", "post", "only", "partial", "handler"})
        if unknown:
            raise TypeError(f"decode() got unexpected keyword arguments: {', '.join(unknown)}")
        return super().__call__(*args, **kw)


decode = _DecodeFactory(_decode)
functools.update_wrapper(decode, _decode)


def _map(data, f, handler=reraise_exception):
    """Apply ``f`` to each sample; None results are dropped, dict results keep the input's ``__key__``."""
    return _each(data, f, handler, "map", keep_key=True)  # no wrapping generator: map is the hot stage


map = pipelinefilter(_map)


def _listify(v):
    return v.split(";") if isinstance(v, str) else v


def _rename(data, /, handler=reraise_exception, keep=True, **kw):
    """Rename fields: ``rename(image="jpg;png")``; the first present alternative wins.

    With ``keep=True`` other fields are kept (the renamed sources removed);
    otherwise only the new fields remain.
    """
    replaced = {x for v in kw.values() for x in _listify(v)}

    def one(sample):
        if not keep:
            return {k: getfirst(sample, v, missing_is_error=True) for k, v in kw.items()}
        result = {k: v for k, v in sample.items() if k not in replaced}
        result.update({k: getfirst(sample, v, missing_is_error=True) for k, v in kw.items()})
        return result

    yield from _each(data, one, handler, "rename")


rename = pipelinefilter(_rename)


def _associate(data, /, associator, **kw):
    """Merge extra fields into each sample: ``associator(key)`` or ``associator.get(key, {})``."""
    for sample in data:
        if callable(associator):
            extra = associator(sample["__key__"])
        else:
            extra = associator.get(sample["__key__"], {})
        sample.update(extra)  # in place, as upstream
        yield sample


associate = pipelinefilter(_associate)


def _map_dict(data, /, handler=reraise_exception, **kw):
    """Apply per-field functions: ``map_dict(jpg=f, cls=g)`` (in place)."""
    if not kw:
        raise ValueError("map_dict needs at least one field=function argument")
    for key, f in kw.items():
        if not callable(f):
            raise TypeError(f"map_dict: {key}={f!r} is not callable")
    items = list(kw.items())

    def one(sample):
        if not isinstance(sample, dict):
            raise TypeError(f"map_dict expects dict samples, got {type(sample).__name__}")
        for k, f in items:
            sample[k] = f(sample[k])
        return sample

    yield from _each(data, one, handler, "map_dict")


map_dict = pipelinefilter(_map_dict)


def _to_tuple(data, *args, handler=reraise_exception, missing_is_error=True, none_is_error=None):
    """Turn dict samples into tuples: ``to_tuple("jpg;png", "cls")`` or ``to_tuple("jpg;png cls")``.

    A missing field raises (``missing_is_error``) or gives None; a None value
    raises when ``none_is_error`` (default: same as ``missing_is_error``).
    """
    if none_is_error is None:
        none_is_error = missing_is_error
    if len(args) == 1 and isinstance(args[0], str) and " " in args[0]:
        args = args[0].split()
    fields = []
    for f in args:
        if isinstance(f, str):
            if " " in f:
                raise ValueError(f"to_tuple: field spec {f!r} contains a space")
            fields.append(f.split(";"))
        else:
            fields.append(list(f))
    # Fast path: one name per field, looked up in C; misses fall back to the general loop.
    simple = None
    if fields and all(len(alts) == 1 for alts in fields):
        names = [alts[0] for alts in fields]
        getter = operator.itemgetter(*names)
        simple = getter if len(names) > 1 else (lambda s, _g=getter: (_g(s),))

    def general(sample):
        result = []
        for alts in fields:
            for k in alts:
                if k in sample:
                    result.append(sample[k])
                    break
            else:
                if missing_is_error:
                    raise ValueError(f"to_tuple: didn't find {alts} in {list(sample.keys())}")
                result.append(None)
        return tuple(result)

    def one(sample):
        result = None
        if simple is not None:
            try:
                result = simple(sample)
            except (KeyError, TypeError):
                result = None
        if result is None:
            result = general(sample)
        if none_is_error:
            for x in result:
                if x is None:
                    raise ValueError(f"to_tuple {args} got None values for sample keys {list(sample.keys())}")
        return result

    yield from _each(data, one, handler, "to_tuple")


to_tuple = pipelinefilter(_to_tuple)


def _map_tuple(data, *args, handler=reraise_exception):
    """Apply ``args[i]`` to field ``i`` of tuple samples (None keeps the field)."""
    fs = [f if f is not None else identity for f in args]
    for f in fs:
        if not callable(f):
            raise TypeError(f"map_tuple: {f!r} is not callable")

    def one(sample):
        if not isinstance(sample, list | tuple):
            raise TypeError(f"map_tuple expects tuple samples, got {type(sample).__name__}")
        result = list(sample)
        for i in range(min(len(fs), len(result))):
            result[i] = fs[i](result[i])
        return tuple(result)

    yield from _each(data, one, handler, "map_tuple")


map_tuple = pipelinefilter(_map_tuple)


def _rsample(data, p=0.5, seed=None):
    """Keep each sample with probability ``p``.

    Uses its own generator (seeded from ``seed``, else from ``os.urandom``),
    not the global ``random`` shared by forked workers.
    """
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"rsample: p must be in [0, 1], got {p}")
    rng = random.Random(_random_seed() if seed is None else make_seed(seed))
    draw = rng.random
    for sample in data:
        if draw() < p:
            yield sample


rsample = pipelinefilter(_rsample)

slice = pipelinefilter(itertools.islice)


def _extract_keys(source, *patterns, duplicate_is_error=True, ignore_missing=False):
    """Tuples of the values whose keys match glob patterns (``"*.jpg;*.png"``).

    A pattern matches the key itself or the key with a leading dot.
    """
    for sample in source:
        result = []
        for pattern in patterns:
            pattern = pattern.split(";") if isinstance(pattern, str) else pattern
            matches = [x for x in sample.keys() if any(fnmatch("." + x, p) or fnmatch(x, p) for p in pattern)]
            if len(matches) == 0:
                if ignore_missing:
                    continue
                raise _annotate(
                    ValueError(f"Cannot find {pattern} in sample keys {list(sample.keys())}."),
                    "extract_keys",
                    sample,
                )
            if len(matches) > 1 and duplicate_is_error:
                raise _annotate(
                    ValueError(f"Multiple sample keys {list(sample.keys())} match {pattern}."),
                    "extract_keys",
                    sample,
                )
            result.append(sample[matches[0]])
        yield tuple(result)


extract_keys = pipelinefilter(_extract_keys)


def _rename_keys(source, /, *args, keep_unselected=False, must_match=True, duplicate_is_error=True, **kw):
    """Rename fields by glob patterns on the lower-cased basename: ``rename_keys(image="*.jpg")``.

    Positional arguments are ``(new_name, pattern)`` pairs; later patterns win.
    """
    renamings = [(pattern, output) for output, pattern in args]
    renamings += [(pattern, output) for output, pattern in kw.items()]
    for sample in source:
        new_sample = {}
        matched = {k: False for k, _ in renamings}
        for path, value in sample.items():
            fname = re.sub(r".*/", "", path)
            new_name = None
            for pattern, name in renamings[::-1]:
                if fnmatch(fname.lower(), pattern):
                    matched[pattern] = True
                    new_name = name
                    break
            if new_name is None:
                if keep_unselected:
                    new_sample[path] = value
                continue
            if new_name in new_sample:
                if duplicate_is_error:
                    raise _annotate(
                        ValueError(f"Duplicate value in sample {list(sample.keys())} after rename."),
                        "rename_keys",
                        sample,
                    )
                continue
            new_sample[new_name] = value
        if must_match and not all(matched.values()):
            raise _annotate(
                ValueError(f"Not all patterns ({matched}) matched sample keys ({list(sample.keys())})."),
                "rename_keys",
                sample,
            )
        yield new_sample


rename_keys = pipelinefilter(_rename_keys)

# ---------------------------------------------------------------------------
# xdecode: glob-pattern decoders over file-like values
# ---------------------------------------------------------------------------


def decode_bin(stream):
    """The stream's bytes."""
    return stream.read()


def decode_text(stream):
    """The stream's bytes as UTF-8 text."""
    return stream.read().decode("utf-8")


def decode_pickle(stream):
    """Unpickle the stream -- only when allowed (``PPWDS_ALLOW_PICKLE=1``), since unpickling runs code."""
    _settings.require_pickle("unpickling (.pyd)")
    return pickle.load(stream)


default_decoders = [
    ("*.bin", decode_bin),
    ("*.txt", decode_text),
    ("*.pyd", decode_pickle),
]


def _keep(x):
    return x


def find_decoder(decoders, path):
    """The decoder for ``path``: the last ``(pattern, fn)`` whose glob matches the basename.

    Metadata fields (``__*``) get the identity; no match gives None.
    """
    fname = re.sub(r".*/", "", path)
    if fname.startswith("__"):
        return _keep
    lower = fname.lower()
    for pattern, fun in decoders[::-1]:
        if fnmatch(lower, pattern) or fnmatch("." + lower, pattern):
            return fun
    return None


def _xdecode(source, /, *args, must_decode=True, defaults=default_decoders, **kw):
    """Decode fields with ``(glob, fn)`` pairs; ``fn`` gets a file-like object.

    ``xdecode(("*.png", fn))`` or ``xdecode(png=fn)``; later decoders win, a
    decoder of ``False`` keeps the raw value, and a field without a decoder
    raises unless ``must_decode=False``.
    """
    decoders = list(defaults) + list(args)
    decoders += [("*." + k, v) for k, v in kw.items()]
    for sample in source:
        new_sample = {}
        for path, data in sample.items():
            if path.startswith("__"):
                new_sample[path] = data
                continue
            decoder = find_decoder(decoders, path)
            if decoder is False:
                value = data
            elif decoder is None:
                if must_decode:
                    raise _annotate(ValueError(f"No decoder found for {path}."), "xdecode", sample)
                value = data
            else:
                if isinstance(data, bytes | bytearray | memoryview):
                    data = io.BytesIO(data)
                try:
                    value = decoder(data)
                except Exception as exn:
                    raise _annotate(exn, f"xdecode of {path!r}", sample) from None
            new_sample[path] = value
        yield new_sample


xdecode = pipelinefilter(_xdecode)


def __getattr__(name):
    # Lazy, so that importing the filters does not import Paddle or the decoders.
    if name == "PaddleTensor":
        from .paddle import PaddleTensor

        return PaddleTensor
    if name == "autodecode":
        return importlib.import_module(".autodecode", __package__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "Cached",
    "FilterFunction",
    "LMDBCached",
    "PipelineStage",
    "RestCurried",
    "associate",
    "batched",
    "combine_values",
    "compose",
    "compose2",
    "decode",
    "decode_bin",
    "decode_pickle",
    "decode_text",
    "default_collation_fn",
    "default_decoders",
    "detshuffle",
    "dict2tuple",
    "extract_keys",
    "find_decoder",
    "getfirst",
    "identity",
    "info",
    "listed",
    "log_keys",
    "map",
    "map_dict",
    "map_tuple",
    "nested_collation_fn",
    "parse_field_spec",
    "pick",
    "pipeline",
    "pipelinefilter",
    "rename",
    "rename_keys",
    "reraise_exception",
    "rsample",
    "select",
    "Shuffle",
    "shuffle",
    "slice",
    "to_tuple",
    "transform_with",
    "tuple2dict",
    "unbatched",
    "unlisted",
    "xdecode",
]
