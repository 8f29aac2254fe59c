"""TarWriter / ShardWriter: what we write reads back identically with tarfile and our reader."""

from __future__ import annotations

import bz2
import gc
import gzip
import io
import json
import lzma
import os
import pickle
import subprocess
import sys
import tarfile
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ppwebdataset as wds
from ppwebdataset import writer as W
from ppwebdataset._core import TarSampleReader


def members(data: bytes):
    """[(name, payload, TarInfo)] of an in-memory archive, via tarfile."""
    out = []
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as tf:
        for ti in tf:
            out.append((ti.name, tf.extractfile(ti).read(), ti))
    return out


def write_samples(samples, **kw):
    buf = io.BytesIO()
    with W.TarWriter(buf, **kw) as sink:
        for s in samples:
            sink.write(s)
    return buf.getvalue()


def read_with_core(source, url="mem"):
    reader = TarSampleReader(source, url)
    out = []
    while batch := reader.next_batch():
        out.extend(batch)
    return out


# ---------------------------------------------------------------------------
# Tar format
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, 100, 511, 512, 513, 1024, 4096 + 7])
def test_sizes_round_trip(size):
    payload = bytes(range(256)) * (size // 256) + bytes(range(size % 256))
    data = write_samples([{"__key__": "s", "bin": payload}], mtime=1)
    [(name, got, ti)] = members(data)
    assert name == "s.bin"
    assert got == payload
    assert ti.size == size
    assert len(data) % tarfile.RECORDSIZE == 0


def test_header_fields_round_trip():
    data = write_samples([{"__key__": "a", "txt": "x"}], user="alice", group="staff", mode=0o640, mtime=1_234_567_890)
    [(_, _, ti)] = members(data)
    assert ti.mtime == 1_234_567_890
    assert ti.mode == 0o640
    assert ti.uname == "alice"
    assert ti.gname == "staff"
    assert ti.isreg()


def test_default_header_fields_match_upstream():
    before = int(time.time())
    data = write_samples([{"__key__": "a", "txt": "x"}])
    [(_, _, ti)] = members(data)
    assert ti.mode == 0o444
    assert ti.uname == ti.gname == "bigdata"
    assert before <= ti.mtime <= time.time() + 1


@pytest.mark.parametrize(
    "key",
    [
        "plain",
        "dir/sub/key",
        "d" * 99,  # name just over 100 bytes once the extension is added
        "p" * 120 + "/" + "k" * 80,  # fits with the ustar prefix field
        "x" * 300,  # needs a pax path record
        "/".join(["seg"] * 100),  # long, with many slashes
        "ünïcödé/キー",
        "é" * 60,  # 60 characters, 120 UTF-8 bytes
        "with space (1)",
    ],
)
def test_names_round_trip_with_tarfile_and_core_reader(key):
    sample = {"__key__": key, "txt": "hello", "cls": 7}
    data = write_samples([sample], mtime=5)
    names = [m[0] for m in members(data)]
    assert names == [f"{key}.cls", f"{key}.txt"]
    [got] = read_with_core(io.BytesIO(data))
    assert got["__key__"] == key
    assert got["txt"] == b"hello"
    assert got["cls"] == b"7"


def test_members_are_written_in_sorted_key_order():
    sample = {"__key__": "k", "z": b"1", "a": b"2", "m.seg": b"3", "B": b"4", "é": b"5"}
    names = [m[0] for m in members(write_samples([sample]))]
    assert names == ["k." + k for k in sorted(k for k in sample if k != "__key__")]


def test_fixed_mtime_gives_byte_identical_shards(tmp_path):
    samples = [{"__key__": f"{i:04d}", "cls": i, "json": {"i": i}, "txt.gz": "t" * i} for i in range(50)]
    for suffix in ["tar", "tar.gz", "tar.bz2", "tar.xz"]:
        outs = []
        for run in range(2):
            path = tmp_path / f"run{run}.{suffix}"
            with W.TarWriter(str(path), mtime=1_700_000_000) as sink:
                for s in samples:
                    sink.write(s)
            outs.append(path.read_bytes())
            if run == 0:
                time.sleep(1.1)  # a clock-dependent field would now differ
        assert outs[0] == outs[1], suffix


def test_core_reader_round_trip_many_samples():
    samples = [{"__key__": f"k{i:05d}", "cls": i, "txt": "t" * (i % 700)} for i in range(3000)]
    data = write_samples(samples)
    got = read_with_core(io.BytesIO(data))
    assert [g["__key__"] for g in got] == [s["__key__"] for s in samples]
    assert all(g["cls"] == str(s["cls"]).encode() for g, s in zip(got, samples, strict=True))
    assert all(g["txt"] == s["txt"].encode() for g, s in zip(got, samples, strict=True))


def test_large_payloads_are_written_directly():
    big = np.random.default_rng(0).integers(0, 255, (3 << 20) + 5, dtype=np.uint8).tobytes()
    samples = [
        {"__key__": "a", "small": b"x"},
        {"__key__": "b", "big": big, "tail": b"y"},
        {"__key__": "c", "bytearray": bytearray(big[:70000]), "view": memoryview(big)[:1234]},
    ]
    got = members(write_samples(samples))
    assert [(n, len(p)) for n, p, _ in got] == [
        ("a.small", 1),
        ("b.big", len(big)),
        ("b.tail", 1),
        ("c.bytearray", 70000),
        ("c.view", 1234),
    ]
    assert got[1][1] == big
    assert got[3][1] == big[:70000]


def test_multidimensional_memoryview_is_written_by_byte_size():
    arr = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    [(_, payload, ti)] = members(write_samples([{"__key__": "a", "raw": memoryview(arr)}]))
    assert ti.size == arr.nbytes
    assert payload == arr.tobytes()


class ShortWriter(io.RawIOBase):
    """A raw stream that accepts at most 1000 bytes per write() call."""

    def __init__(self):
        self.data = bytearray()

    def writable(self):
        return True

    def write(self, b):
        n = min(len(b), 1000)
        self.data += bytes(b[:n])
        return n


def test_short_writes_are_retried():
    stream = ShortWriter()
    samples = [{"__key__": f"{i}", "txt": "abc" * i} for i in range(20)]
    with W.TarWriter(stream) as sink:
        for s in samples:
            sink.write(s)
    assert len(members(bytes(stream.data))) == 20


class NonBlocking(io.RawIOBase):
    def writable(self):
        return True

    def write(self, b):
        return None


def test_a_stream_that_accepts_nothing_raises():
    sink = W.TarWriter(NonBlocking())
    sink.write({"__key__": "a", "txt": "x"})
    with pytest.raises(OSError):
        sink.close()


# ---------------------------------------------------------------------------
# Sample rules: __key__, metadata, atomic samples
# ---------------------------------------------------------------------------


def test_missing_key_raises():
    with pytest.raises(ValueError, match="__key__"):
        write_samples([{"txt": "x"}])


def test_metadata_is_skipped_unless_keep_meta():
    sample = {"__key__": "a", "__url__": "u", "_note": "n", "txt": "x"}
    assert [m[0] for m in members(write_samples([sample]))] == ["a.txt"]
    kept = members(write_samples([sample], keep_meta=True))
    assert [(n, p) for n, p, _ in kept] == [("a.__url__", b"u"), ("a._note", b"n"), ("a.txt", b"x")]


def test_metadata_values_must_be_str():
    with pytest.raises(ValueError, match="string type"):
        write_samples([{"__key__": "a", "_meta": 3}])


def test_a_failing_sample_writes_nothing():
    buf = io.BytesIO()
    sink = W.TarWriter(buf, mtime=0)
    sink.write({"__key__": "good", "txt": "x"})
    with pytest.raises(ValueError, match="no handler"):
        sink.write({"__key__": "bad", "a": b"ok", "zzz_unknown": object()})
    with pytest.raises(ValueError, match="NUL"):
        sink.write({"__key__": "bad\0key", "txt": "x"})
    sink.write({"__key__": "after", "txt": "y"})
    sink.close()
    assert [m[0] for m in members(buf.getvalue())] == ["good.txt", "after.txt"]


def test_write_after_close_raises():
    sink = W.TarWriter(io.BytesIO())
    sink.close()
    sink.close()  # idempotent
    with pytest.raises(ValueError, match="closed"):
        sink.write({"__key__": "a", "txt": "x"})


def test_external_stream_is_left_open_and_path_is_closed(tmp_path):
    buf = io.BytesIO()
    W.TarWriter(buf).close()
    assert not buf.closed
    sink = W.TarWriter(str(tmp_path / "x.tar"))
    own = sink.own_fileobj
    sink.close()
    assert own.closed


def test_pathlike_output(tmp_path):
    path = tmp_path / "p.tar"
    with W.TarWriter(path) as sink:
        sink.write({"__key__": "a", "txt": "x"})
    assert members(path.read_bytes())[0][0] == "a.txt"


def test_unclosed_writer_is_flushed_with_a_resource_warning(tmp_path):
    path = tmp_path / "forgot.tar"
    sink = W.TarWriter(str(path))
    sink.write({"__key__": "a", "txt": "x"})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        del sink
        gc.collect()
    assert any(issubclass(w.category, ResourceWarning) for w in caught)
    assert members(path.read_bytes())[0][0] == "a.txt"


def test_invalid_owner_names_are_rejected():
    with pytest.raises(ValueError, match="32 bytes"):
        W.TarWriter(io.BytesIO(), user="u" * 40)


# ---------------------------------------------------------------------------
# Encoders
# ---------------------------------------------------------------------------


def test_default_encoders_by_extension():
    arr = np.arange(6, dtype=np.int16).reshape(2, 3)
    sample = {
        "__key__": "k",
        "cls": 3,
        "cls2": np.int64(4),
        "txt": "héllo",
        "html": "<b>",
        "json": {"a": [1, 2]},
        "npy": arr,
        "npz": {"x": arr},
        "ten": [arr, arr.astype(np.float32)],
        "mp": {"m": 1},
        "cbor": {"c": 2},
        "pyd": {"p": 3},
        "raw.bin": b"\x00\x01",
        "json.gz": {"z": 1},
        "TXT": "upper-case extension",
    }
    got = {n[2:]: p for n, p, _ in members(write_samples([sample]))}
    assert got["cls"] == b"3"
    assert got["cls2"] == b"4"
    assert got["txt"] == "héllo".encode()
    assert got["html"] == b"<b>"
    assert json.loads(got["json"]) == {"a": [1, 2]}
    np.testing.assert_array_equal(np.load(io.BytesIO(got["npy"])), arr)
    np.testing.assert_array_equal(np.load(io.BytesIO(got["npz"]))["x"], arr)
    from ppwebdataset import tenbin

    ten = tenbin.decode_buffer(got["ten"])
    np.testing.assert_array_equal(ten[1], arr.astype(np.float32))
    import cbor2
    import msgpack

    assert msgpack.unpackb(got["mp"]) == {"m": 1}
    assert cbor2.loads(got["cbor"]) == {"c": 2}
    assert pickle.loads(got["pyd"]) == {"p": 3}
    assert got["raw.bin"] == b"\x00\x01"
    assert json.loads(gzip.decompress(got["json.gz"])) == {"z": 1}
    assert got["TXT"] == b"upper-case extension"


def test_unknown_extension_for_non_bytes_raises():
    with pytest.raises(ValueError, match="no handler found for xyz"):
        write_samples([{"__key__": "k", "xyz": 1.5}])


def test_int_fast_path_matches_the_python_encoder():
    values = [0, -1, 7, 2**62, 2**70, -(2**65), True]
    got = members(write_samples([{"__key__": f"{i}", "cls": v} for i, v in enumerate(values)]))
    assert [p for _, p, _ in got] == [str(v).encode() for v in values]


def test_encoded_bytes_equal_webdataset_writer():
    """Same member names and payloads as webdataset 1.0.2's TarWriter for the default encoders."""
    wd_writer = pytest.importorskip("webdataset.writer")
    samples = [
        {
            "__key__": f"s{i}",
            "cls": i,
            "txt": "t" * i,
            "json": {"i": i, "l": [1, 2]},
            "npy": np.arange(i, dtype=np.float64),
            "mp": [i, "x"],
            "seg.txt": "seg",
            "bin": bytes([i]) * i,
        }
        for i in range(5)
    ]
    ours = members(write_samples(samples))
    buf = io.BytesIO()
    with wd_writer.TarWriter(buf) as sink:
        for s in samples:
            sink.write(s)
    theirs = members(buf.getvalue())
    assert [(n, p) for n, p, _ in ours] == [(n, p) for n, p, _ in theirs]


def test_image_encoders_round_trip():
    import PIL.Image

    rgb = np.random.default_rng(1).integers(0, 255, (8, 6, 3), dtype=np.uint8)
    gray = rgb[:, :, 0]
    sample = {"__key__": "i", "png": rgb, "ppm": gray, "jpg": rgb, "webp": rgb, "tiff": rgb / 255.0}
    got = {n[2:]: p for n, p, _ in members(write_samples([sample]))}
    np.testing.assert_array_equal(np.asarray(PIL.Image.open(io.BytesIO(got["png"]))), rgb)
    np.testing.assert_array_equal(np.asarray(PIL.Image.open(io.BytesIO(got["ppm"]))), gray)
    assert PIL.Image.open(io.BytesIO(got["jpg"])).format == "JPEG"
    assert PIL.Image.open(io.BytesIO(got["webp"])).format == "WEBP"
    assert np.abs(np.asarray(PIL.Image.open(io.BytesIO(got["tiff"]))).astype(int) - rgb).max() <= 1
    with pytest.raises(ValueError, match="out of range"):
        W.imageencoder(np.full((2, 2), 2.0))


def test_npz_dumps_is_validated():
    with pytest.raises(TypeError):
        W.numpy_npz_dumps(np.zeros(3))
    with pytest.raises(TypeError):
        W.numpy_npz_dumps({"a": [1, 2]})
    with pytest.raises(ValueError, match="object"):
        W.numpy_npz_dumps({"a": np.array([None])})


def test_bytestr():
    assert W.bytestr(b"x") == b"x"
    assert W.bytestr("y") == b"y"
    assert W.bytestr(12) == b"12"


def test_encoder_false_requires_bytes():
    assert [m[0] for m in members(write_samples([{"__key__": "a", "x": b"1"}], encoder=False))] == ["a.x"]
    with pytest.raises(ValueError, match="doesn't map to a bytes"):
        write_samples([{"__key__": "a", "x": "str is not bytes"}], encoder=False)


def test_callable_and_dict_encoders():
    def upper(sample):
        return {k: (v.upper().encode() if k[0] != "_" else v) for k, v in sample.items()}

    got = members(write_samples([{"__key__": "a", "txt": "abc"}], encoder=upper))
    assert got[0][1] == b"ABC"
    table = {"num": lambda x: f"<{x}>".encode()}
    got = members(write_samples([{"__key__": "a", "num": 5, "other": "s"}], encoder=table))
    assert [(n, p) for n, p, _ in got] == [("a.num", b"<5>"), ("a.other", b"s")]


def test_python_encode_helpers_match_upstream_semantics():
    handlers = W.make_handlers()
    assert W.encode_based_on_extension1(3, "cls", handlers) == b"3"
    assert W.encode_based_on_extension1("m", "__key__", handlers) == "m"
    assert gzip.decompress(W.encode_based_on_extension1("t", "txt.gz", handlers)) == b"t"
    with pytest.raises(ValueError):
        W.encode_based_on_extension1(3, "_meta", handlers)
    enc = W.make_encoder(True)
    assert enc({"__key__": "k", "cls": 1}) == {"__key__": "k", "cls": b"1"}
    assert W.make_encoder(False)({"a": 1}) == {"a": 1}
    with pytest.raises(ValueError):
        W.make_encoder(42)
    assert pickle.loads(pickle.dumps(enc))({"__key__": "k", "cls": 2})["cls"] == b"2"


# ---------------------------------------------------------------------------
# Compression
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "compress", "opener"),
    [
        ("a.tar", None, None),
        ("a.tar.gz", None, gzip.open),
        ("a.tgz", None, gzip.open),
        ("a.tar.bz2", None, bz2.open),
        ("a.tar.xz", None, lzma.open),
        ("a.tar", True, gzip.open),
        ("a.tar", "gz", gzip.open),
        ("a.tar", "bz2", bz2.open),
        ("a.tar", "xz", lzma.open),
        ("a.tar.gz", False, None),
        ("a.tar.gz", "bz2", bz2.open),  # an explicit choice wins over the suffix
    ],
)
def test_compression(tmp_path, name, compress, opener):
    path = tmp_path / name
    with W.TarWriter(str(path), compress=compress) as sink:
        for i in range(10):
            sink.write({"__key__": f"{i}", "txt": "data" * i})
    raw = path.read_bytes()
    if opener is None:
        assert raw[257:262] == b"ustar"
        plain = raw
    else:
        with opener(path) as f:
            plain = f.read()
    assert len(members(plain)) == 10
    if opener is not lzma.open:  # the native reader knows gzip and bzip2 only
        assert [s["__key__"] for s in read_with_core(str(path))] == [str(i) for i in range(10)]


