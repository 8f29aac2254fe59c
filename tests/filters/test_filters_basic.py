"""Per-sample filters: currying, field selection, mapping, handlers, xdecode, caching."""

from __future__ import annotations

import io
import pickle
import sys
import types

import numpy as np
import pytest

import ppwebdataset.filters as F
from ppwebdataset.errors import UnsafeOperationError
from ppwebdataset.handlers import ignore_and_continue, ignore_and_stop, reraise_exception
from ppwebdataset.pipeline import DataPipeline


def samples(n=5, url="shard-0.tar"):
    return [{"__key__": f"k{i}", "__url__": url, "cls": i, "txt": f"t{i}"} for i in range(n)]


def double(x):
    return 2 * x


# --------------------------------------------------------------------------- currying


def test_pipelinefilter_curries_and_pickles():
    stage = F.map(double)
    assert isinstance(stage, F.FilterFunction)
    assert list(stage(iter([1, 2, 3]))) == [2, 4, 6]
    assert list(stage.run(iter([4]))) == [8]
    clone = pickle.loads(pickle.dumps(stage))
    assert list(clone(iter([5]))) == [10]
    assert "_map" in repr(stage)
    assert F.map.__doc__ == F._map.__doc__


def test_compose_and_pipeline():
    def add1(x):
        return x + 1

    f = F.compose(add1, double, add1)
    assert f(3) == 9
    assert pickle.loads(pickle.dumps(F.compose2(double, double)))(1) == 4
    assert F.pipeline([1, 2], F.map(double)) is not None
    assert list(F.pipeline(iter([1, 2]), F.map(double), F.map(add1))) == [3, 5]
    src = iter([1])
    assert F.pipeline(src) is src
    assert F.identity(7) == 7


def test_getfirst_and_field_spec():
    d = {"png": 1, "cls": 2}
    assert F.getfirst(d, "jpg;png") == 1
    assert F.getfirst(d, ["jpg", "cls"]) == 2
    assert F.getfirst(d, "jpg", default=5, missing_is_error=False) == 5
    with pytest.raises(ValueError, match="didn't find"):
        F.getfirst(d, "jpg")
    with pytest.raises(ValueError, match="space"):
        F.getfirst(d, "jpg png")
    assert F.parse_field_spec("jpg;png cls") == [["jpg", "png"], ["cls"]]
    assert F.parse_field_spec(["a", "b;c"]) == [["a"], ["b", "c"]]


def test_transform_with():
    assert F.transform_with((1, 2, 3), [double, None]) == [2, 2, 3]
    assert F.transform_with((1, 2), None) == (1, 2)
    with pytest.raises(ValueError):
        F.transform_with((1,), [double, double])


def test_dir_has_upstream_names():
    wanted = {
        "Cached", "FilterFunction", "LMDBCached", "PaddleTensor", "PipelineStage", "RestCurried",
        "associate", "batched", "compose", "compose2", "decode", "decode_bin", "decode_pickle",
        "decode_text", "default_collation_fn", "default_decoders", "detshuffle", "extract_keys",
        "find_decoder", "getfirst", "identity", "info", "log_keys", "map", "map_dict", "map_tuple",
        "parse_field_spec", "pick", "pipeline", "pipelinefilter", "rename", "rename_keys",
        "reraise_exception", "rsample", "select", "shuffle", "slice", "to_tuple", "transform_with",
        "unbatched", "unlisted", "xdecode", "combine_values", "tuple2dict", "dict2tuple", "listed",
        "_associate", "_batched", "_decode", "_extract_keys", "_info", "_log_keys", "_map", "_map_dict",
        "_map_tuple", "_rename", "_rename_keys", "_rsample", "_select", "_shuffle", "_to_tuple",
        "_unbatched", "_unlisted", "_xdecode",
    }  # fmt: skip
    missing = {n for n in wanted if not hasattr(F, n)}
    assert not missing


