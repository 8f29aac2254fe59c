"""Writing samples to tar shards: :class:`TarWriter` and :class:`ShardWriter`.

A sample is a dict with a ``__key__`` and one entry per member; the member
``<key>.<ext>`` holds the value encoded according to its extension (see
:func:`make_handlers`). Keys starting with ``_`` are metadata: they must be
strings and are only written when ``keep_meta=True``.

The tar records are produced by the native ``TarEncoder``: headers are built
from a per-writer template and members of many samples are handed to the
output stream in large chunks. Output is plain ustar, with a pax header only
for names over 256 bytes (or that cannot be split into ustar prefix and name)
and sizes of 8 GiB or more; Python's ``tarfile`` and GNU tar read it.
"""

from __future__ import annotations

import bz2
import gzip
import io
import itertools
import json
import logging
import lzma
import os
import pickle
import re
import stat
import tarfile
import warnings
from collections.abc import Callable
from typing import IO, Any, Self

import numpy as np

from . import _settings
from ._core import TarEncoder
from .gopen import gopen, local_path, rewrite_url

logger = logging.getLogger(__name__)

_COMPRESSIONS = ("gz", "bz2", "xz")

# Stream types whose write() never keeps a reference to its argument: the
# native encoder may lend them its buffer instead of copying it.
_NON_RETAINING = (
    io.BufferedWriter,
    io.BufferedRandom,
    io.FileIO,
    io.BytesIO,
    gzip.GzipFile,
    bz2.BZ2File,
    lzma.LZMAFile,
)


# ---------------------------------------------------------------------------
# Encoders
# ---------------------------------------------------------------------------

_PIL_FORMATS = {"JPG": "JPEG", "IMG": "PPM", "IMAGE": "PPM", "TIF": "TIFF"}


def imageencoder(image: Any, format: str = "PNG"):
    """Compress an image (PIL image or ndarray) and return the file bytes.

    Float arrays must hold values in [0, 1] and are scaled to uint8. Arrays
    are HxW, HxWx1, HxWx3 or HxWx4. ``format`` is a PIL format name; ``jpg``
    means JPEG and ``img``/``image`` mean PPM. JPEG and WebP are written at
    quality 100.
    """
    import PIL.Image

    if isinstance(image, np.ndarray):
        if image.dtype.kind == "f":
            lo, hi = float(np.amin(image)), float(np.amax(image))
            if lo <= -0.001 or hi >= 1.001:
                raise ValueError(f"image values out of range {lo} {hi}")
            image = (np.clip(image, 0.0, 1.0) * 255.0).astype(np.uint8)
        if image.ndim == 3 and image.shape[2] == 1:
            image = image[:, :, 0]
        if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (3, 4)):
            raise ValueError(f"cannot encode an array of shape {image.shape} as an image")
        image = PIL.Image.fromarray(image)
    elif not isinstance(image, PIL.Image.Image):
        raise TypeError(f"imageencoder needs a PIL image or an ndarray, not {type(image).__name__}")
    fmt = format.upper()
    fmt = _PIL_FORMATS.get(fmt, fmt)
    opts = {"quality": 100} if fmt in ("JPEG", "WEBP") else {}
    with io.BytesIO() as result:
        image.save(result, format=fmt, **opts)
        return result.getvalue()


def bytestr(data: Any):
    """Return ``data`` as bytes: bytes unchanged, anything else via ``str()`` in ASCII."""
    if isinstance(data, bytes):
        return data
    if not isinstance(data, str):
        data = str(data)
    return data.encode("ascii")


def paddle_dumps(data: Any):
    """Serialize ``data`` with ``paddle.save`` (Paddle is imported on first use)."""
    import paddle

    stream = io.BytesIO()
    paddle.save(data, stream)
    return stream.getvalue()


def torch_dumps(data: Any):
    """Serialize ``data`` with ``torch.save``; needs PyTorch installed."""
    try:
        import torch
    except ImportError as exn:
        raise ModuleNotFoundError("torch_dumps needs PyTorch: pip install torch", name="torch") from exn
    stream = io.BytesIO()
    torch.save(data, stream)
    return stream.getvalue()


def numpy_dumps(data: np.ndarray):
    """Serialize an array in NPY format (object arrays are refused: they need pickle to read)."""
    import numpy.lib.format

    data = np.asanyarray(data)
    stream = io.BytesIO()
    numpy.lib.format.write_array(stream, data, allow_pickle=False)
    return stream.getvalue()


