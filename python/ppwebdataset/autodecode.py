"""Decoding sample fields by extension.

A :class:`Decoder` holds a chain of handlers ``pre + handlers + post``. Each
handler is called as ``handler(".ext", data)`` and returns a decoded value, or
None to let the next handler try, or :class:`Continue` to hand a changed
key/value to the rest of the chain (that is how ``.gz`` members are
decompressed and then decoded by their inner extension). Fields whose name
starts with ``__`` are metadata: they are never decoded, and bytes values are
turned into str.

Handlers defined here (``gzfilter``, ``basichandlers``, image handlers, the
ones made by :func:`handle_extension` and the audio/video decoders) can tell
from the extension alone whether they apply. The decoder uses that to build,
once per field name, the short list of functions to call, so decoding a field
costs a dict lookup and the decoder call itself. Any other callable is simply
called every time, as before.

Image specs for ``ImageHandler``/``imagehandler`` (and ``decode("rgb")``):

========== ======================== ==========================================
spec       result                   notes
========== ======================== ==========================================
l8         numpy uint8 HxW
rgb8       numpy uint8 HxWx3
rgba8      numpy uint8 HxWx4
l          numpy float32 HxW        values divided by 255
rgb        numpy float32 HxWx3      values divided by 255
rgba       numpy float32 HxWx4      values divided by 255
paddlel8   paddle uint8 HxW         CPU tensors, channels first
paddlergb8 paddle uint8 3xHxW
paddlergba8 paddle uint8 4xHxW
paddlel    paddle float32 HxW       values divided by 255
paddlergb  paddle float32 3xHxW     values divided by 255 (``paddle`` = this)
paddlergba paddle float32 4xHxW     values divided by 255
torch*     torch tensors            as upstream (HxW for ``l``); needs torch
pil        PIL image, RGB           also ``pilrgb``; ``pill``: L; ``pilrgba``
========== ======================== ==========================================

``decode(spec, native=True)`` decodes JPEG/PNG fields for the numpy and paddle
specs in Rust instead (see :mod:`ppwebdataset._native_image`).

Unpickling (``.pyd .pickle .pkl``) and ``paddle.load``/``torch.load``
(``.pth .pdparams``) can run code stored in the data, so they are disabled
unless ``PPWDS_ALLOW_PICKLE=1`` is set in the environment,
``ppwebdataset.autodecode.ALLOW_PICKLE = True`` or
``ppwebdataset.utils.enforce_security = False``; otherwise they raise
:class:`~ppwebdataset.errors.UnsafeOperationError` (a ``ValueError`` with
webdataset 1.0.2's message when ``enforce_security`` is True). See
``ppwebdataset._settings``.
"""

from __future__ import annotations

import gzip
import importlib.util
import io
import json
import os
import pickle
import tempfile
import warnings

import numpy as np

from . import _settings
from .errors import DecodingError, UnsafeOperationError

#: Set to True to allow unpickling and paddle.load/torch.load of sample data.
ALLOW_PICKLE = False

#: ``torch.load(weights_only=...)``, from ``WDS_PYTORCH_WEIGHTS_ONLY=1`` as in webdataset.
pytorch_weights_only = _settings.env_flag("WDS_PYTORCH_WEIGHTS_ONLY")

# Extensions of the formats PIL can open, in PIL's registration order (the image handlers' default).
IMAGE_EXTENSIONS = [
    "blp",
    "bmp",
    "dib",
    "bufr",
    "cur",
    "pcx",
    "dcx",
    "dds",
    "ps",
    "eps",
    "fit",
    "fits",
    "fli",
    "flc",
    "ftc",
    "ftu",
    "gbr",
    "gif",
    "grib",
    "h5",
    "hdf",
    "png",
    "apng",
    "jp2",
    "j2k",
    "jpc",
    "jpf",
    "jpx",
    "j2c",
    "icns",
    "ico",
    "im",
    "iim",
    "tif",
    "tiff",
    "jfif",
    "jpe",
    "jpg",
    "jpeg",
    "mpg",
    "mpeg",
    "msp",
    "pcd",
    "pxr",
    "pbm",
    "pgm",
    "ppm",
    "pnm",
    "psd",
    "bw",
    "rgb",
    "rgba",
    "sgi",
    "ras",
    "tga",
    "icb",
    "vda",
    "vst",
    "webp",
    "wmf",
    "emf",
    "xbm",
    "xpm",
]