def test_importing_filters_does_not_import_paddle():
    import subprocess

    code = "import sys, ppwebdataset.filters; print('paddle' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# --------------------------------------------------------------------------- simple stages


def test_info_prints_first_samples():
    out = io.StringIO()
    result = list(F.info(n=2, stream=out, name="here")(iter(samples(4))))
    assert len(result) == 4
    text = out.getvalue()
    assert text.count("--- here") == 2
    assert "k1" in text and "k2" not in text
    out = io.StringIO()
    list(F.info(fmt="{__key__}", n=0, every=2, stream=out)(iter(samples(4))))
    assert out.getvalue().split() == ["k1", "k3"]


def test_select_and_slice():
    assert [s["cls"] for s in F.select(lambda s: s["cls"] % 2)(iter(samples(6)))] == [1, 3, 5]
    assert list(F.slice(2)(iter(range(10)))) == [0, 1]
    assert list(F.slice(1, 8, 3)(iter(range(10)))) == [1, 4, 7]


def test_map_drops_none_and_keeps_key():
    def f(s):
        if s["cls"] == 1:
            return None
        return {"__key__": "changed", "y": s["cls"] * 10}

    out = list(F.map(f)(iter(samples(3))))
    assert out == [{"__key__": "k0", "y": 0}, {"__key__": "k2", "y": 20}]
    # Non-dict results and inputs without a key are left alone.
    assert list(F.map(double)(iter([1, 2]))) == [2, 4]
    assert list(F.map(lambda s: {"a": 1})(iter([{"b": 2}]))) == [{"a": 1}]


def failing_on(n):
    def f(s):
        if s["cls"] == n:
            raise ValueError("boom")
        return s

    return f


def test_map_handler_routing_names_the_sample():
    seen = []

    def handler(exn):
        seen.append(exn)
        return True

    out = list(F.map(failing_on(2), handler=handler)(iter(samples(5))))
    assert [s["cls"] for s in out] == [0, 1, 3, 4]
    assert len(seen) == 1
    msg = str(seen[0])
    assert "boom" in msg and "k2" in msg and "shard-0.tar" in msg and "map" in msg
    # False stops the stage quietly.
    assert [s["cls"] for s in F.map(failing_on(2), handler=ignore_and_stop)(iter(samples(5)))] == [0, 1]
    with pytest.raises(ValueError, match=r"boom.*k2"):
        list(F.map(failing_on(2))(iter(samples(5))))


def test_exception_without_plain_message_gets_a_note():
    def f(s):
        raise OSError(2, "No such file")

    with pytest.raises(OSError) as info:
        list(F.map(f)(iter(samples(1))))
    assert info.value.errno == 2
    assert any("k0" in note for note in info.value.__notes__)


def test_rename():
    src = [{"__key__": "a", "png": 1, "cls": 2, "extra": 3}]
    out = list(F.rename(image="jpg;png", label="cls")(iter(src)))
    assert out == [{"__key__": "a", "extra": 3, "image": 1, "label": 2}]
    out = list(F.rename(image="jpg;png", keep=False)(iter(src)))
    assert out == [{"image": 1}]
    with pytest.raises(ValueError, match=r"didn't find.*'a'"):
        list(F.rename(image="jpg")(iter(src)))
    assert list(F.rename(image="jpg", handler=ignore_and_continue)(iter(src))) == []


def test_associate():
    src = [{"__key__": "a"}, {"__key__": "b"}]
    out = list(F.associate({"a": {"x": 1}})(iter(src)))
    assert out == [{"__key__": "a", "x": 1}, {"__key__": "b"}]
    out = list(F.associate(lambda k: {"y": k.upper()})(iter([{"__key__": "c"}])))
    assert out == [{"__key__": "c", "y": "C"}]