def numpy_npz_dumps(data: dict[str, np.ndarray]):
    """Serialize a dict of arrays in compressed NPZ format."""
    if not isinstance(data, dict):
        raise TypeError(f"npz values must be a dict of arrays, not {type(data).__name__}")
    for k, v in data.items():
        if not isinstance(k, str):
            raise TypeError(f"npz keys must be str, not {type(k).__name__}")
        if not isinstance(v, np.ndarray):
            raise TypeError(f"npz value {k!r} must be an ndarray, not {type(v).__name__}")
        if v.dtype.hasobject:
            raise ValueError(f"npz value {k!r} is an object array, which cannot be read without pickle")
    stream = io.BytesIO()
    np.savez_compressed(stream, **data)  # type: ignore[arg-type]  # numpy's stub types **kwds as allow_pickle
    return stream.getvalue()


def tenbin_dumps(x):
    """Serialize an array (or a list of arrays) in tenbin format."""
    from .tenbin import encode_buffer

    return memoryview(encode_buffer(x if isinstance(x, list) else [x]))


def cbor_dumps(x):
    """Serialize ``x`` as CBOR (cbor2, or the older cbor package)."""
    try:
        import cbor2 as cbor
    except ImportError:
        try:
            import cbor
        except ImportError as exn:
            raise ImportError("CBOR encoding needs cbor2: pip install cbor2") from exn
    return cbor.dumps(x)


def mp_dumps(x):
    """Serialize ``x`` with msgpack."""
    import msgpack

    return msgpack.packb(x)


def _int_bytes(x):
    # The native encoder recognises this function and formats plain ints itself.
    return str(x).encode("ascii")


def _text_bytes(x):
    return x.encode("utf-8")


def _json_bytes(x):
    return json.dumps(x).encode("utf-8")


class _ImageEncoder:
    # A class, not a closure, so handler tables pickle.
    def __init__(self, fmt):
        self.fmt = fmt

    def __call__(self, data):
        return imageencoder(data, self.fmt)

    def __repr__(self):
        return f"<image encoder {self.fmt}>"


def add_handlers(d, keys, value):
    """Register ``value`` in ``d`` under each extension in ``keys`` (list or space-separated str)."""
    if isinstance(keys, str):
        keys = keys.split()
    for k in keys:
        d[k] = value


def make_handlers():
    """Return a fresh extension → encoder table (the default encoding)."""
    handlers = {}
    add_handlers(handlers, "cls cls2 class count index inx id", _int_bytes)
    add_handlers(handlers, "txt text transcript", _text_bytes)
    add_handlers(handlers, "html htm", _text_bytes)
    add_handlers(handlers, "pyd pickle pkl", pickle.dumps)
    add_handlers(handlers, "pth pdparams", paddle_dumps)
    add_handlers(handlers, "npy", numpy_dumps)
    add_handlers(handlers, "npz", numpy_npz_dumps)
    add_handlers(handlers, "ten tenbin tb", tenbin_dumps)
    add_handlers(handlers, "json jsn", _json_bytes)
    add_handlers(handlers, "mp msgpack msg", mp_dumps)
    add_handlers(handlers, "cbor", cbor_dumps)
    add_handlers(handlers, "jpg jpeg img image", _ImageEncoder("jpg"))
    for fmt in ("png", "pbm", "pgm", "ppm", "webp"):
        add_handlers(handlers, fmt, _ImageEncoder(fmt))
    add_handlers(handlers, "tiff tif", _ImageEncoder("tiff"))
    return handlers


default_handlers = make_handlers()


def encode_based_on_extension1(data: Any, tname: str, handlers: dict):
    """Encode one value according to its extension ``tname``.

    Metadata (``tname`` starting with ``_``) must be a str and is returned as is.
    bytes pass through, str is UTF-8 encoded, anything else goes through the
    handler for the last extension component. A ``.gz`` suffix gzips the result.
    """
    if tname[0] == "_":
        if not isinstance(data, str):
            raise ValueError("the values of metadata must be of string type")
        return data
    gz = tname.endswith(".gz")
    if gz:
        tname = tname[:-3]
    if isinstance(data, (bytes, bytearray, memoryview)):
        result = bytes(data) if isinstance(data, memoryview) else data
    elif isinstance(data, str):
        result = data.encode("utf-8")
    else:
        extension = re.sub(r".*\.", "", tname).lower()
        handler = handlers.get(extension)
        if handler is None:
            raise ValueError(f"no handler found for {extension}")
        result = handler(data)
    if gz:
        result = gzip.compress(result, mtime=0)
    return result


