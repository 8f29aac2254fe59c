"""Samples from shards that are streams of concatenated CBOR items.

Each item in a shard is one sample, yielded as decoded. ``cbors_to_samples``
and ``cbors2_to_samples`` are pipeline stages taking shard descriptions
(``{"url": ...}`` dicts, as produced by the shard lists, or plain URL strings);
every shard is read to its end. Both decode with ``cbor2`` (``cbors_to_samples``
falls back to the older ``cbor`` package when cbor2 is missing).

A shard that is cut in the middle of an item raises an error naming the URL;
the ``handler`` decides what happens next (True: go on with the next shard,
False: stop, raise: propagate).
"""

from __future__ import annotations

import functools

from .gopen import gopen
from .handlers import reraise_exception
from .tariterators import url_opener  # noqa: F401 - part of the 0.2.86 module namespace


class _Stage:
    # A module-level curried stage (picklable for spawned workers).
    def __init__(self, f, args, kw):
        self.f, self.args, self.kw = f, args, kw

    def __call__(self, src):
        return self.f(src, *self.args, **self.kw)


class _StageFactory:
    # inspect.signature() follows __wrapped__, so the factory shows f's parameters.
    def __init__(self, f):
        self.f = f
        functools.update_wrapper(self, f)

    def __call__(self, *args, **kw):
        return _Stage(self.f, args, kw)


class _Peekable:
    """Adds ``peek`` to streams that lack it, so a clean end can be told from a cut item."""

    def __init__(self, stream):
        self.stream = stream
        self.head = b""

    def readable(self):
        return True

    def seekable(self):
        return False

    def peek(self, n=1):
        if not self.head:
            self.head = self.stream.read(max(n, 1 << 16)) or b""
        return self.head

    def read(self, n=-1):
        if self.head:
            if n is None or n < 0:
                data, self.head = self.head + (self.stream.read() or b""), b""
                return data
            if n <= len(self.head):
                data, self.head = self.head[:n], self.head[n:]
                return data
            data, self.head = self.head, b""
            return data + (self.stream.read(n - len(data)) or b"")
        return self.stream.read(n)


def _shard_url(source):
    if isinstance(source, str):
        return source
    if isinstance(source, dict) and "url" in source:
        return source["url"]
    raise ValueError(f"expected a shard URL or a dict with 'url', got {source!r}")


def _load_function(prefer_v1):
    if prefer_v1:
        try:
            import cbor

            return cbor.load, EOFError
        except ImportError:
            pass
    try:
        import cbor2
    except ImportError as exn:
        raise ImportError("CBOR shards need the cbor2 package: pip install cbor2") from exn
    return cbor2.load, cbor2.CBORDecodeEOF


def _items(stream, url, load, eof_error):
    if not hasattr(stream, "peek"):
        stream = _Peekable(stream)
    count = 0
    while stream.peek(1):
        try:
            item = load(stream)
        except eof_error as exn:
            raise ValueError(f"CBOR shard {url!r} ends inside item {count}") from exn
        except Exception as exn:
            raise ValueError(f"cannot decode item {count} of CBOR shard {url!r}: {exn}") from exn
        count += 1
        yield item


def _cbor_iterator(data, handler, prefer_v1):
    load, eof_error = _load_function(prefer_v1)
    for source in data:
        url = None
        stream = None
        try:
            url = _shard_url(source)
            stream = source.get("stream") if isinstance(source, dict) else None
            owned = stream is None
            if owned:
                stream = gopen(url, "rb")
            try:
                yield from _items(stream, url, load, eof_error)
            finally:
                if owned:
                    stream.close()
        except Exception as exn:
            exn.args = exn.args + (url,)
            if handler(exn):
                continue
            break


def cbor_iterator(data, handler=reraise_exception, info=None):
    """Yield every CBOR item of every shard in ``data`` (cbor package if present, else cbor2)."""
    return _cbor_iterator(data, handler, prefer_v1=True)


def cbor2_iterator(data, handler=reraise_exception, info=None):
    """Yield every CBOR item of every shard in ``data``, decoded with cbor2."""
    return _cbor_iterator(data, handler, prefer_v1=False)


def cbors_samples(src, handler=reraise_exception):
    """Samples from the CBOR shards listed by ``src``."""
    return cbor_iterator(src, handler=handler)


def cbors2_samples(src, handler=reraise_exception):
    """Samples from the CBOR shards listed by ``src``, decoded with cbor2."""
    return cbor2_iterator(src, handler=handler)


cbors_to_samples = _StageFactory(cbors_samples)
cbors2_to_samples = _StageFactory(cbors2_samples)

__all__ = [
    "cbor2_iterator",
    "cbor_iterator",
    "cbors2_samples",
    "cbors2_to_samples",
    "cbors_samples",
    "cbors_to_samples",
]