def test_map_dict():
    out = list(F.map_dict(cls=double, txt=str.upper)(iter(samples(2))))
    assert [(s["cls"], s["txt"]) for s in out] == [(0, "T0"), (2, "T1")]
    with pytest.raises(ValueError):
        list(F.map_dict()(iter([])))
    with pytest.raises(TypeError):
        list(F.map_dict(cls=3)(iter([])))
    seen = []
    out = list(F.map_dict(missing=double, handler=lambda e: seen.append(e) or True)(iter(samples(2))))
    assert out == [] and len(seen) == 2 and "k1" in str(seen[1])


def test_to_tuple():
    src = [{"__key__": "a", "png": 1, "cls": 2}, {"__key__": "b", "jpg": 3, "cls": None}]
    assert list(F.to_tuple("jpg;png", "cls", none_is_error=False)(iter(src))) == [(1, 2), (3, None)]
    assert list(F.to_tuple("jpg;png cls", handler=ignore_and_continue)(iter(src))) == [(1, 2)]
    with pytest.raises(ValueError, match=r"None.*'b'"):
        list(F.to_tuple("jpg;png", "cls")(iter(src)))
    out = list(F.to_tuple("jpg", "txt", missing_is_error=False)(iter(src)))
    assert out == [(None, None), (3, None)]
    with pytest.raises(ValueError, match=r"didn't find \['txt'\].*__key__='a'"):
        list(F.to_tuple("png", "txt")(iter(src)))
    # Numpy arrays are checked for None by identity (no elementwise comparison).
    arr = np.zeros(3)
    assert list(F.to_tuple("a")(iter([{"a": arr}])))[0][0] is arr
    assert list(F.to_tuple(["png", "jpg"])(iter(src))) == [(1,), (3,)]


def test_map_tuple():
    assert list(F.map_tuple(double, None)(iter([(1, 2), (3, 4)]))) == [(2, 2), (6, 4)]
    assert list(F.map_tuple(double, double, double)(iter([(1,)]))) == [(2,)]
    with pytest.raises(TypeError):
        list(F.map_tuple(5)(iter([])))
    seen = []
    out = list(F.map_tuple(lambda x: 1 / x, handler=lambda e: seen.append(e) or True)(iter([(0,), (2,)])))
    assert out == [(0.5,)] and isinstance(seen[0], ZeroDivisionError)


def test_rsample_own_rng():
    data = list(range(2000))
    a = list(F.rsample(0.3, seed=5)(iter(data)))
    b = list(F.rsample(0.3, seed=5)(iter(data)))
    assert a == b and 450 < len(a) < 750
    import random

    random.seed(0)
    c = list(F.rsample(0.5)(iter(data)))
    random.seed(0)
    d = list(F.rsample(0.5)(iter(data)))
    assert c != d  # not tied to the global generator
    assert list(F.rsample(1.0)(iter(data))) == data
    assert list(F.rsample(0.0)(iter(data))) == []
    with pytest.raises(ValueError):
        list(F.rsample(1.5)(iter(data)))


def test_extract_keys():
    src = [{"__key__": "a", "x.jpg": 1, "cls": 2}]
    assert list(F.extract_keys("*.jpg", "cls")(iter(src))) == [(1, 2)]
    assert list(F.extract_keys("*.png;*.jpg")(iter(src))) == [(1,)]
    assert list(F.extract_keys("*.png", "cls", ignore_missing=True)(iter(src))) == [(2,)]
    with pytest.raises(ValueError, match=r"Cannot find.*'a'"):
        list(F.extract_keys("*.png")(iter(src)))
    with pytest.raises(ValueError, match="Multiple"):
        list(F.extract_keys("*")(iter([{"a.jpg": 1, "b.jpg": 2}])))