def pickle_allowed() -> bool:
    """True when unpickling sample data has been enabled (flag, environment or enforce_security=False)."""
    return _settings.allow_pickle()


def _require_pickle(what: str) -> None:
    _settings.require_pickle(what)


def _missing(module: str, what: str, pip: str | None = None):
    # ModuleNotFoundError, as upstream's bare import raises, so `except ModuleNotFoundError` still works.
    return ModuleNotFoundError(f"{what} needs the {module!r} package: pip install {pip or module}", name=module)


def _ext(key: str) -> str:
    # Last extension component, like upstream's re.sub(r".*[.]", "", key).
    return key.rpartition(".")[2]


################################################################
# Basic data types
################################################################


def paddle_loads(data: bytes):
    """Load a ``paddle.save`` payload (needs pickle to be enabled, see the module docs)."""
    _require_pickle("paddle.load")
    import paddle

    return paddle.load(io.BytesIO(data))


def torch_loads(data: bytes):
    """Load a ``torch.save`` payload on the CPU (needs torch, and pickle to be enabled)."""
    _require_pickle("torch.load")
    try:
        import torch
    except ImportError as exn:
        raise _missing("torch", "torch_loads") from exn
    return torch.load(io.BytesIO(data), weights_only=pytorch_weights_only, map_location="cpu")


def unpickle_loads(data: bytes):
    """``pickle.loads`` (needs pickle to be enabled, see the module docs)."""
    _require_pickle("unpickling")
    return pickle.loads(data)


def tenbin_loads(data):
    """Decode a tenbin buffer into a list of arrays."""
    from .tenbin import decode_buffer

    return decode_buffer(data)


def msgpack_loads(data):
    """Decode msgpack data."""
    try:
        import msgpack
    except ImportError as exn:
        raise _missing("msgpack", "msgpack decoding") from exn
    return msgpack.unpackb(data)


def npy_loads(data):
    """Decode an NPY array (object arrays are refused: they would need pickle)."""
    import numpy.lib.format

    return numpy.lib.format.read_array(io.BytesIO(data), allow_pickle=False)


def npz_loads(data):
    """Decode an NPZ archive into a dict of arrays."""
    with np.load(io.BytesIO(data), allow_pickle=False) as archive:
        return dict(archive)


def cbor_loads(data):
    """Decode CBOR data (cbor2, or the older cbor package)."""
    try:
        import cbor2 as cbor
    except ImportError:
        try:
            import cbor
        except ImportError as exn:
            raise _missing("cbor2", "CBOR decoding") from exn
    return cbor.loads(data)


def _utf8(data):
    return data.decode("utf-8")


_scan_json = json.JSONDecoder().scan_once  # type: ignore[attr-defined]  # set in __init__, not in typeshed


def _json(data):
    # Same result as json.loads(data); objects and arrays in UTF-8 skip its
    # encoding sniffing and whitespace regexes. Anything else (or any doubt)
    # goes to json.loads, which also produces the usual error messages.
    if data[:1] in (b"{", b"[") and data[1:2] != b"\0":
        text = data.decode("utf-8", "surrogatepass")
        try:
            value, end = _scan_json(text, 0)
        except (StopIteration, ValueError):
            return json.loads(data)
        if end == len(text):
            return value
    return json.loads(data)


