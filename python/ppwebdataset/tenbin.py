"""Tenbin: a simple binary container for lists of numeric arrays (``.ten`` files).

Layout: a sequence of chunks, each ``magic (8 bytes "~TenBin~") | nbytes
(int64) | payload padded with zeros to a multiple of 64 bytes``. Every array
takes two chunks: a header (int64 values: dtype code, info string, ndim, then
the dimensions; the dtype code and info are ASCII strings of at most 8 bytes
stored in the int64 slots) and the raw C-order data. The 64-byte alignment
lets the data be mapped or transferred and used in place.

Integers and array data are little-endian (the byte order of the machines
the format is used on); big-endian arrays are converted when encoded.
"""

from __future__ import annotations

import struct
import sys

import numpy as np

_INT64 = struct.Struct("<q")

# dtype name <-> the short code stored in headers. (uint32 is spelled
# correctly here; a misspelling made it unusable in older versions.)
long_to_short = {
    "float16": "f2",
    "float32": "f4",
    "float64": "f8",
    "int8": "i1",
    "int16": "i2",
    "int32": "i4",
    "int64": "i8",
    "uint8": "u1",
    "uint16": "u2",
    "uint32": "u4",
    "uint64": "u8",
}
short_to_long = {v: k for k, v in long_to_short.items()}

_SIXTY_FOUR_BIT = {"float64", "int64", "uint64"}
_MAX_NDIM = 9


def bytelen(a):
    """Size of ``a`` in bytes (arrays, bytes, bytearray, memoryview)."""
    if hasattr(a, "nbytes"):
        return a.nbytes
    if isinstance(a, (bytes, bytearray)):
        return len(a)
    raise ValueError(a, "cannot determine nbytes")


def bytedata(a):
    """The raw bytes of ``a`` as a buffer object."""
    if isinstance(a, (bytes, bytearray, memoryview)):
        return a
    if hasattr(a, "data"):
        return a.data
    raise ValueError(a, "cannot return bytedata")


def check_acceptable_input_type(data, allow64):
    """Raise ValueError unless every array has a supported dtype (64-bit ones only with ``allow64``)."""
    for a in data:
        name = np.asarray(a).dtype.name
        if name not in long_to_short:
            raise ValueError(f"unsupported dtype {name} for tenbin")
        if not allow64 and name in _SIXTY_FOUR_BIT:
            raise ValueError(f"64 bit dtype {name} not allowed unless explicitly enabled")


def str64(s):
    """Pack an ASCII string of at most 8 characters into an int64."""
    raw = s.encode("ascii")
    if len(raw) > 8:
        raise ValueError(f"{s!r} is longer than 8 bytes")
    return _INT64.unpack(raw.ljust(8, b"\0"))[0]


def unstr64(i):
    """Inverse of :func:`str64`."""
    return _INT64.pack(int(i)).rstrip(b"\0").decode("ascii")


def _text8(s):
    raw = s.encode("ascii")
    if len(raw) > 8:
        raise ValueError(f"tenbin info {s!r} is longer than 8 bytes")
    return raw.ljust(8, b"\0")


def check_infos(data, infos, required_infos=None):
    """Apply the ``infos=`` argument of the decoders.

    ``None``/``False``: return ``data``; ``True``: return ``(data, infos)``;
    a list or tuple: check it against ``infos`` item by item and return ``data``.
    """
    if required_infos is None or required_infos is False:
        return data
    if required_infos is True:
        return data, infos
    if not isinstance(required_infos, (tuple, list)):
        raise ValueError("required_infos must be tuple or list")
    if len(required_infos) != len(infos):
        raise ValueError(f"expected {len(required_infos)} infos, found {len(infos)}")
    for required, actual in zip(required_infos, infos, strict=True):
        if required != actual:
            raise ValueError(f"actual info {actual!r} doesn't match required info {required!r}")
    return data