def test_compression_on_an_external_stream():
    buf = io.BytesIO()
    with W.TarWriter(buf, compress="gz") as sink:
        sink.write({"__key__": "a", "txt": "x"})
    assert gzip.decompress(buf.getvalue())[257:262] == b"ustar"
    assert not buf.closed


def test_tarmode_and_bad_compress():
    assert W.TarWriter.tarmode("x.tar") == "w|"
    assert W.TarWriter.tarmode("x.tar.gz") == "w|gz"
    assert W.TarWriter.tarmode("x.tar.xz") == "w|xz"
    assert W.TarWriter.tarmode(io.BytesIO(), True) == "w|gz"
    assert W.TarWriter.tarmode(io.BytesIO(), "bz2") == "w|bz2"
    with pytest.raises(ValueError, match="compress"):
        W.TarWriter(io.BytesIO(), compress="zstd")
    with pytest.raises(ValueError, match="format"):
        W.TarWriter(io.BytesIO(), format="NOPE_FORMAT")
    W.TarWriter(io.BytesIO(), format="PAX_FORMAT").close()


# ---------------------------------------------------------------------------
# ShardWriter
# ---------------------------------------------------------------------------


def shard_keys(path):
    return [m[0] for m in members(path.read_bytes())]


def test_shardwriter_maxcount_and_start_shard(tmp_path):
    closed = []
    pattern = str(tmp_path / "s-%03d.tar")

    def post(fname):
        # The shard is complete and readable when post runs.
        closed.append((fname, len(members(open(fname, "rb").read()))))

    with wds.ShardWriter(pattern, maxcount=4, start_shard=7, post=post, verbose=0) as sink:
        for i in range(10):
            sink.write({"__key__": f"{i:02d}", "txt": "x"})
        assert sink.total == 10
    assert [c[1] for c in closed] == [4, 4, 2]
    assert [c[0][-9:] for c in closed] == ["s-007.tar", "s-008.tar", "s-009.tar"]
    assert shard_keys(tmp_path / "s-008.tar") == [f"{i:02d}.txt" for i in range(4, 8)]