#: Last extension → decoder used by :func:`basichandlers`.
decoders = {
    "txt": _utf8,
    "text": _utf8,
    "transcript": _utf8,
    "cls": int,
    "cls2": int,
    "index": int,
    "inx": int,
    "id": int,
    "json": _json,
    "jsn": _json,
    "pyd": unpickle_loads,
    "pickle": unpickle_loads,
    "pkl": unpickle_loads,
    "pth": paddle_loads,
    "pdparams": paddle_loads,
    "ten": tenbin_loads,
    "tb": tenbin_loads,
    "mp": msgpack_loads,
    "msg": msgpack_loads,
    "npy": npy_loads,
    "npz": npz_loads,
    "cbor": cbor_loads,
}


def basichandlers(key, data):
    """Decode by the last extension of ``key`` with the :data:`decoders` table.

    txt/text/transcript → str; cls/cls2/index/inx/id → int; json/jsn → JSON;
    pyd/pickle/pkl → pickle and pth/pdparams → paddle.load (both only when
    enabled); ten/tb → tenbin; mp/msg → msgpack; npy → array; npz → dict of
    arrays; cbor → CBOR. Other extensions return None.
    """
    f = decoders.get(_ext(key))
    return None if f is None else f(data)


def _resolve_basic(key):
    f = decoders.get(_ext(key))
    return None if f is None else (f, False)


################################################################
# Generic extension handler
################################################################


def _matches(key, extensions):
    parts = key.lower().split(".")
    for target in extensions:
        target = target.split(".")
        if len(target) <= len(parts) and parts[-len(target) :] == target:
            return True
    return False


def call_extension_handler(key, data, f, extensions):
    """Return ``f(data)`` if ``key`` ends with one of ``extensions`` (dotted ones too), else None."""
    return f(data) if _matches(key, extensions) else None


class _ExtensionHandler:
    # A class rather than functools.partial so the decoder can ask which keys it serves.
    def __init__(self, extensions, f):
        self.extensions = extensions
        self.f = f

    def __call__(self, key, data):
        return self.f(data) if _matches(key, self.extensions) else None

    def _wds_resolve(self, key):
        return (self.f, False) if _matches(key, self.extensions) else None

    def __repr__(self):
        return f"handle_extension({' '.join(self.extensions)!r}, {self.f!r})"


def handle_extension(extensions, f):
    """A handler calling ``f(data)`` for keys ending in one of ``extensions``.

    ``extensions`` is a space-separated string; an entry may contain dots
    (``"seg.jpg"`` matches ``x.seg.jpg`` only). Matching ignores case.
    """
    return _ExtensionHandler(extensions.lower().split(), f)


################################################################
# Images
################################################################

imagespecs = {
    "l8": ("numpy", "uint8", "l"),
    "rgb8": ("numpy", "uint8", "rgb"),
    "rgba8": ("numpy", "uint8", "rgba"),
    "l": ("numpy", "float", "l"),
    "rgb": ("numpy", "float", "rgb"),
    "rgba": ("numpy", "float", "rgba"),
    "paddlel8": ("paddle", "uint8", "l"),
    "paddlergb8": ("paddle", "uint8", "rgb"),
    "paddlergba8": ("paddle", "uint8", "rgba"),
    "paddlel": ("paddle", "float", "l"),
    "paddlergb": ("paddle", "float", "rgb"),
    "paddle": ("paddle", "float", "rgb"),
    "paddlergba": ("paddle", "float", "rgba"),
    "torchl8": ("torch", "uint8", "l"),
    "torchrgb8": ("torch", "uint8", "rgb"),
    "torchrgba8": ("torch", "uint8", "rgba"),
    "torchl": ("torch", "float", "l"),
    "torchrgb": ("torch", "float", "rgb"),
    "torch": ("torch", "float", "rgb"),
    "torchrgba": ("torch", "float", "rgba"),
    "pill": ("pil", None, "l"),
    "pil": ("pil", None, "rgb"),
    "pilrgb": ("pil", None, "rgb"),
    "pilrgba": ("pil", None, "rgba"),
}