def _le(dtype):
    # Native dtypes on little-endian machines, explicit '<' elsewhere.
    return dtype if sys.byteorder == "little" and dtype.isnative else dtype.newbyteorder("<")


def _as_array(a):
    a = np.asarray(a)
    if a.dtype.name not in long_to_short:
        raise ValueError(f"unsupported array type {a.dtype} for tenbin")
    return np.require(a, dtype=_le(a.dtype), requirements="C")


def encode_header(a, info=""):
    """The header chunk of array ``a`` (as bytes)."""
    a = np.asarray(a)
    if a.ndim > _MAX_NDIM:
        raise ValueError("too many dimensions")
    if a.dtype.name not in long_to_short:
        raise ValueError(f"unsupported array type {a.dtype} for tenbin")
    head = _text8(long_to_short[a.dtype.name]) + _text8(info)
    return head + np.array([a.ndim, *a.shape], dtype="<i8").tobytes()


def decode_header(h):
    """Parse a header chunk into ``(shape, dtype, info)``."""
    h = bytes(h)
    if len(h) < 24 or len(h) % 8:
        raise ValueError(f"tenbin header of {len(h)} bytes is malformed")
    code = h[:8].rstrip(b"\0").decode("ascii", "replace")
    if code not in short_to_long:
        raise ValueError(f"unsupported tenbin array type {code!r}")
    info = h[8:16].rstrip(b"\0").decode("ascii", "replace")
    rest = np.frombuffer(h, dtype="<i8", offset=16)
    rank = int(rest[0])
    if not 0 <= rank <= _MAX_NDIM or len(rest) < 1 + rank:
        raise ValueError(f"tenbin header has a bad rank {rank}")
    shape = tuple(int(d) for d in rest[1 : 1 + rank])
    if any(d < 0 for d in shape):
        raise ValueError(f"tenbin header has a negative dimension {shape}")
    return shape, _le(np.dtype(short_to_long[code])), info


def encode_list(l, infos=None):  # noqa: E741 - upstream parameter name
    """Turn a list of arrays into the list of chunks ``[header0, data0, header1, ...]``."""
    if infos is None:
        infos = [""]
    elif len(l) != len(infos):
        raise ValueError(f"length of list ({len(l)}) must match length of infos ({len(infos)})")
    result = []
    for i, a in enumerate(l):
        a = _as_array(a)
        result.append(encode_header(a, infos[i % len(infos)]))
        result.append(a.reshape(-1).view(np.uint8))
    return result


def decode_list(l, infos=False):  # noqa: E741 - upstream parameter name
    """Turn ``[header0, data0, ...]`` chunks back into arrays (see :func:`check_infos`)."""
    if len(l) % 2:
        raise ValueError("tenbin data has a header without data")
    result, found = [], []
    for header, data in zip(l[::2], l[1::2], strict=True):
        shape, dtype, info = decode_header(header)
        count = 1
        for d in shape:
            count *= d
        if count * dtype.itemsize != bytelen(data):
            raise ValueError(f"tenbin data of {bytelen(data)} bytes does not match shape {shape} of {dtype.name}")
        result.append(np.frombuffer(data, dtype=dtype, count=count).reshape(shape))
        found.append(info)
    return check_infos(result, found, infos)


magic_str = "~TenBin~"
magic_bytes = magic_str.encode("ascii")
magic = str64(magic_str)