def test_shardwriter_maxsize_counts_payload_bytes(tmp_path):
    pattern = str(tmp_path / "s-%d.tar")
    with wds.ShardWriter(pattern, maxsize=250, verbose=0) as sink:
        for i in range(10):
            sink.write({"__key__": f"{i}", "bin": b"x" * 100})
    # A shard is closed once it holds >= 250 payload bytes: 3 samples each.
    counts = [len(shard_keys(tmp_path / f"s-{n}.tar")) for n in range(4)]
    assert counts == [3, 3, 3, 1]


def test_shardwriter_opener_streams_are_closed(tmp_path):
    opened = []

    def opener(fname):
        f = open(fname, "wb")
        opened.append(f)
        return f

    pattern = str(tmp_path / "o-%d.tar.gz")
    with wds.ShardWriter(pattern, maxcount=2, opener=opener, verbose=0) as sink:
        for i in range(5):
            sink.write({"__key__": f"{i}", "txt": "x"})
    assert len(opened) == 3
    assert all(f.closed for f in opened)
    # The suffix still selects gzip when an opener supplies the stream.
    with gzip.open(tmp_path / "o-0.tar.gz") as f:
        assert len(members(f.read())) == 2


def test_shardwriter_writes_after_close_raise(tmp_path):
    sink = wds.ShardWriter(str(tmp_path / "c-%d.tar"), verbose=0)
    sink.write({"__key__": "a", "txt": "x"})
    sink.close()
    sink.close()
    with pytest.raises(ValueError, match="closed"):
        sink.write({"__key__": "b", "txt": "x"})