class ImageHandler:
    """Decode images (by extension, see :data:`IMAGE_EXTENSIONS`) according to an image spec.

    See the module docstring for the specs. Float specs divide by 255.
    Paddle specs give channels-first CPU tensors (HxW for ``l``, like torch); torch
    specs behave as in webdataset and need torch installed.
    """

    def __init__(self, imagespec, extensions=IMAGE_EXTENSIONS):
        spec = imagespec.lower() if isinstance(imagespec, str) else imagespec
        if spec not in imagespecs:
            raise ValueError(f"Unknown imagespec: {imagespec} (known: {' '.join(imagespecs)})")
        self.imagespec = spec
        self.extensions = {e.lower() for e in extensions}
        atype, etype, mode = imagespecs[spec]
        self._atype, self._float, self._mode = atype, etype == "float", mode.upper()
        if atype in ("torch", "paddle") and importlib.util.find_spec(atype) is None:
            raise _missing(atype, f"image spec {imagespec!r}", "paddlepaddle" if atype == "paddle" else None)

    def __call__(self, key, data):
        if _ext(key).lower() not in self.extensions:
            return None
        return self.decode(data)

    def _wds_resolve(self, key):
        return (self.decode, False) if _ext(key).lower() in self.extensions else None

    def decode(self, data):
        """Decode image file bytes according to this handler's spec."""
        import PIL.Image

        with io.BytesIO(data) as stream:
            img = PIL.Image.open(stream)
            img.load()
        if img.mode != self._mode:
            img = img.convert(self._mode)
        if self._atype == "pil":
            return img
        result = np.asarray(img)
        if self._float:
            result = result.astype(np.float32)
            result /= 255.0
        if self._atype == "numpy":
            return result
        if self._atype == "paddle":
            import paddle

            # Grey images stay 2-D, as upstream's torchl/torchl8.
            chw = result if result.ndim == 2 else result.transpose(2, 0, 1)
            return paddle.to_tensor(np.ascontiguousarray(chw), place=paddle.CPUPlace())
        import torch

        if result.ndim == 3:
            result = result.transpose(2, 0, 1)
        return torch.from_numpy(np.array(result))

    def __repr__(self):
        return f"ImageHandler({self.imagespec!r})"


def imagehandler(imagespec, extensions=IMAGE_EXTENSIONS):
    """Same as ``ImageHandler(imagespec, extensions)``."""
    return ImageHandler(imagespec, extensions)


################################################################
# Audio and video (through a temporary file, as the libraries want paths)
################################################################

_VIDEO_EXTENSIONS = frozenset("mp4 ogv mjpeg avi mov h264 mpg webm wmv".split())
_AUDIO_EXTENSIONS = frozenset("flac mp3 sox wav m4a ogg wma".split())


def _with_temp_file(extension, data, load):
    with tempfile.TemporaryDirectory() as dirname:
        fname = os.path.join(dirname, f"file.{extension}")
        with open(fname, "wb") as stream:
            stream.write(data)
        return load(fname)


def torch_video(key, data):
    """Decode video (mp4, webm, ...) with ``torchvision.io.read_video``."""
    extension = _ext(key)
    if extension not in _VIDEO_EXTENSIONS:
        return None
    try:
        import torchvision.io
    except ImportError as exn:
        raise _missing("torchvision", "torch_video") from exn
    return _with_temp_file(extension, data, lambda f: torchvision.io.read_video(f, pts_unit="sec"))


def torch_audio(key, data):
    """Decode audio (flac, mp3, wav, ...) with ``torchaudio.load``."""
    extension = _ext(key)
    if extension not in _AUDIO_EXTENSIONS:
        return None
    try:
        import torchaudio
    except ImportError as exn:
        raise _missing("torchaudio", "torch_audio") from exn
    return _with_temp_file(extension, data, torchaudio.load)


def paddle_audio(key, data):
    """Decode audio (flac, mp3, wav, ...) with ``paddle.audio.load``."""
    extension = _ext(key)
    if extension not in _AUDIO_EXTENSIONS:
        return None
    try:
        from paddle.audio import load
    except ImportError as exn:
        raise _missing("paddle", "paddle_audio", "paddlepaddle") from exn
    return _with_temp_file(extension, data, load)