def roundup(n, k=64):
    """``n`` rounded up to a multiple of ``k``."""
    return k * ((n + k - 1) // k)


def encode_chunks(l):  # noqa: E741 - upstream parameter name
    """Concatenate chunks with magic, length and padding into one bytearray."""
    sizes = [bytelen(b) for b in l]
    result = bytearray(sum(16 + roundup(n) for n in sizes))
    out = memoryview(result)
    offset = 0
    for b, n in zip(l, sizes, strict=True):
        out[offset : offset + 8] = magic_bytes
        out[offset + 8 : offset + 16] = _INT64.pack(n)
        offset += 16
        out[offset : offset + n] = memoryview(b).cast("B") if n else b""
        offset += roundup(n)
    out.release()
    return result


def decode_chunks(buf):
    """Split a buffer made by :func:`encode_chunks` into its chunks.

    With bytes or memoryview input the chunks are views (no copy); a
    bytearray is sliced (copied), so the arrays made from it own their data.
    """
    view = buf if isinstance(buf, bytearray) else memoryview(buf).cast("B")
    total = len(view)
    result = []
    offset = 0
    while offset < total:
        if total - offset < 16:
            raise ValueError(f"tenbin data ends inside a chunk header at byte {offset}")
        if bytes(view[offset : offset + 8]) != magic_bytes:
            raise ValueError(f"magic bytes mismatch at byte {offset}")
        nbytes = _INT64.unpack(bytes(view[offset + 8 : offset + 16]))[0]
        offset += 16
        if nbytes < 0 or offset + nbytes > total:
            left = total - offset
            raise ValueError(f"tenbin chunk at byte {offset - 16} claims {nbytes} bytes, {left} left")
        result.append(view[offset : offset + nbytes])
        offset += roundup(nbytes)
    return result


def encode_buffer(l, infos=None):  # noqa: E741 - upstream parameter name
    """Encode a list of arrays into one bytearray."""
    if not isinstance(l, (list, tuple)):
        raise ValueError("requires list")
    return encode_chunks(encode_list(l, infos=infos))


def decode_buffer(buf, infos=False):
    """Decode a buffer made by :func:`encode_buffer` into a list of arrays."""
    return decode_list(decode_chunks(buf), infos=infos)


def write_chunk(stream, buf):
    """Write one chunk (magic, length, data, padding) to a binary stream."""
    nbytes = bytelen(buf)
    stream.write(magic_bytes)
    stream.write(_INT64.pack(nbytes))
    stream.write(bytedata(buf))
    padding = roundup(nbytes) - nbytes
    if padding:
        stream.write(b"\0" * padding)


def _read_exactly(stream, n, what):
    data = stream.read(n)
    if len(data) != n:
        raise ValueError(f"premature EOF in tenbin {what}: wanted {n} bytes, got {len(data)}")
    return data


def read_chunk(stream):
    """Read one chunk from a binary stream; None at a clean end of stream."""
    head = stream.read(8)
    if not head:
        return None
    if head != magic_bytes:
        raise ValueError("magic number does not match")
    nbytes = _INT64.unpack(_read_exactly(stream, 8, "chunk length"))[0]
    if nbytes < 0:
        raise ValueError("negative nbytes")
    data = _read_exactly(stream, nbytes, "chunk data")
    padding = roundup(nbytes) - nbytes
    if padding:
        _read_exactly(stream, padding, "chunk padding")
    return data


def write(stream, l, infos=None):  # noqa: E741 - upstream parameter name
    """Write a list of arrays to a binary stream."""
    for chunk in encode_list(l, infos=infos):
        write_chunk(stream, chunk)


def read(stream, n=sys.maxsize, infos=False):
    """Read up to ``n`` arrays from a binary stream."""
    chunks = []
    for _ in range(n):
        header = read_chunk(stream)
        if header is None:
            break
        data = read_chunk(stream)
        if data is None:
            raise ValueError("premature EOF")
        chunks += [header, data]
    return decode_list(chunks, infos=infos)


def save(fname, *args, infos=None, nocheck=False):
    """Save arrays to ``fname`` (which must end in ``.ten`` unless ``nocheck``)."""
    if not nocheck and not str(fname).endswith(".ten"):
        raise ValueError("file name should end in .ten")
    with open(fname, "wb") as stream:
        write(stream, args, infos=infos)


def load(fname, infos=False, nocheck=False):
    """Load the arrays saved in ``fname``."""
    if not nocheck and not str(fname).endswith(".ten"):
        raise ValueError("file name should end in .ten")
    with open(fname, "rb") as stream:
        return read(stream, infos=infos)
