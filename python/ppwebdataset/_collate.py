"""Batching stages and collation: ``batched``, ``listed``, ``unbatched``, ``default_collation_fn``.

Private: re-exported by ``ppwebdataset.filters`` (see ``_curry``).
"""

from __future__ import annotations

import sys

import numpy as np

from ._curry import pipelinefilter

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