def encode_based_on_extension(sample: dict, handlers: dict):
    """Encode every value of ``sample`` with :func:`encode_based_on_extension1`."""
    return {k: encode_based_on_extension1(v, k, handlers) for k, v in list(sample.items())}


def _identity(sample):
    return sample


class _TableEncoder:
    # A module-level class (not a closure) so writers' encoders pickle.
    def __init__(self, handlers):
        self.handlers = handlers

    def __call__(self, sample):
        return encode_based_on_extension(sample, self.handlers)


def make_encoder(spec: bool | str | dict | Callable | None):
    """Turn an ``encoder=`` argument into a sample → encoded sample function.

    ``False``/``None``: no encoding; ``True``: the default table; a dict: that
    extension table; a callable: used as is.
    """
    if spec is False or spec is None:
        return _identity
    if callable(spec):
        return spec
    if isinstance(spec, dict):
        return _TableEncoder(spec)
    if spec is True:
        return _TableEncoder(default_handlers)
    raise ValueError(f"{spec}: unknown decoder spec")


# ---------------------------------------------------------------------------
# TarWriter
# ---------------------------------------------------------------------------


def _check_format(format):
    if format is None:
        return tarfile.USTAR_FORMAT
    value = getattr(tarfile, format, None) if isinstance(format, str) else format
    if value not in (tarfile.USTAR_FORMAT, tarfile.GNU_FORMAT, tarfile.PAX_FORMAT):
        raise ValueError(f"unknown tar format {format!r}")
    return value


def _compression(fileobj, compress):
    """Return None, "gz", "bz2" or "xz" for an output and a ``compress=`` argument."""
    if compress is False:
        return None
    if compress is True:
        return "gz"
    if isinstance(compress, str):
        if compress not in _COMPRESSIONS:
            raise ValueError(f"compress={compress!r}: use True, False, 'gz', 'bz2' or 'xz'")
        return compress
    if compress is not None:
        raise ValueError(f"compress={compress!r}: use True, False, 'gz', 'bz2' or 'xz'")
    if isinstance(fileobj, str):
        for kind in _COMPRESSIONS:
            if fileobj.endswith(kind):
                return kind
    return None


_tmp_counter = itertools.count()


def _open_local_temp(url):
    """For a local path (or ``file:`` URL) that is, or will be, a regular file: open a
    temporary ``<name>.tmp-<pid>-<n>`` next to it; returns ``(stream, tmp, final)``.
    None for anything else (stdout, pipes, remote URLs, devices, FIFOs)."""
    if not isinstance(url, str) or url == "-":
        return None
    path = local_path(rewrite_url(url))
    if path is None:
        return None
    if os.path.islink(path):
        path = os.path.realpath(path)  # write through the link, as opening it would
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            return None
    except FileNotFoundError:
        pass
    tmp = f"{path}.tmp-{os.getpid()}-{next(_tmp_counter)}"
    # O_EXCL: never write into someone else's file; mode 0o666 lets the umask decide, as open() does.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o666)
    try:
        stream = os.fdopen(fd, "wb", buffering=_settings.env_int("GOPEN_BUFFER", -1))
    except BaseException:
        os.close(fd)
        os.unlink(tmp)
        raise
    return stream, tmp, path


