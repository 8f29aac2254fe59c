"""Per-sample error handling of the filters: annotate the error, ask the handler.

Private: re-exported by ``ppwebdataset.filters`` (see ``_curry``).
"""

from __future__ import annotations

from .errors import DecodingError


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


def _each(data, step, handler, stage, *, keep_key=False):
    """``step(sample)`` for each sample: the one per-sample loop of the stages with a ``handler``.

    An exception from ``step`` is annotated with ``stage`` and the sample's key/URL and
    handed to ``handler``: True skips the sample, False ends the stream, a raise propagates.
    A None result drops the sample. ``keep_key`` gives a dict result the input's ``__key__``
    (``map``'s rule); it is a flag rather than a wrapper so the hot loop stays one call deep.
    Returns (to ``yield from``) False when the handler ended the stream, else True.
    """
    for sample in data:
        try:
            result = step(sample)
        except Exception as exn:
            if _handle(handler, exn, stage, sample):
                continue
            return False
        if result is None:
            continue
        if keep_key and isinstance(sample, dict) and isinstance(result, dict) and "__key__" in sample:
            result["__key__"] = sample["__key__"]
        yield result
    return True
