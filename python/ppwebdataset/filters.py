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
"""

from __future__ import annotations

import functools
import importlib
import io
import itertools
import operator
import os
import pickle
import random
import re
import sys
import types
from fnmatch import fnmatch
from functools import reduce

import numpy as np

from . import _settings, utils
from .errors import DecodingError, UnsafeOperationError  # noqa: F401 - importable from here
from .handlers import reraise_exception
from .utils import PipelineStage, make_seed

# ---------------------------------------------------------------------------
# Currying helpers
# ---------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------
# Error context
# ---------------------------------------------------------------------------


def _where(sample):
    if not isinstance(sample, dict):
        return ""
    parts = []
    key = sample.get("__key__")
    if key is not None:
        parts.append(f"__key__={key!r}")
    url = sample.get("__url__")
    if url is not None:
        parts.append(f"__url__={url!r}")
    return ", ".join(parts)


def _annotate(exn, stage, sample):
    """Add the stage and the sample's key/URL to an exception's message (once)."""
    where = _where(sample)
    if not where or isinstance(exn, DecodingError) or getattr(exn, "_ppwds_where", None):
        return exn
    text = f"in {stage}, sample {where}"
    try:
        exn._ppwds_where = text
    except AttributeError:  # exceptions with __slots__
        return exn
    args = exn.args
    # Only rewrite plain one-message exceptions; others render args their own way.
    if len(args) == 1 and isinstance(args[0], str) and not isinstance(exn, OSError | UnicodeError):
        exn.args = (f"{args[0]} [{text}]",)
    else:
        exn.add_note(text)
    return exn


def _handle(handler, exn, stage, sample):
    return handler(_annotate(exn, stage, sample))


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


class _StageFactory(RestCurried):
    # Like pipelinefilter(f), but each call builds a stage object that keeps state across passes.
    def __init__(self, f, stage):
        super().__init__(f)
        self.stage = stage
        functools.update_wrapper(self, f)

    def __call__(self, *args, **kw):
        return self.stage(*args, **kw)


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


def _decode(data, /, *args, handler=reraise_exception, **kw):
    """Decode dict samples with ``autodecode.Decoder``; string arguments are image specs ("rgb8")."""
    from .autodecode import Decoder

    handlers = [_image_handler(x) if isinstance(x, str) else x for x in args]
    f = Decoder(handlers, **kw)
    for sample in data:
        try:
            if not isinstance(sample, dict):
                raise TypeError(f"decode expects dict samples, got {type(sample).__name__}")
            decoded = f(sample)
        except Exception as exn:
            if _handle(handler, exn, "decode", sample):
                continue
            break
        yield decoded


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
    for sample in data:
        try:
            result = f(sample)
        except Exception as exn:
            if _handle(handler, exn, "map", sample):
                continue
            break
        if result is None:
            continue
        if isinstance(sample, dict) and isinstance(result, dict) and "__key__" in sample:
            result["__key__"] = sample["__key__"]
        yield result


map = pipelinefilter(_map)


def _listify(v):
    return v.split(";") if isinstance(v, str) else v


def _rename(data, /, handler=reraise_exception, keep=True, **kw):
    """Rename fields: ``rename(image="jpg;png")``; the first present alternative wins.

    With ``keep=True`` other fields are kept (the renamed sources removed);
    otherwise only the new fields remain.
    """
    replaced = {x for v in kw.values() for x in _listify(v)}
    for sample in data:
        try:
            if not keep:
                result = {k: getfirst(sample, v, missing_is_error=True) for k, v in kw.items()}
            else:
                result = {k: v for k, v in sample.items() if k not in replaced}
                result.update({k: getfirst(sample, v, missing_is_error=True) for k, v in kw.items()})
        except Exception as exn:
            if _handle(handler, exn, "rename", sample):
                continue
            break
        yield result


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
    for sample in data:
        try:
            if not isinstance(sample, dict):
                raise TypeError(f"map_dict expects dict samples, got {type(sample).__name__}")
            for k, f in items:
                sample[k] = f(sample[k])
        except Exception as exn:
            if _handle(handler, exn, "map_dict", sample):
                continue
            break
        yield sample


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

    for sample in data:
        try:
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
        except Exception as exn:
            if _handle(handler, exn, "to_tuple", sample):
                continue
            break
        yield result


to_tuple = pipelinefilter(_to_tuple)


def _map_tuple(data, *args, handler=reraise_exception):
    """Apply ``args[i]`` to field ``i`` of tuple samples (None keeps the field)."""
    fs = [f if f is not None else identity for f in args]
    for f in fs:
        if not callable(f):
            raise TypeError(f"map_tuple: {f!r} is not callable")
    for sample in data:
        try:
            if not isinstance(sample, list | tuple):
                raise TypeError(f"map_tuple expects tuple samples, got {type(sample).__name__}")
            sample = list(sample)
            for i in range(min(len(fs), len(sample))):
                sample[i] = fs[i](sample[i])
        except Exception as exn:
            if _handle(handler, exn, "map_tuple", sample):
                continue
            break
        yield tuple(sample)


map_tuple = pipelinefilter(_map_tuple)


# ---------------------------------------------------------------------------
# Batching
# ---------------------------------------------------------------------------

_SCALARS = (int, float, np.number, np.bool_)


def _tensor_module(x):
    # Paddle/torch are only looked up if already imported: a tensor implies its module.
    for name in ("paddle", "torch"):
        mod = sys.modules.get(name)
        if mod is not None:
            tensor = getattr(mod, "Tensor", None)
            if tensor is not None and isinstance(x, tensor):
                return mod
    return None


def _field_name(name):
    return "" if name is None else f" {name!r}"


def _check_shapes(b, name, kind):
    shape = tuple(b[0].shape)
    for x in b:
        if tuple(x.shape) != shape:
            shapes = sorted({tuple(y.shape) for y in b})
            raise ValueError(
                f"cannot collate field{_field_name(name)}: {kind} shapes differ {shapes}; "
                "resize or pad them, or batch with collation_fn=None (listed)"
            )


def combine_values(b, combine_tensors=True, combine_scalars=True, name=None, nested=False):
    """Collate one field's values.

    int/float/NumPy scalars → ``np.array``; ndarrays → stacked ``np.array``;
    Paddle tensors → ``paddle.stack``; torch tensors → ``torch.stack``; dicts
    → a list of dicts, or with ``nested=True`` a dict of collated fields;
    anything else → a list. Arrays and tensors must share a shape, and
    scalars, arrays and tensors must not be mixed with other types: both
    raise ValueError naming the field.
    """
    b = list(b)
    first = b[0]
    if isinstance(first, _SCALARS):
        if not combine_scalars:
            return b
        try:
            arr = np.array(b)
        except (ValueError, TypeError):
            arr = None
        # Non-scalars turn the result into an object/str array (or fail): check only then.
        if arr is None or arr.ndim != 1 or arr.dtype.kind in "OUSV":
            if not all(isinstance(x, _SCALARS) for x in b):
                raise ValueError(
                    f"cannot collate field{_field_name(name)}: mixed scalar and "
                    f"{sorted({type(x).__name__ for x in b})} values"
                )
        return arr
    if isinstance(first, np.ndarray):
        shape = first.shape
        for x in b:
            if not isinstance(x, np.ndarray):
                raise ValueError(
                    f"cannot collate field{_field_name(name)}: mixed ndarray and "
                    f"{sorted({type(x).__name__ for x in b})} values"
                )
            if x.shape != shape:
                _check_shapes(b, name, "array")
        return np.stack(b) if combine_tensors else b
    if isinstance(first, dict):
        if not nested:
            return b
        if not all(isinstance(x, dict) for x in b):
            raise ValueError(f"cannot collate field{_field_name(name)}: mixed dict and other values")
        return _collate_dicts(b, combine_tensors, combine_scalars, prefix=name, nested=True)
    mod = _tensor_module(first)
    if mod is not None:
        if not all(isinstance(x, mod.Tensor) for x in b):
            raise ValueError(f"cannot collate field{_field_name(name)}: mixed {mod.__name__} tensors and other values")
        if not combine_tensors:
            return b
        _check_shapes(b, name, f"{mod.__name__} tensor")
        return mod.stack(b)
    return b


def _collate_dicts(rows, combine_tensors, combine_scalars, prefix=None, nested=False):
    keys = list(rows[0].keys())
    keyset = set(keys)
    for row in rows[1:]:
        if row.keys() != keyset:
            raise ValueError(
                f"cannot collate{_field_name(prefix)}: samples have different keys "
                f"{sorted(str(k) for k in keyset)} vs {sorted(str(k) for k in row.keys())}"
            )
    result = {}
    for k in keys:
        name = k if prefix is None else f"{prefix}.{k}"
        result[k] = combine_values([row[k] for row in rows], combine_tensors, combine_scalars, name=name, nested=nested)
    return result


def tuple2dict(sample):
    """``(a, b)`` → ``{0: a, 1: b}``; dicts pass through."""
    if isinstance(sample, dict):
        return sample
    return dict(enumerate(sample))


def dict2tuple(d):
    """``{0: a, 1: b}`` → ``(a, b)``."""
    return tuple(d[i] for i in range(1 + max(d.keys())))


def default_collation_fn(samples, combine_tensors=True, combine_scalars=True, nested=False):
    """Make a batch from a list of samples (tuples/lists or dicts).

    Tuple samples give a list of collated columns (as ppwebdataset 0.2.86), or a
    tuple of lists when neither ``combine_*`` flag is set (as webdataset 1.0.2);
    dict samples give a dict of collated fields; bare values (e.g. a label
    per sample) are collated as one column. A field whose values are dicts
    (say decoded ``.json``) becomes a list of dicts, as upstream, unless
    ``nested=True``, which collates it field by field into a dict of columns
    (``nested_collation_fn``). See ``combine_values`` for each column.
    """
    samples = list(samples)
    if not samples:
        raise ValueError("cannot collate an empty batch")
    first = samples[0]
    if isinstance(first, dict):
        if not all(isinstance(s, dict) for s in samples):
            raise ValueError("cannot collate a batch that mixes dict and non-dict samples")
        return _collate_dicts(samples, combine_tensors, combine_scalars, nested=nested)
    if isinstance(first, list | tuple):
        n = len(first)
        for s in samples:
            if not isinstance(s, list | tuple) or len(s) != n:
                raise ValueError(
                    f"cannot collate: samples must all be tuples of length {n}, got "
                    f"{type(s).__name__} of length {len(s) if hasattr(s, '__len__') else '?'}"
                )
        columns = [
            combine_values(col, combine_tensors, combine_scalars, name=i, nested=nested)
            for i, col in enumerate(zip(*samples, strict=True))
        ]
        # Without any combining, webdataset 1.0.2 gives a tuple of lists; code written
        # for it compares batches with tuples, so match it there.
        return tuple(columns) if not (combine_tensors or combine_scalars) else columns
    # Bare values (a scalar, array or tensor per sample) form a single column.
    return combine_values(samples, combine_tensors, combine_scalars, nested=nested)


def nested_collation_fn(samples, combine_tensors=True, combine_scalars=True):
    """``default_collation_fn`` with ``nested=True``: dict values become dicts of batched columns."""
    return default_collation_fn(samples, combine_tensors, combine_scalars, nested=True)


def _batched(data, batchsize=20, collation_fn=default_collation_fn, partial=True):
    """Group samples into batches of ``batchsize`` and collate them.

    ``collation_fn=None`` yields plain lists. The last, smaller batch is kept
    when ``partial``. A batch is emitted as soon as it is full.
    """
    if batchsize < 1:
        raise ValueError(f"batched: batchsize must be >= 1, got {batchsize}")
    batch = []
    for sample in data:
        batch.append(sample)
        if len(batch) >= batchsize:
            yield collation_fn(batch) if collation_fn is not None else batch
            batch = []
    if batch and (partial or len(batch) == batchsize):
        yield collation_fn(batch) if collation_fn is not None else batch


batched = pipelinefilter(_batched)


def _listed(data, batchsize=20, partial=True):
    """Group samples into plain lists of ``batchsize`` (no collation)."""
    return _batched(data, batchsize=batchsize, collation_fn=None, partial=partial)


listed = pipelinefilter(_listed)


def _unlisted(data):
    """Flatten lists of samples back into samples."""
    for batch in data:
        if not isinstance(batch, list | tuple):
            raise TypeError(f"unlisted expects lists of samples, got {type(batch).__name__}")
        yield from batch


unlisted = pipelinefilter(_unlisted)


def _batch_len(batch, where="batch"):
    if isinstance(batch, dict):
        lengths = {k: _batch_len(v, f"{where}.{k}") for k, v in batch.items()}
        if not lengths:
            raise ValueError(f"cannot unbatch an empty dict ({where})")
        distinct = set(lengths.values())
        if len(distinct) != 1:
            raise ValueError(f"cannot unbatch {where}: fields have different lengths {lengths}")
        return distinct.pop()
    return len(batch)


def _unbatch_dict(batch, i):
    return {k: _unbatch_dict(v, i) if isinstance(v, dict) else v[i] for k, v in batch.items()}


def _unbatched(data):
    """Turn collated batches (tuples/lists of columns, or dicts) back into samples."""
    for batch in data:
        if isinstance(batch, dict):
            n = _batch_len(batch)
            for i in range(n):
                yield _unbatch_dict(batch, i)
        elif isinstance(batch, list | tuple):
            if len(batch) == 0:
                continue
            lengths = [len(col) for col in batch]
            if len(set(lengths)) != 1:
                raise ValueError(f"cannot unbatch: columns have different lengths {lengths}")
            for i in range(lengths[0]):
                yield tuple(col[i] for col in batch)
        else:
            raise ValueError(f"cannot unbatch a {type(batch).__name__}; expected a tuple, list or dict batch")


unbatched = pipelinefilter(_unbatched)


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


# ---------------------------------------------------------------------------
# Caching stages
# ---------------------------------------------------------------------------


class Cached(PipelineStage):
    """Stage: remember the first complete pass in memory and replay it afterwards.

    A pass that stops early is not cached. Each process (DataLoader worker)
    keeps its own cache of the samples it saw.
    """

    def __init__(self):
        super().__init__()
        self.cached = None

    def run(self, source):
        if self.cached is not None:
            yield from self.cached
            return
        temp = []
        for sample in source:
            temp.append(sample)
            yield sample
        self.cached = temp


_LMDB_ENVS: dict[str, object] = {}


class LMDBCached(PipelineStage):
    """Stage: cache a complete pass in an LMDB database and replay it on later runs.

    Samples are stored with ``pickler.dumps`` and read back with
    ``pickler.loads`` (``pickle`` by default): choosing this stage means
    trusting the database file, since unpickling can run code. Keep it in a
    directory only you can write to. Needs the optional ``lmdb`` package.

    Entries are keyed by rank, worker and position (not by ``__key__``, which
    repeats across shards), so each DataLoader worker caches and replays its
    own part, in the original order. The database is opened in the process
    that iterates, so the stage can be sent to workers.
    """

    def __init__(self, fname, map_size=1e12, pickler=pickle, chunksize=500):
        try:
            import lmdb  # noqa: F401
        except ImportError as exn:
            raise ImportError("LMDBCached needs the optional 'lmdb' package: pip install lmdb") from exn
        self.fname = os.fspath(fname)
        self.map_size = int(map_size)
        self.pickler = pickler
        self.chunksize = chunksize
        self._db = None
        self._pid = None

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_db"] = None
        state["_pid"] = None
        if isinstance(self.pickler, types.ModuleType):  # modules do not pickle; their names do
            state["pickler"] = ("module", self.pickler.__name__)
        return state

    def __setstate__(self, state):
        pickler = state.get("pickler")
        if isinstance(pickler, tuple) and len(pickler) == 2 and pickler[0] == "module":
            state["pickler"] = importlib.import_module(pickler[1])
        self.__dict__.update(state)

    @property
    def db(self):
        """The LMDB environment of this process (opened on first use)."""
        import lmdb

        pid = os.getpid()
        if self._db is None or self._pid != pid:
            # LMDB allows one open environment per file and process: share it.
            where = (os.path.realpath(self.fname), pid)
            env = _LMDB_ENVS.get(where)
            if env is None:
                env = lmdb.open(self.fname, readonly=False, map_size=self.map_size, subdir=True, lock=True)
                _LMDB_ENVS[where] = env
            self._db, self._pid = env, pid
        return self._db

    @staticmethod
    def _prefix():
        rank, world, worker, nworkers = utils.paddle_worker_info()
        return f"{world}.{rank}.{nworkers}.{worker}:".encode()

    def is_complete(self):
        """True when this rank/worker's part has been stored completely."""
        with self.db.begin(write=False) as txn:
            return txn.get(b"_" + self._prefix()) is not None

    def add_samples(self, samples):
        """Store ``(key, sample)`` pairs (keys are ``str``)."""
        with self.db.begin(write=True) as txn:
            for key, sample in samples:
                txn.put(key.encode(), self.pickler.dumps(sample))

    def run(self, source):
        prefix = self._prefix()
        if self.is_complete():
            with self.db.begin(write=False) as txn:
                cursor = txn.cursor()
                if cursor.set_range(prefix):
                    for key, value in cursor:
                        if not key.startswith(prefix):
                            break
                        yield self.pickler.loads(value)
            return
        self._clear(prefix)
        buffer = []
        for i, sample in enumerate(source):
            buffer.append((f"{prefix.decode()}{i:012d}", sample))
            if len(buffer) >= self.chunksize:
                self.add_samples(buffer)
                buffer = []
            yield sample
        if buffer:
            self.add_samples(buffer)
        with self.db.begin(write=True) as txn:
            txn.put(b"_" + prefix, b"1")

    def _clear(self, prefix):
        # Entries of an earlier, interrupted pass must not be replayed.
        with self.db.begin(write=True) as txn:
            cursor = txn.cursor()
            if cursor.set_range(prefix):
                while cursor.key().startswith(prefix):
                    if not cursor.delete():
                        break

    def close(self):
        """Close the database (it reopens on the next use)."""
        if self._db is not None:
            for where, env in list(_LMDB_ENVS.items()):
                if env is self._db:
                    del _LMDB_ENVS[where]
            self._db.close()
            self._db = None


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