def _fsync_dir(path):
    try:
        fd = os.open(os.path.dirname(os.path.abspath(path)), os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems cannot sync a directory
    finally:
        os.close(fd)


class TarWriter:
    """Write samples (dicts) as members of one tar archive.

    ``fileobj`` is a path/URL (opened with :func:`gopen` and closed by
    :meth:`close`) or a binary stream (left open). ``encoder=True`` encodes
    values by extension (:func:`make_handlers`); ``False`` expects bytes; a
    dict is an extension table; a callable maps a sample to an encoded one.

    ``compress`` is False, True (gzip), "gz", "bz2" or "xz"; when None it is
    taken from a path's suffix. Set ``mtime`` to a fixed number for
    byte-identical shards. Members are written in sorted key order.
    ``format`` is accepted for compatibility; the output is always ustar with
    pax records where a value does not fit.

    A local path is written as ``<path>.tmp-<pid>-<n>`` and renamed to ``path`` by
    :meth:`close`, so a file under the final name is always a complete archive (a
    killed writer leaves only the temporary file). With ``fsync=True`` the data and
    the rename are synced to disk first.

    Example::

        with TarWriter("out.tar") as sink:
            sink.write({"__key__": "a/b", "png": image, "cls": 3})
    """

    def __init__(
        self,
        fileobj: str | os.PathLike[str] | IO[bytes],
        user: str = "bigdata",
        group: str = "bigdata",
        mode: int = 0o0444,
        compress: bool | str | None = None,
        encoder: None | bool | dict | Callable = True,
        keep_meta: bool = False,
        mtime: float | None = None,
        format: Any = None,
        fsync: bool = False,
    ) -> None:
        self._closed = True
        self.fsync = fsync
        self._tmp: str | None = None
        self._final: str | None = None
        if isinstance(fileobj, os.PathLike):
            fileobj = os.fspath(fileobj)
        if mtime is not None:
            if mtime < 0:
                raise ValueError(f"mtime must be >= 0, not {mtime}")
            mtime = int(mtime)
        self.format = _check_format(format)
        self.mtime = mtime
        self.user = user
        self.group = group
        self.mode = mode
        self.compress = compress
        self.keep_meta = keep_meta
        self.encoder = make_encoder(encoder)
        kind = _compression(fileobj, compress)
        if encoder is True:
            handlers, self._pre = default_handlers, None
        elif isinstance(encoder, dict):
            handlers, self._pre = encoder, None
        else:
            handlers = None
            self._pre = None if self.encoder is _identity else self.encoder
        local = _open_local_temp(fileobj)
        if local is not None:
            stream, self._tmp, self._final = local
            self.own_fileobj = stream
        elif isinstance(fileobj, str):
            stream = gopen(fileobj, "wb")
            self.own_fileobj = None if fileobj == "-" else stream
        else:
            stream = fileobj
            self.own_fileobj = None
        self.stream = stream
        try:
            self._zstream = self._compressor(stream, kind)
            self._enc = TarEncoder(
                self._zstream if self._zstream is not None else stream,
                user=user,
                group=group,
                mode=mode,
                mtime=mtime,
                keep_meta=keep_meta,
                handlers=handlers,
                int_encoder=_int_bytes,
                zero_copy=type(self._zstream if self._zstream is not None else stream) in _NON_RETAINING,
            )
        except BaseException:
            if self.own_fileobj is not None:
                self.own_fileobj.close()
            self._discard()
            raise
        self._closed = False

    def _discard(self):
        if self._tmp is not None:
            tmp, self._tmp = self._tmp, None
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass

    def _compressor(self, stream, kind):
        if kind == "gz":
            gz_mtime = self.mtime if self.mtime is not None else None
            return gzip.GzipFile(filename="", mode="wb", fileobj=stream, compresslevel=6, mtime=gz_mtime)
        if kind == "bz2":
            return bz2.BZ2File(stream, "wb")
        if kind == "xz":
            return lzma.LZMAFile(stream, "wb")
        return None

    @staticmethod
    def tarmode(fileobj, compress: bool | str | None = None):
        """The ``tarfile`` mode equivalent to ``compress=`` for ``fileobj`` (``"w|"``, ``"w|gz"``...)."""
        kind = _compression(os.fspath(fileobj) if isinstance(fileobj, os.PathLike) else fileobj, compress)
        return "w|" if kind is None else f"w|{kind}"

    @property
    def closed(self) -> bool:
        return self._closed

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: object, exc_val: object, exc_tb: object) -> None:
        self.close()

    def close(self) -> None:
        """Finish the archive (end marker, compressor) and close a stream opened from a path."""
        if self._closed:
            return
        self._closed = True
        done = False
        try:
            self._enc.finish()
            if self._zstream is not None:
                self._zstream.close()
            if self.own_fileobj is None and hasattr(self.stream, "flush"):
                self.stream.flush()
            if self._tmp is not None:
                self.own_fileobj.flush()
                if self.fsync:
                    os.fsync(self.own_fileobj.fileno())
            done = True
        finally:
            if self.own_fileobj is not None:
                own, self.own_fileobj = self.own_fileobj, None
                try:
                    own.close()
                except BaseException:
                    done = False
                    raise
                finally:
                    if not done:
                        self._discard()  # a cut archive never gets the final name
        if self._tmp is not None and self._final is not None:
            tmp, self._tmp = self._tmp, None
            try:
                os.replace(tmp, self._final)
            except BaseException:
                os.unlink(tmp)
                raise
            if self.fsync:
                _fsync_dir(self._final)

    def __del__(self):
        if not getattr(self, "_closed", True):
            warnings.warn(f"unclosed TarWriter {self!r}: closing it", ResourceWarning, stacklevel=1)
            try:
                self.close()
            except Exception:
                pass

    def write(self, obj: dict[str, Any]) -> int:
        """Encode and write one sample; returns the number of payload bytes written.

        Either the whole sample is written or, if a value cannot be encoded, none of it.
        """
        if self._closed:
            raise ValueError("write to a closed TarWriter")
        if self._pre is not None:
            obj = self._pre(obj)
        return self._enc.write(obj)


