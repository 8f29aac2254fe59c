"""Decoding the fields of a ``ShardListDataset`` sample (keys keep their dot: ``".jpg"``).

Values may be ``bytes`` (what ``ShardListDataset`` returns) or binary streams
(what wids 0.1.11 returned); both are accepted everywhere.

Formats that can run code when loaded (``.pkl``/``.pickle``, ``.pt``/``.pth``
via ``torch.load``, ``.pd``/``.pdparams`` via ``paddle.load``) are refused
unless ``PPWDS_ALLOW_PICKLE=1`` is set or :data:`ALLOW_PICKLE` is True -- the same
switches as ppwebdataset's decoders (``ppwebdataset._settings``).
"""

from __future__ import annotations

import gzip
import io
import json
import warnings
from typing import Any

from ppwebdataset import _settings
from ppwebdataset.errors import UnsafeOperationError

#: Set to True to allow pickle-based formats in this process (same as PPWDS_ALLOW_PICKLE=1).
ALLOW_PICKLE = False

IMAGE_EXTENSIONS = ("jpg", "jpeg", "png", "ppm", "pgm", "pbm", "pnm", "webp", "bmp", "gif", "tif", "tiff")
PICKLE_EXTENSIONS = ("pkl", "pickle", "pyd", "pt", "pth", "pd", "pdparams")


def pickle_allowed() -> bool:
    """True when pickle-based formats may be loaded."""
    return _settings.allow_pickle()


def _bytes(value) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    if hasattr(value, "read"):
        if hasattr(value, "seek"):
            value.seek(0)
        return value.read()
    raise TypeError(f"cannot decode a {type(value).__name__} value")


def _stream(value):
    if isinstance(value, (bytes, bytearray, memoryview)):
        return io.BytesIO(value)
    if hasattr(value, "seek"):
        value.seek(0)
    return value


def check_keys(sample: dict[str, Any]):
    """Every non-metadata key must start with a dot."""
    for k in sample:
        if not k.startswith("__") and not k.startswith("."):
            raise ValueError(f"sample key {k!r} must start with a dot")


def _refuse(key):
    raise UnsafeOperationError(
        f"refusing to load sample field {key!r}: this format can execute code when loaded (pickle). "
        "Set PPWDS_ALLOW_PICKLE=1 (or ppwids.wids_decode.ALLOW_PICKLE = True) if you trust the data."
    )


def _secure_check(ext):
    _settings.check_secure(
        "torch.load" if ext in ("pt", "pth") else "paddle.load" if ext in ("pd", "pdparams") else "unpickling"
    )


def decode_all_gz(sample: dict[str, Any], format=True, update_key=True):
    """Decompresses every ``.X.gz`` field; with ``update_key`` it is stored under ``.X``."""
    check_keys(sample)
    for key, value in list(sample.items()):
        parts = key.split(".")
        if key.startswith("__") or len(parts) < 2 or parts[-1].lower() != "gz":
            continue
        if len(parts) == 2:
            warnings.warn(f"plain .gz field {key!r} in sample; not decompressed")
            continue
        data = gzip.decompress(_bytes(value))
        if update_key:
            del sample[key]
            sample[".".join(parts[:-1])] = data
        else:
            sample[key] = data
    return sample


def _basic(key, ext, value):
    if ext in ("txt", "text"):
        return _bytes(value).decode("utf-8")
    if ext in ("cls", "cls2", "index", "inx", "id"):
        return int(_bytes(value).decode("utf-8"))
    if ext in ("json", "jsn"):
        return json.loads(_bytes(value))
    if ext == "npy":
        import numpy as np

        return np.load(_stream(value), allow_pickle=False)
    if ext == "mp":
        import msgpack

        return msgpack.unpackb(_bytes(value), raw=False)
    if ext in PICKLE_EXTENSIONS:
        _secure_check(ext)
        if not pickle_allowed():
            _refuse(key)
        if ext in ("pt", "pth"):
            import torch

            return torch.load(_stream(value))
        if ext in ("pd", "pdparams"):
            import paddle

            return paddle.load(_stream(value))
        import pickle

        return pickle.loads(_bytes(value))
    return value


def decode_basic(sample: dict[str, Any], format=True):
    """Decodes text, class labels, JSON, ``.npy``, msgpack (and, if allowed, pickles) in place."""
    check_keys(sample)
    for key, value in list(sample.items()):
        if key.startswith("__"):
            continue
        parts = key.lower().split(".")
        if len(parts) < 2:
            continue
        ext = parts[-1]
        if ext == "gz" and len(parts) > 2:
            # As upstream: `.X.gz` fields are expected to be decompressed already (decode_all_gz).
            ext = parts[-2]
        sample[key] = _basic(key, ext, value)
    return sample


def _images(sample, convert):
    check_keys(sample)
    for key, value in list(sample.items()):
        if key.startswith("__"):
            continue
        ext = key.lower().rsplit(".", 1)[-1]
        if ext not in IMAGE_EXTENSIONS:
            continue
        # Imported only for image fields: samples without images need no Pillow.
        import PIL.Image

        if not isinstance(value, PIL.Image.Image):
            image = PIL.Image.open(_stream(value))
            sample[key] = convert(image)
    return sample


def decode_images_to_pil(sample: dict[str, Any], format=True):
    """Opens image fields as ``PIL.Image`` objects."""
    return _images(sample, lambda image: image)


def decode_images_to_numpy(sample: dict[str, Any], format=True):
    """Decodes image fields to numpy arrays."""
    import numpy as np

    return _images(sample, np.asarray)


def default_decoder(sample: dict[str, Any], format="PIL", gz_update_key=False):
    """The decoding ``transformations="PIL"`` / ``"numpy"`` apply; returns a new dict."""
    if not isinstance(format, str) or format.lower() not in ("pil", "numpy"):
        raise ValueError(f"unknown image format {format!r}: use 'PIL' or 'numpy'")
    result = dict(sample)
    decode_all_gz(result, update_key=gz_update_key)
    decode_basic(result)
    if format.lower() == "pil":
        decode_images_to_pil(result)
    else:
        decode_images_to_numpy(result)
    return result


class DefaultDecoder:
    """A picklable ``default_decoder`` bound to one image format."""

    def __init__(self, format="PIL", gz_update_key=False):
        self.format = format
        self.gz_update_key = gz_update_key

    def __call__(self, sample):
        return default_decoder(sample, format=self.format, gz_update_key=self.gz_update_key)

    def __repr__(self):
        return f"DefaultDecoder(format={self.format!r})"


__all__ = [
    "ALLOW_PICKLE",
    "DefaultDecoder",
    "check_keys",
    "decode_all_gz",
    "decode_basic",
    "decode_images_to_numpy",
    "decode_images_to_pil",
    "default_decoder",
    "pickle_allowed",
]
