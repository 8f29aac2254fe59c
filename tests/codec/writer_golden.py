"""Sample sets whose TarWriter / ShardWriter output is pinned byte for byte.

The files in ``golden/`` were written by the encoder as it was before the tar layout
moved into the core (commit e90149e); ``python tests/codec/writer_golden.py`` rewrites
them, which is only right when a layout change is intended.
"""

from __future__ import annotations

import collections.abc
import hashlib
import io
import json
import sys
from pathlib import Path

import numpy as np

GOLDEN = Path(__file__).resolve().parent / "golden"
MTIME = 1_700_000_000


class Mapping(collections.abc.Mapping):
    """A sample that is a mapping but not a dict."""

    def __init__(self, d):
        self._d = d

    def __getitem__(self, k):
        return self._d[k]

    def __iter__(self):
        return iter(self._d)

    def __len__(self):
        return len(self._d)


def encoded_samples():
    """Samples for the default encoder: every value kind and name shape it handles."""
    return [
        # Fields given out of order; metadata of both kinds.
        {"txt": "hello", "__key__": "a", "cls": 3, "json": {"x": [1, 2]}, "__url__": "http://x/a.tar", "_extra": "m"},
        {"__key__": "dir/ünï-キー", "TXT": "ÄÖ text", "seg.png": b"\x89PNG...", "Cls": -12},
        {"__key__": "bad\udcffname", "txt": "surrogate key"},
        {"__key__": "a.b", "txt": "dotted key", "z.y.x": b"multi"},
        {"__key__": "d" * 120 + "/k", "txt": "prefix split"},
        {"__key__": "p" * 96, "txt": "name of exactly 100 bytes"},
        {"__key__": "q" * 97, "txt": "name of 101 bytes, no slash"},
        {"__key__": "x" * 300, "txt": "pax path"},
        {"__key__": "é" * 60 + "/" + "ü" * 40, "json": [1]},
        {"__key__": "gz", "txt.gz": "compress me " * 20, "json.gz": {"k": "v"}, "cls.gz": 7, "bin.gz": b""},
        {"__key__": "empty", "txt": "", "bin": b"", "json": [], "npy.gz": np.zeros(0, np.uint8)},
        {"__key__": "ints", "cls": 2**70, "count": True, "index": 1.5, "id": 0, "cls2": -(2**63)},
        {"__key__": "views", "a.bin": bytearray(b"ba"), "b.bin": memoryview(b"abcdef").cast("B", (2, 3))},
        {"__key__": "arr", "npy": np.arange(6, dtype="<i4").reshape(2, 3)},
        Mapping({"__key__": "mapping", "txt": "not a dict"}),
        {"__key__": "block", "bin": b"\x01" * 512, "b2": b"\x02" * 513, "b3": b"\x03" * 1023},
    ]


def raw_samples():
    """Samples for ``encoder=False``: bytes-like values and str metadata only."""
    return [
        {"__key__": "r1", "txt": b"one", "__url__": "u", "_m": "meta", "b.gz": b"not compressed"},
        {"__key__": "r2", "x": bytearray(b"two"), "y": memoryview(b"three"), "": b"empty ext"},
        {"__key__": "r" * 200, "bin": b"\x00" * 700},
    ]


def big_samples():
    """Payloads on both sides of the encoder's copy and direct-write thresholds."""
    return [
        {"__key__": "big1", "bin": bytes(range(256)) * 4096 + b"tail"},
        {"__key__": "big2", "bin": bytearray(b"\x07" * (300 << 10)), "txt": "é" * (150 << 10)},
        {"__key__": "big3", "a": b"\x05" * ((256 << 10) - 1), "b": b"\x06" * (256 << 10)},
        {"__key__": "small", "txt": "after the big ones"},
    ]


def write(samples, stream=None, **kw):
    from ppwebdataset import writer as W

    buf = io.BytesIO() if stream is None else stream
    with W.TarWriter(buf, mtime=MTIME, **kw) as sink:
        sizes = [sink.write(s) for s in samples]
    return (buf.getvalue() if stream is None else None), sizes


def variants():
    """name → (samples, TarWriter keywords)."""
    return {
        "default": (encoded_samples, {}),
        "keep_meta": (encoded_samples, {"keep_meta": True, "user": "alice", "group": "staff", "mode": 0o640}),
        "raw": (raw_samples, {"encoder": False}),
        "raw_keep_meta": (raw_samples, {"encoder": False, "keep_meta": True}),
        "gz_archive": (raw_samples, {"encoder": False, "compress": "gz"}),
    }


def shard_files(tmpdir):
    """Shards written by ShardWriter (maxcount=3) for the encoded samples: {name: bytes}."""
    from ppwebdataset import writer as W

    pattern = str(Path(tmpdir) / "shard-%03d.tar")
    with W.ShardWriter(pattern, maxcount=3, verbose=0, mtime=MTIME) as sink:
        for s in encoded_samples():
            sink.write(s)
    return {p.name: p.read_bytes() for p in sorted(Path(tmpdir).glob("shard-*.tar"))}


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def regenerate():
    import tempfile

    GOLDEN.mkdir(exist_ok=True)
    sizes = {}
    for name, (samples, kw) in variants().items():
        data, sizes[name] = write(samples(), **kw)
        (GOLDEN / f"{name}.tar{'.gz' if kw.get('compress') else ''}").write_bytes(data)
    big, sizes["big"] = write(big_samples())
    with tempfile.TemporaryDirectory() as d:
        shards = shard_files(d)
    for n, data in shards.items():
        (GOLDEN / n).write_bytes(data)
    meta = {"sizes": sizes, "big": {"sha256": digest(big), "length": len(big)}, "shards": sorted(shards)}
    (GOLDEN / "golden.json").write_text(json.dumps(meta, indent=1) + "\n")


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "python"))
    regenerate()