#: The name ppwebdataset 0.2.86 exported (sic).
paddle_autdio = paddle_audio


################################################################
# Continue and gzip
################################################################


class Continue:
    """Returned by a handler to pass a new ``(key, data)`` on to the rest of the chain.

    For example a decompressor::

        def decompressor(key, data):
            if key.endswith(".gz"):
                return Continue(key[:-3], decompress(data))
            return None
    """

    def __init__(self, key, data):
        self.key, self.data = key, data


def gzfilter(key, data):
    """Decompress ``.gz`` fields and continue decoding with the inner extension."""
    if not key.endswith(".gz"):
        return None
    return Continue(key[:-3], gzip.decompress(data))


def _extension_resolver(handler, extensions):
    def resolve(key):
        return (handler, True) if _ext(key) in extensions else None

    return resolve


# For the handlers below the decoder can tell from the key alone whether they
# would return None: it then skips them, or calls the decoding function directly.
_FUNCTION_RESOLVERS = {
    gzfilter: lambda key: (gzfilter, True) if key.endswith(".gz") else None,
    basichandlers: _resolve_basic,
    torch_video: _extension_resolver(torch_video, _VIDEO_EXTENSIONS),
    torch_audio: _extension_resolver(torch_audio, _AUDIO_EXTENSIONS),
    paddle_audio: _extension_resolver(paddle_audio, _AUDIO_EXTENSIONS),
}
_RESOLVING_CALLS = (ImageHandler.__call__, _ExtensionHandler.__call__)


def _resolver_of(handler):
    try:
        resolve = _FUNCTION_RESOLVERS.get(handler)
    except TypeError:  # unhashable handler object
        resolve = None
    if resolve is None and type(handler).__call__ in _RESOLVING_CALLS:
        # Only when __call__ is ours: a subclass overriding it must be called.
        resolve = handler._wds_resolve
    return resolve


################################################################
# The decoder
################################################################

default_pre_handlers = [gzfilter]
default_post_handlers = [basichandlers]

_PLAN_CACHE_LIMIT = 4096


def _check_handlers(what, handlers):
    if not isinstance(handlers, (list, tuple)):
        raise TypeError(f"{what} must be a list of handlers, not {type(handlers).__name__}")
    for h in handlers:
        if not callable(h):
            raise TypeError(f"{what}: {h!r} is not callable")
    return list(handlers)