def test_rename_keys():
    src = [{"dir/A.JPG": 1, "b.cls": 2, "other": 3}]
    assert list(F.rename_keys(image="*.jpg", label="*.cls")(iter(src))) == [{"image": 1, "label": 2}]
    out = list(F.rename_keys(("image", "*.jpg"), keep_unselected=True)(iter(src)))
    assert out == [{"image": 1, "b.cls": 2, "other": 3}]
    with pytest.raises(ValueError, match="Not all patterns"):
        list(F.rename_keys(image="*.png")(iter(src)))
    with pytest.raises(ValueError, match="Duplicate"):
        list(F.rename_keys(x="*")(iter(src)))
    assert list(F.rename_keys(x="*", duplicate_is_error=False)(iter(src))) == [{"x": 1}]


def test_log_keys(tmp_path):
    log = tmp_path / "keys.log"
    out = list(F.log_keys(str(log))(iter(samples(3))))
    assert len(out) == 3
    lines = log.read_text().splitlines()
    assert [ln.split("\t")[3] for ln in lines] == ["k0", "k1", "k2"]
    assert list(F.log_keys()(iter([1, 2]))) == [1, 2]


# --------------------------------------------------------------------------- decode / xdecode


class FakeDecoder:
    """Upper-cases bytes; fails on a field named 'bad'."""

    def __init__(self, handlers, **kw):
        self.handlers = handlers
        self.kw = kw

    def __call__(self, sample):
        if "bad" in sample:
            raise ValueError("cannot decode bad")
        return {k: (v.upper() if isinstance(v, bytes) else v) for k, v in sample.items()}


def test_decode_routes_errors_and_builds_image_handlers(monkeypatch):
    made = []
    fake = types.ModuleType("ppwebdataset.autodecode")
    fake.Decoder = FakeDecoder
    fake.ImageHandler = lambda spec: made.append(spec) or ("img", spec)
    monkeypatch.setitem(sys.modules, "ppwebdataset.autodecode", fake)

    src = [{"__key__": "a", "x": b"ab"}, {"__key__": "b", "__url__": "u.tar", "bad": b""}, {"__key__": "c"}]
    seen = []
    out = list(F.decode("rgb8", handler=lambda e: seen.append(e) or True)(iter(src)))
    assert made == ["rgb8"]
    assert out[0] == {"__key__": "a", "x": b"AB"} and len(out) == 2
    assert "'b'" in str(seen[0]) and "u.tar" in str(seen[0])
    with pytest.raises(ValueError, match="bad"):
        list(F.decode()(iter(src)))
    with pytest.raises(TypeError, match="dict samples"):
        list(F.decode()(iter([(1, 2)])))


def test_decode_with_real_autodecode():
    autodecode = pytest.importorskip("ppwebdataset.autodecode")
    if not hasattr(autodecode, "Decoder"):
        pytest.skip("autodecode has no Decoder yet")
    out = list(F.decode()(iter([{"__key__": "a", "cls": b"3", "txt": b"hi"}])))
    assert out == [{"__key__": "a", "cls": 3, "txt": "hi"}]


def test_xdecode_and_find_decoder(monkeypatch):
    monkeypatch.delenv("PPWDS_ALLOW_PICKLE", raising=False)
    src = [{"__key__": "a", "x.txt": b"hello", "y.bin": b"\x00\x01"}]
    assert list(F.xdecode()(iter(src))) == [{"__key__": "a", "x.txt": "hello", "y.bin": b"\x00\x01"}]
    out = list(F.xdecode(("*.txt", lambda s: len(s.read())))(iter(src)))
    assert out[0]["x.txt"] == 5
    out = list(F.xdecode(txt=False)(iter(src)))
    assert out[0]["x.txt"] == b"hello"
    with pytest.raises(ValueError, match=r"No decoder found for z\.png.*'a'"):
        list(F.xdecode()(iter([{"__key__": "a", "z.png": b""}])))
    assert list(F.xdecode(must_decode=False)(iter([{"z.png": b"1"}]))) == [{"z.png": b"1"}]
    assert F.find_decoder(F.default_decoders, "dir/X.TXT") is F.decode_text
    assert F.find_decoder(F.default_decoders, "dir/__meta__")(5) == 5
    assert F.find_decoder(F.default_decoders, "a.png") is None