# ---------------------------------------------------------------------------
# ShardWriter
# ---------------------------------------------------------------------------


class ShardWriter:
    """Write samples to numbered shards ``pattern % shard``, starting a new one when full.

    A shard is full after ``maxcount`` samples or once ``maxsize`` payload bytes
    are written. ``post(fname)`` runs after each shard is closed. ``opener(fname)``
    returns the stream to write a shard to (it is closed with the shard); the
    default opens ``fname`` with :func:`gopen`. Other keyword arguments go to
    :class:`TarWriter`. With ``verbose``, each new shard prints
    ``# writing <name> <count> <size> GB <total>`` to stdout, as 0.2.86 did.

    Shards written to local paths appear under their final names only once complete
    (see :class:`TarWriter`); ``fsync=True`` syncs each to disk before it is renamed.
    """

    def __init__(
        self,
        pattern: str,
        maxcount: int = 100000,
        maxsize: float = 3e9,
        post: Callable | None = None,
        start_shard: int = 0,
        verbose: int = 1,
        opener: Callable | None = None,
        fsync: bool = False,
        **kw: Any,
    ) -> None:
        if fsync:
            kw = {**kw, "fsync": True}
        if maxcount < 1:
            raise ValueError(f"maxcount must be at least 1, not {maxcount}")
        self.verbose = verbose
        self.kw = kw
        self.maxcount = maxcount
        self.maxsize = maxsize
        self.post = post
        self.opener = opener
        self.tarstream: TarWriter | None = None
        self.shard = start_shard
        self.pattern = pattern
        self.total = 0
        self.count = 0
        self.size = 0
        self.fname = None
        self._opened = None
        self._closed = False
        self.next_stream()

    def _shard_name(self, shard):
        try:
            return self.pattern % shard
        except TypeError as exn:
            raise TypeError(
                f"ShardWriter pattern {self.pattern!r} needs one %-format for the shard number, e.g. 'out-%06d.tar'"
            ) from exn

    def next_stream(self):
        """Close the current shard and open the next one."""
        self.finish()
        fname = self._shard_name(self.shard)
        if self.verbose:
            # The counts are the previous shard's, exactly as 0.2.86 printed them.
            print("# writing", fname, self.count, f"{self.size / 1e9:.1f} GB", self.total, flush=True)
        self.fname = fname
        self.shard += 1
        if self.opener is not None:
            stream = self.opener(fname)
            kw = self.kw
            if "compress" not in kw:
                kw = {**kw, "compress": TarWriter.tarmode(fname)[2:] or False}
            try:
                self.tarstream = TarWriter(stream, **kw)
            except BaseException:
                _close_quietly(stream)
                raise
            self._opened = stream
        else:
            self.tarstream = TarWriter(fname, **self.kw)
        self.count = 0
        self.size = 0

    def write(self, obj: dict[str, Any]) -> None:
        """Write one sample, starting a new shard first if the current one is full."""
        if self.tarstream is None or self.count >= self.maxcount or self.size >= self.maxsize:
            if self._closed:
                raise ValueError("write to a closed ShardWriter")
            self.next_stream()
        assert self.tarstream is not None  # next_stream always opens one
        size = self.tarstream.write(obj)
        self.count += 1
        self.total += 1
        self.size += size

    def finish(self) -> None:
        """Close the current shard (and the opener's stream) and run ``post``."""
        if self.tarstream is None:
            return
        tarstream, self.tarstream = self.tarstream, None
        opened, self._opened = self._opened, None
        try:
            tarstream.close()
        finally:
            if opened is not None:
                opened.close()
        if callable(self.post):
            self.post(self.fname)

    def close(self) -> None:
        """Close the current shard; later writes raise ValueError."""
        self._closed = True
        self.finish()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *args: object, **kw: object) -> None:
        self.close()


def _close_quietly(stream):
    try:
        stream.close()
    except Exception:
        pass


__all__ = [
    "ShardWriter",
    "TarWriter",
    "add_handlers",
    "bytestr",
    "cbor_dumps",
    "default_handlers",
    "encode_based_on_extension",
    "encode_based_on_extension1",
    "imageencoder",
    "make_encoder",
    "make_handlers",
    "mp_dumps",
    "numpy_dumps",
    "numpy_npz_dumps",
    "paddle_dumps",
    "tenbin_dumps",
    "torch_dumps",
]