class Decoder:
    """Decode samples with a chain of handlers (``pre + handlers + post``).

    ``pre`` defaults to ``[gzfilter]`` and ``post`` to ``[basichandlers]``.
    ``only`` (a list or a space-separated str) limits decoding to those
    fields. Values that are not bytes raise, unless ``partial=True``, which
    passes them through. Any failure is raised as
    :class:`~ppwebdataset.errors.DecodingError` (with ``url``, ``key``, the
    field ``k`` and the ``sample``), chained to the original exception.
    """

    def __init__(self, handlers, pre=None, post=None, only=None, partial=False):
        if isinstance(only, str):
            only = only.split()
        self.only = None if only is None else set(only)
        pre = default_pre_handlers if pre is None else pre
        post = default_post_handlers if post is None else post
        handlers = _check_handlers("handlers", handlers)
        self.handlers = _check_handlers("pre", pre) + handlers + _check_handlers("post", post)
        self.partial = partial
        self._plans = {}
        self._fields = {}
        self._planned_for = None
        self._planned_len = -1

    # -- dispatch plans ---------------------------------------------------

    def _check_plans(self):
        handlers = self.handlers
        if handlers is not self._planned_for or len(handlers) != self._planned_len:
            # The handler list was replaced or changed: forget old plans.
            self._plans.clear()
            self._fields.clear()
            self._planned_for = handlers
            self._planned_len = len(handlers)

    def _plan(self, key, start=0):
        """The calls to make for ``key``: (function, takes_key, handler index) triples."""
        plan = self._plans.get((key, start))
        if plan is not None:
            return plan
        handlers = self.handlers
        steps = []
        for i in range(start, len(handlers)):
            h = handlers[i]
            resolve = _resolver_of(h)
            if resolve is None:
                steps.append((h, True, i))
                continue
            step = resolve(key)
            if step is not None:
                steps.append((step[0], step[1], i))
        plan = tuple(steps)
        if len(self._plans) >= _PLAN_CACHE_LIMIT:
            self._plans.clear()
            self._fields.clear()
        self._plans[(key, start)] = plan
        return plan

    def _field(self, k):
        key = "." + k
        entry = self._fields[k] = (key, self._plan(key))
        return entry

    def _run(self, key, data, start=0):
        for f, takes_key, i in self._plan(key, start):
            result = f(key, data) if takes_key else f(data)
            if result is None:
                continue
            if isinstance(result, Continue):
                return self._run(result.key, result.data, i + 1)
            return result
        return data

    def decode1(self, key, data):
        """Decode one field; ``key`` is the extension without the leading dot."""
        self._check_plans()
        return self._run("." + key, data)

    def decode(self, sample):
        """Decode every field of a sample dict and return a new dict."""
        if not isinstance(sample, dict):
            raise TypeError(f"Decoder expects a sample dict, got {type(sample).__name__}")
        self._check_plans()
        result = {}
        only = self.only
        fields = self._fields
        k = None
        try:
            for k, v in sample.items():
                if k[:2] == "__":
                    if isinstance(v, bytes):
                        try:
                            v = v.decode("utf-8")
                        except UnicodeDecodeError:
                            warnings.warn(f"metadata field {k!r} is not valid UTF-8; kept as bytes")
                    result[k] = v
                    continue
                if only is not None and k not in only:
                    result[k] = v
                    continue
                if not isinstance(v, bytes):
                    if not self.partial:
                        raise ValueError(
                            f"field {k!r} holds {type(v).__name__}, not bytes "
                            "(already decoded? use partial=True to pass such values through)"
                        )
                    result[k] = v
                    continue
                key, steps = fields.get(k) or self._field(k)
                for f, takes_key, i in steps:
                    out = f(key, v) if takes_key else f(v)
                    if out is None:
                        continue
                    if isinstance(out, Continue):
                        out = self._run(out.key, out.data, i + 1)
                    break
                else:
                    out = v
                result[k] = out
        except Exception as exn:
            key = result.get("__key__", sample.get("__key__"))
            # The cause goes into the message too: handlers often only log str(e).
            raise DecodingError(
                url=sample.get("__url__"), key=key, k=k, sample=sample, reason=f"{type(exn).__name__}: {exn}"
            ) from exn
        return result

    def __getstate__(self):
        # Dispatch plans are rebuilt on demand (e.g. in a spawned worker).
        state = dict(self.__dict__)
        state.update(_plans={}, _fields={}, _planned_for=None, _planned_len=-1)
        return state

    def __call__(self, sample):
        """Same as :meth:`decode`."""
        return self.decode(sample)


default_decoder = Decoder([])


__all__ = [
    "ALLOW_PICKLE",
    "Continue",
    "DecodingError",
    "Decoder",
    "IMAGE_EXTENSIONS",
    "ImageHandler",
    "UnsafeOperationError",
    "basichandlers",
    "call_extension_handler",
    "cbor_loads",
    "decoders",
    "default_decoder",
    "gzfilter",
    "handle_extension",
    "imagehandler",
    "imagespecs",
    "msgpack_loads",
    "npy_loads",
    "npz_loads",
    "paddle_audio",
    "paddle_autdio",
    "paddle_loads",
    "pickle_allowed",
    "tenbin_loads",
    "torch_audio",
    "torch_loads",
    "torch_video",
    "unpickle_loads",
]