def test_shardwriter_pattern_needs_a_placeholder(tmp_path):
    with pytest.raises(TypeError, match="%-format"):
        wds.ShardWriter(str(tmp_path / "plain.tar"), verbose=0)


VERBOSE_SCRIPT = """
import sys, ppwebdataset as wds
with wds.ShardWriter(sys.argv[1] + "/v-%d.tar", maxcount=2, verbose=int(sys.argv[2])) as sink:
    for i in range(5):
        sink.write({"__key__": f"k{i}", "txt": "x" * 100})
"""


def _verbose_output(pythonpath, tmp_path, verbose):
    out = tmp_path / f"{pythonpath.name}-{verbose}"
    out.mkdir()
    env = dict(os.environ, PYTHONPATH=str(pythonpath))
    proc = subprocess.run(
        [sys.executable, "-c", VERBOSE_SCRIPT, str(out), str(verbose)], env=env, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.replace(str(out), "<dir>")


def test_shardwriter_verbose_prints_like_0_2_86(tmp_path):
    ours = Path(wds.__file__).resolve().parents[1]
    ref = Path(__file__).resolve().parents[2] / ".ref" / "ppwebdataset-0.2.86"
    printed = _verbose_output(ours, tmp_path, 1)
    assert printed.startswith("# writing <dir>/v-0.tar 0 0.0 GB 0\n") and printed.count("# writing") == 3
    if ref.is_dir():
        assert printed == _verbose_output(ref, tmp_path, 1)
    assert _verbose_output(ours, tmp_path, 0) == ""


def test_shardwriter_passes_options_to_tarwriter(tmp_path):
    with wds.ShardWriter(str(tmp_path / "m-%d.tar"), verbose=0, mtime=42, keep_meta=True) as sink:
        sink.write({"__key__": "a", "_m": "meta", "txt": "x"})
    got = members((tmp_path / "m-0.tar").read_bytes())
    assert [n for n, _, _ in got] == ["a._m", "a.txt"]
    assert {ti.mtime for _, _, ti in got} == {42}


# ---------------------------------------------------------------------------
# Property test: anything we write reads back identically
# ---------------------------------------------------------------------------

_name_chars = st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="./_\0")
_keys = st.lists(st.text(_name_chars, min_size=1, max_size=40), min_size=1, max_size=4).map("/".join)
_exts = st.text(st.characters(whitelist_categories=("Ll", "Nd")), min_size=1, max_size=8)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(_keys, st.dictionaries(_exts, st.binary(max_size=1500), min_size=1, max_size=4)),
        min_size=1,
        max_size=6,
        unique_by=lambda t: t[0],
    )
)
def test_property_round_trip(items):
    samples = [{"__key__": k, **fields} for k, fields in items]
    data = write_samples(samples, encoder=False, mtime=0)
    expected = [(f"{k}.{e}", fields[e]) for k, fields in items for e in sorted(fields)]
    assert [(n, p) for n, p, _ in members(data)] == expected
    got = read_with_core(io.BytesIO(data))
    assert [g["__key__"] for g in got] == [k for k, _ in items]
    for g, (_, fields) in zip(got, items, strict=True):
        assert {k: v for k, v in g.items() if not k.startswith("__")} == fields


def test_undecodable_names_from_the_reader_round_trip():
    # The reader turns non-UTF-8 name bytes into lone surrogates (like tarfile); writing them back
    # must restore the original bytes.
    key = b"caf\xe9-latin1".decode("utf-8", "surrogateescape")
    data = write_samples([{"__key__": key, "txt": "x"}])
    [(name, _, _)] = members(data)
    assert name == key + ".txt"
    raw = data[:100].rstrip(b"\0")
    assert raw == b"caf\xe9-latin1.txt"
    assert read_with_core(io.BytesIO(data))[0]["__key__"] == key
