"""The native image stage behind ``decode(spec, native=True)``.

JPEG and PNG fields (``jpg``, ``jpeg``, ``png``) are decoded by ``_core.start_decode_images``:
a window of samples at a time, on Rust threads that never take the GIL, while the previous
window is handed downstream. Every other field goes through the usual
:class:`~ppwebdataset.autodecode.Decoder`. Results have the types, dtypes and shapes of the
PIL path for the numpy and Paddle specs (``l8 rgb8 rgba8 l rgb rgba paddle*``).

``resize=S`` scales the shorter side to ``S`` (the longer one to ``round(long * S / short)``)
with Pillow's antialiased ``BICUBIC`` (or ``filter="bilinear"``); ``crop=C`` (an int or
``(h, w)``) then cuts a centred window (odd leftovers go to the bottom/right), or a random one
with ``random_crop=True``, seeded like ``shuffle``: ``seed=None`` draws fresh entropy each
pass, an int seed gives ``make_seed(seed, pass, rank, worker)``. ``threads`` defaults to
:func:`default_threads`; ``window`` (samples per Rust call) to ``max(32, 16 * threads)``.
"""

from __future__ import annotations

import os
import random
import sys

import numpy as np

from . import _core
from .errors import DecodingError
from .handlers import reraise_exception
from .utils import PipelineStage, _env_pair, make_seed, paddle_worker_info

#: Field extensions decoded natively when the bytes are a JPEG or PNG (anything else goes to PIL).
NATIVE_EXTENSIONS = frozenset({"jpg", "jpeg", "png"})

_FILTERS = ("bicubic", "bilinear")
_JPEG, _PNG = b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n"


def _native_format(v):
    # Content decides, as with PIL: a .jpg holding a GIF or WebP still goes to PIL.
    return v[:3] == _JPEG or v[:8] == _PNG


def default_threads():
    """All usable cores in the main process, 1 inside a DataLoader worker (no oversubscription)."""
    io = sys.modules.get("paddle.io")
    if io is not None and getattr(io, "get_worker_info", lambda: None)() is not None:
        return 1
    if _env_pair("WORKER", "NUM_WORKERS") is not None:  # a worker of ppwebdataset.multi or a launcher
        return 1
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def _crop_size(crop):
    if crop is None:
        return None
    if isinstance(crop, int) and not isinstance(crop, bool):
        crop = (crop, crop)
    try:
        h, w = (int(v) for v in crop)
    except (TypeError, ValueError):
        raise ValueError(f"crop must be an int or (h, w), not {crop!r}") from None
    if h < 1 or w < 1:
        raise ValueError(f"crop must be positive, not {crop!r}")
    return h, w


def _split_handlers(args, native):
    """The native image spec and the remaining handlers for the Python decoder."""
    from .autodecode import ImageHandler, imagespecs

    if not args or not isinstance(args[0], str):
        raise ValueError(f"decode(native={native!r}) needs an image spec (e.g. 'rgb8') as first argument")
    spec = args[0].lower()
    if spec not in imagespecs:
        raise ValueError(f"Unknown imagespec: {args[0]}")
    atype, etype, mode = imagespecs[spec]
    if atype not in ("numpy", "paddle"):
        raise ValueError(f"native decoding supports the numpy and paddle image specs, not {args[0]!r}")
    # The spec still handles the image formats the native decoder does not (gif, bmp, webp...).
    handlers = [ImageHandler(x) if isinstance(x, str) else x for x in args]
    return (atype, etype == "float", mode.upper()), handlers