def test_pickle_is_off_by_default(monkeypatch):
    payload = pickle.dumps({"v": 1})
    monkeypatch.delenv("PPWDS_ALLOW_PICKLE", raising=False)
    with pytest.raises(UnsafeOperationError, match="PPWDS_ALLOW_PICKLE=1"):
        list(F.xdecode()(iter([{"__key__": "a", "x.pyd": payload}])))
    with pytest.raises(UnsafeOperationError):
        F.decode_pickle(io.BytesIO(payload))
    monkeypatch.setenv("PPWDS_ALLOW_PICKLE", "1")
    assert list(F.xdecode()(iter([{"x.pyd": payload}]))) == [{"x.pyd": {"v": 1}}]


# --------------------------------------------------------------------------- caching


def counting_source(counter, n=4):
    def gen(_=None):
        for i in range(n):
            counter.append(i)
            yield {"__key__": f"k{i}", "v": i}

    return gen


def test_cached_replays_complete_pass_only():
    pulled = []
    stage = F.Cached()
    gen = counting_source(pulled)
    first = stage.run(gen())
    assert next(first)["v"] == 0
    first.close()  # incomplete: not cached
    assert [s["v"] for s in stage.run(gen())] == [0, 1, 2, 3]
    pulled.clear()
    assert [s["v"] for s in stage.run(gen())] == [0, 1, 2, 3]
    assert pulled == []


def test_cached_in_a_pipeline():
    pulled = []
    ds = DataPipeline(counting_source(pulled), F.Cached())
    assert len(list(ds)) == 4
    assert len(list(ds)) == 4
    assert pulled == [0, 1, 2, 3]


def test_lmdb_cached(tmp_path):
    pytest.importorskip("lmdb")
    db = tmp_path / "cache.lmdb"
    pulled = []
    gen = counting_source(pulled, n=30)
    # Repeated __key__ values (as across shards) must not overwrite each other.
    stage = F.LMDBCached(str(db), map_size=1 << 24, chunksize=7)
    items = [dict(s, __key__="same") for s in gen()]
    assert [s["v"] for s in stage.run(iter(items))] == list(range(30))
    stage2 = pickle.loads(pickle.dumps(stage))
    assert stage2.is_complete()
    assert [s["v"] for s in stage2.run(iter([]))] == list(range(30))
    stage.close()
    stage2.close()


def test_lmdb_cached_discards_interrupted_pass(tmp_path):
    pytest.importorskip("lmdb")
    stage = F.LMDBCached(str(tmp_path / "c"), map_size=1 << 24, chunksize=1)
    it = stage.run(iter([{"v": i} for i in range(10)]))
    for _ in range(5):
        next(it)
    it.close()
    assert not stage.is_complete()
    assert [s["v"] for s in stage.run(iter([{"v": 100 + i} for i in range(3)]))] == [100, 101, 102]
    assert [s["v"] for s in stage.run(iter([]))] == [100, 101, 102]
    stage.close()


def test_lmdb_missing_gives_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "lmdb", None)
    with pytest.raises(ImportError, match="pip install lmdb"):
        F.LMDBCached("/nonexistent")


def test_reraise_exception_is_exported():
    assert F.reraise_exception is reraise_exception
    with pytest.raises(KeyError):
        F.reraise_exception(KeyError("x"))


def test_fields_named_like_the_stream_parameter():
    # Upstream's first parameter (`data`/`source`) clashed with fields of the same name.
    src = [{"__key__": "a", "data": 1, "source": 2}]
    assert list(F.rename(data="source", keep=False)(iter(src))) == [{"data": 2}]
    assert list(F.map_dict(data=double, source=double)(iter([dict(src[0])]))) == [
        {"__key__": "a", "data": 2, "source": 4}
    ]
    assert list(F.rename_keys(data="data")(iter(src))) == [{"data": 1}]
    assert list(F.xdecode(data=False, source=False, must_decode=False)(iter(src))) == src