class NativeDecode(PipelineStage):
    """Stage: ``decode(spec, ..., native=True)`` with JPEG/PNG decoded in Rust (see module docs)."""

    def __init__(
        self,
        *args,
        pre=None,
        post=None,
        only=None,
        partial=False,
        handler=reraise_exception,
        native=True,
        resize=None,
        crop=None,
        random_crop=False,
        seed=None,
        threads=None,
        filter="bicubic",
        window=None,
    ):
        from .autodecode import Decoder

        if native is not True:
            raise ValueError(f"native must be True or False, not {native!r}")
        (self.atype, self.float, self.mode), handlers = _split_handlers(args, native)
        self.decoder = Decoder(handlers, pre=pre, post=post, only=only, partial=partial)
        self.only = self.decoder.only
        self.handler = handler
        if resize is not None and (isinstance(resize, bool) or int(resize) < 1):
            raise ValueError(f"resize must be a positive int, not {resize!r}")
        self.resize = None if resize is None else int(resize)
        self.crop = _crop_size(crop)
        if random_crop and self.crop is None:
            raise ValueError("random_crop=True needs crop=")
        self.random_crop = bool(random_crop)
        self.seed = seed
        if filter not in _FILTERS:
            raise ValueError(f"filter must be one of {_FILTERS}, not {filter!r}")
        self.filter = filter
        if threads is not None and int(threads) < 1:
            raise ValueError(f"threads must be >= 1, not {threads!r}")
        self.threads = None if threads is None else int(threads)
        self.window = window
        self.passes = 0

    def set_epoch(self, epoch):
        """Make the next pass use pass number ``epoch`` for the random crops."""
        self.passes = int(epoch)

    def _rng(self):
        n = self.passes
        self.passes += 1
        if not self.random_crop:
            return None
        if self.seed is None:
            return random.Random(int.from_bytes(os.urandom(8), "little"))
        rank, _, worker, _ = paddle_worker_info()
        return random.Random(make_seed(self.seed, n, rank, worker))

    def _jobs(self, sample):
        only = self.only
        return [
            k
            for k, v in sample.items()
            if isinstance(v, bytes)
            and k[:2] != "__"
            and (only is None or k in only)
            and k.rpartition(".")[2].lower() in NATIVE_EXTENSIONS
            and _native_format(v)
        ]

    def _submit(self, batch, threads, rng):
        fields, items = [], []
        for sample in batch:
            keys = self._jobs(sample) if isinstance(sample, dict) else []
            fields.append(keys)
            items.extend(sample[k] for k in keys)
        seeds = [(rng.getrandbits(64), rng.getrandbits(64)) for _ in items] if rng is not None else None
        args = (items, self.mode, self.resize, self.crop, seeds, self.filter, threads)
        return batch, fields, _core.start_decode_images(*args)

    def _array(self, result):
        h, w, c, buf = result
        arr = np.frombuffer(buf, np.uint8).reshape((h, w) if self.mode == "L" else (h, w, c))
        if self.float:
            arr = arr.astype(np.float32)
            arr /= 255.0
        if self.atype == "paddle":
            import paddle

            chw = arr if arr.ndim == 2 else arr.transpose(2, 0, 1)  # L stays [H, W], as the PIL path
            return paddle.to_tensor(np.ascontiguousarray(chw), place=paddle.CPUPlace())
        return arr

    def _finish(self, sample, keys, results):
        """The decoded sample, or raises DecodingError for the first field (in order) that fails."""
        if not isinstance(sample, dict):
            raise TypeError(f"decode expects dict samples, got {type(sample).__name__}")
        native = dict(zip(keys, results, strict=True))
        rest = {k: v for k, v in sample.items() if k not in native}
        first_bad = next((k for k in keys if isinstance(native[k], str)), None)
        try:
            decoded = self.decoder(rest)
        except DecodingError as exn:
            exn.sample = sample
            order = list(sample)
            if first_bad is None or order.index(exn.k) < order.index(first_bad):
                raise
        if first_bad is not None:
            # The same error as the PIL path's (Decoder.decode) for the first failing field.
            key = sample.get("__key__")
            key = key.decode("utf-8", "replace") if isinstance(key, bytes) else key
            err = DecodingError(url=sample.get("__url__"), key=key, k=first_bad, sample=sample)
            raise err from ValueError(native[first_bad])
        return {k: (self._array(native[k]) if k in native else decoded[k]) for k in sample}

    def run(self, src):
        from .filters import _handle

        rng = self._rng()
        threads = self.threads or default_threads()
        window = self.window or max(32, 16 * threads)
        # Rust threads decode the next window (they never take the GIL) while this one is consumed.
        pending = None
        it = iter(src)
        done = False
        while not done or pending is not None:
            nxt = None
            if not done:
                batch = []
                for sample in it:
                    batch.append(sample)
                    if len(batch) >= window:
                        break
                else:
                    done = True
                if batch:
                    nxt = self._submit(batch, threads, rng)
            if pending is not None:
                batch, fields, job = pending
                results = job.result()
                pos = 0
                for sample, keys in zip(batch, fields, strict=True):
                    mine = results[pos : pos + len(keys)]
                    pos += len(keys)
                    try:
                        decoded = self._finish(sample, keys, mine)
                    except Exception as exn:
                        if _handle(self.handler, exn, "decode", sample):
                            continue
                        return
                    yield decoded
            pending = nxt

    __call__ = run

    def __repr__(self):
        return (
            f"decode(native=True, mode={self.mode!r}, resize={self.resize}, crop={self.crop}, "
            f"random_crop={self.random_crop}, threads={self.threads})"
        )


__all__ = ["NATIVE_EXTENSIONS", "NativeDecode", "default_threads"]
