"""Decoder, handlers, image specs and the pickle switch."""

from __future__ import annotations

import gzip
import importlib.util
import io
import json
import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ppwebdataset as wds
from ppwebdataset import autodecode as ad
from ppwebdataset.errors import DecodingError, UnsafeOperationError


def png_bytes(arr, mode=None, fmt="PNG"):
    import PIL.Image

    img = PIL.Image.fromarray(arr) if mode is None else PIL.Image.fromarray(arr).convert(mode)
    buf = io.BytesIO()
    img.save(buf, format=fmt)
    return buf.getvalue()


RGB = np.random.default_rng(3).integers(0, 256, (5, 7, 3), dtype=np.uint8)


@pytest.fixture
def no_pickle(monkeypatch):
    monkeypatch.delenv("PPWDS_ALLOW_PICKLE", raising=False)
    monkeypatch.setattr(ad, "ALLOW_PICKLE", False)


# ---------------------------------------------------------------------------
# basichandlers and the default chain
# ---------------------------------------------------------------------------


def test_basic_types(no_pickle):
    import cbor2
    import msgpack

    from ppwebdataset import tenbin

    arr = np.arange(6, dtype=np.float32).reshape(2, 3)
    npy = io.BytesIO()
    np.save(npy, arr)
    npz = io.BytesIO()
    np.savez(npz, a=arr, b=arr[0])
    sample = {
        "__key__": "k",
        "txt": "héllo".encode(),
        "text": b"t",
        "transcript": b"tr",
        "cls": b"12",
        "cls2": b" 3\n",
        "index": b"4",
        "inx": b"5",
        "id": b"6",
        "json": b'{"a": [1, 2]}',
        "jsn": b"[1]",
        "mp": msgpack.packb({"m": 1}),
        "msg": msgpack.packb([1]),
        "cbor": cbor2.dumps({"c": 1}),
        "npy": npy.getvalue(),
        "npz": npz.getvalue(),
        "ten": bytes(tenbin.encode_buffer([arr])),
        "tb": bytes(tenbin.encode_buffer([arr, arr])),
        "unknown": b"raw",
        "seg.txt": b"last extension wins",
    }
    out = ad.Decoder([])(sample)
    assert out["txt"] == "héllo"
    assert (out["text"], out["transcript"]) == ("t", "tr")
    assert [out[k] for k in ("cls", "cls2", "index", "inx", "id")] == [12, 3, 4, 5, 6]
    assert out["json"] == {"a": [1, 2]} and out["jsn"] == [1]
    assert out["mp"] == {"m": 1} and out["msg"] == [1]
    assert out["cbor"] == {"c": 1}
    np.testing.assert_array_equal(out["npy"], arr)
    assert isinstance(out["npz"], dict) and set(out["npz"]) == {"a", "b"}
    np.testing.assert_array_equal(out["npz"]["b"], arr[0])
    np.testing.assert_array_equal(out["ten"][0], arr)
    assert len(out["tb"]) == 2
    assert out["unknown"] == b"raw"
    assert out["seg.txt"] == "last extension wins"


def test_matches_webdataset_for_safe_types():
    wd = pytest.importorskip("webdataset.autodecode")
    import msgpack

    arr = np.arange(4, dtype=np.int32)
    npy = io.BytesIO()
    np.save(npy, arr)
    sample = {
        "__key__": b"key",
        "__url__": "u",
        "txt": b"x",
        "cls": b"7",
        "json": b'{"a": null}',
        "json.gz": gzip.compress(b"[1, 2]"),
        "mp": msgpack.packb({"a": 1}),
        "npy": npy.getvalue(),
        "bin": b"\x00",
        "null.json": b"null",  # a decoder returning None falls through to the raw bytes
        "Upper.TXT": b"case-sensitive extension",
    }
    ours = ad.Decoder([])(dict(sample))
    theirs = wd.Decoder([])(dict(sample))
    assert ours.keys() == theirs.keys()
    for k in ours:
        if isinstance(ours[k], np.ndarray):
            np.testing.assert_array_equal(ours[k], theirs[k])
        else:
            assert ours[k] == theirs[k], k


def test_meta_fields_are_not_decoded_and_bytes_become_str():
    seen = []

    def spy(key, data):
        seen.append(key)

    with pytest.warns(UserWarning, match="__weird"):
        out = ad.Decoder([spy])({"__key__": b"k", "__url__": "u", "__weird": b"\xff", "txt": b"x"})
    assert out["__key__"] == "k"
    assert out["__url__"] == "u"
    assert out["__weird"] == b"\xff"  # not UTF-8: kept as bytes
    assert seen == [".txt"]


def test_gz_fields_are_decoded_by_inner_extension_and_keep_their_key():
    out = ad.Decoder([])({"__key__": "k", "json.gz": gzip.compress(b'{"x": 1}'), "bin.gz": gzip.compress(b"z")})
    assert out["json.gz"] == {"x": 1}
    assert out["bin.gz"] == b"z"


def test_only_and_partial():
    sample = {"__key__": "k", "txt": b"a", "cls": b"1", "done": 5}
    out = ad.Decoder([], only="txt", partial=True)(sample)
    assert out == {"__key__": "k", "txt": "a", "cls": b"1", "done": 5}
    out = ad.Decoder([], only=["cls"])({"__key__": "k", "txt": b"a", "cls": b"1"})
    assert out == {"__key__": "k", "txt": b"a", "cls": 1}
    with pytest.raises(DecodingError) as info:
        ad.Decoder([])(sample)
    assert info.value.k == "done"
    assert "partial=True" in str(info.value.__cause__)


def test_handler_order_continue_and_fallthrough():
    calls = []

    def first(key, data):
        calls.append(("first", key))
        if key == ".txt":
            return "overridden"
        return None

    def decompress_z(key, data):
        if key.endswith(".z"):
            return ad.Continue(key[:-2], data.upper())
        return None

    dec = ad.Decoder([first, decompress_z])
    out = dec({"__key__": "k", "txt": b"a", "cls.z": b"7", "json": b"1"})
    assert out == {"__key__": "k", "txt": "overridden", "cls.z": 7, "json": 1}
    # Continue resumes after the handler that returned it: `first` sees only original keys.
    assert ("first", ".cls") not in calls
    assert dec.decode1("txt", b"q") == "overridden"


def test_continue_from_a_pre_handler_reaches_user_handlers():
    dec = ad.Decoder([ad.handle_extension("seg", lambda b: b.decode()[::-1])])
    assert dec({"__key__": "k", "seg.gz": gzip.compress(b"abc")})["seg.gz"] == "cba"


def test_custom_pre_and_post():
    dec = ad.Decoder([], pre=[], post=[])
    sample = {"__key__": "k", "txt": b"x", "json.gz": gzip.compress(b"1")}
    assert dec(sample) == sample
    with pytest.raises(TypeError):
        ad.Decoder([42])
    with pytest.raises(TypeError):
        ad.Decoder(ad.basichandlers)


def test_mutating_the_handler_list_is_honoured():
    dec = ad.Decoder([])
    assert dec({"__key__": "k", "txt": b"x"})["txt"] == "x"
    dec.handlers.insert(0, lambda key, data: "new")
    assert dec({"__key__": "k", "txt": b"x"})["txt"] == "new"


def test_decoding_error_carries_context():
    sample = {"__key__": "key1", "__url__": "shard.tar", "json": b"{not json"}
    with pytest.raises(DecodingError) as info:
        ad.Decoder([])(sample)
    err = info.value
    assert (err.url, err.key, err.k) == ("shard.tar", "key1", "json")
    assert err.sample is sample
    assert isinstance(err.__cause__, json.JSONDecodeError)


def test_non_dict_sample_is_rejected():
    with pytest.raises(TypeError):
        ad.Decoder([])([("txt", b"x")])


def test_npy_refuses_object_arrays():
    buf = io.BytesIO()
    np.save(buf, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(DecodingError):
        ad.Decoder([])({"__key__": "k", "npy": buf.getvalue()})


# ---------------------------------------------------------------------------
# Pickle switch
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("ext", ["pyd", "pickle", "pkl"])
def test_unpickling_is_off_by_default(no_pickle, ext):
    with pytest.raises(DecodingError) as info:
        ad.Decoder([])({"__key__": "k", ext: pickle.dumps({"a": 1})})
    cause = info.value.__cause__
    assert isinstance(cause, UnsafeOperationError)
    assert "PPWDS_ALLOW_PICKLE=1" in str(cause)
    assert "ALLOW_PICKLE = True" in str(cause)


def test_unpickling_can_be_enabled(no_pickle, monkeypatch):
    payload = {"__key__": "k", "pkl": pickle.dumps({"a": 1})}
    monkeypatch.setenv("PPWDS_ALLOW_PICKLE", "1")
    assert ad.Decoder([])(payload)["pkl"] == {"a": 1}
    monkeypatch.delenv("PPWDS_ALLOW_PICKLE")
    monkeypatch.setattr(ad, "ALLOW_PICKLE", True)
    assert ad.Decoder([])(payload)["pkl"] == {"a": 1}


@pytest.mark.parametrize("ext", ["pth", "pdparams"])
def test_paddle_load_is_off_by_default(no_pickle, ext):
    with pytest.raises(DecodingError) as info:
        ad.Decoder([])({"__key__": "k", ext: b"whatever"})
    assert isinstance(info.value.__cause__, UnsafeOperationError)
    with pytest.raises(UnsafeOperationError):
        ad.torch_loads(b"x")


def test_paddle_load_round_trip_when_enabled(no_pickle, monkeypatch):
    paddle = pytest.importorskip("paddle")
    from ppwebdataset.writer import paddle_dumps

    monkeypatch.setattr(ad, "ALLOW_PICKLE", True)
    state = {"w": paddle.to_tensor(np.arange(3, dtype=np.float32))}
    out = ad.Decoder([])({"__key__": "k", "pdparams": paddle_dumps(state)})
    np.testing.assert_array_equal(np.asarray(out["pdparams"]["w"]), np.arange(3, dtype=np.float32))


# ---------------------------------------------------------------------------
# Extension handlers
# ---------------------------------------------------------------------------


def test_handle_extension_matching():
    h = ad.handle_extension("jpg jpeg seg.png", lambda b: "hit")
    assert h(".jpg", b"") == "hit"
    assert h(".x.JPEG", b"") == "hit"
    assert h(".seg.png", b"") == "hit"
    assert h(".a.seg.png", b"") == "hit"
    assert h(".png", b"") is None
    assert h(".jpgx", b"") is None
    assert ad.call_extension_handler(".a.b", b"d", lambda b: b, ["b"]) == b"d"


def test_audio_and_video_handlers_ignore_other_extensions():
    assert ad.paddle_autdio is ad.paddle_audio
    for h in (ad.paddle_audio, ad.torch_audio, ad.torch_video):
        assert h(".txt", b"x") is None
    dec = ad.Decoder([ad.torch_video, ad.paddle_audio])
    assert dec({"__key__": "k", "txt": b"x"})["txt"] == "x"


@pytest.mark.skipif(importlib.util.find_spec("torchvision") is not None, reason="torchvision is installed")
def test_torch_video_without_torchvision_says_so():
    with pytest.raises(ImportError, match="torchvision"):
        ad.torch_video(".mp4", b"x")


# ---------------------------------------------------------------------------
# Images
# ---------------------------------------------------------------------------


def test_image_extensions_include_webp_and_common_formats():
    assert {"jpg", "jpeg", "png", "webp", "bmp", "gif", "tif", "tiff", "ppm"} <= set(ad.IMAGE_EXTENSIONS)


@pytest.mark.parametrize("spec", ["l8", "rgb8", "rgba8", "l", "rgb", "rgba"])
@pytest.mark.parametrize("source_mode", ["RGB", "RGBA", "L", "P"])
def test_numpy_specs_match_webdataset(spec, source_mode):
    wd = pytest.importorskip("webdataset.autodecode")
    data = png_bytes(RGB, source_mode)
    ours = ad.ImageHandler(spec)(".png", data)
    theirs = wd.ImageHandler(spec)(".png", data)
    assert ours.dtype == theirs.dtype
    assert ours.shape == theirs.shape
    np.testing.assert_array_equal(ours, theirs)


def test_numpy_spec_values():
    data = png_bytes(RGB)
    np.testing.assert_array_equal(ad.imagehandler("rgb8")(".png", data), RGB)
    f = ad.imagehandler("rgb")(".PNG", data)
    assert f.dtype == np.float32
    np.testing.assert_allclose(f, RGB / 255.0, rtol=1e-6)
    assert ad.imagehandler("l8")(".png", data).shape == (5, 7)
    rgba = ad.imagehandler("rgba8")(".png", data)
    assert rgba.shape == (5, 7, 4) and (rgba[:, :, 3] == 255).all()


@pytest.mark.parametrize(("spec", "mode"), [("pil", "RGB"), ("pilrgb", "RGB"), ("pilrgba", "RGBA"), ("pill", "L")])
def test_pil_specs(spec, mode):
    img = ad.imagehandler(spec)(".png", png_bytes(RGB))
    assert img.mode == mode
    assert img.size == (7, 5)


def test_image_handler_skips_other_extensions_and_unknown_specs():
    assert ad.imagehandler("rgb")(".txt", b"x") is None
    assert ad.imagehandler("rgb", extensions=["foo"])(".png", b"x") is None
    assert ad.imagehandler("RGB8").imagespec == "rgb8"
    with pytest.raises(ValueError, match="Unknown imagespec"):
        ad.ImageHandler("rgb16")


def test_webp_and_jpeg_decode():
    assert ad.imagehandler("rgb8")(".webp", png_bytes(RGB, fmt="WEBP")).shape == (5, 7, 3)
    assert ad.imagehandler("rgb8")(".jpg", png_bytes(RGB, fmt="JPEG")).shape == (5, 7, 3)


def test_image_decoding_in_a_decoder_keeps_other_fields():
    dec = ad.Decoder([ad.imagehandler("rgb8")])
    out = dec({"__key__": "k", "jpg": png_bytes(RGB, fmt="PNG"), "cls": b"2"})
    np.testing.assert_array_equal(out["jpg"], RGB)
    assert out["cls"] == 2


def test_a_subclass_overriding_call_is_called():
    class Counting(ad.ImageHandler):
        calls = 0

        def __call__(self, key, data):
            Counting.calls += 1
            return super().__call__(key, data)

    dec = ad.Decoder([Counting("rgb8")])
    dec({"__key__": "k", "png": png_bytes(RGB), "txt": b"x"})
    assert Counting.calls == 2


@pytest.mark.parametrize(
    ("spec", "channels", "dtype"),
    [
        ("paddle", 3, "float32"),
        ("paddlergb", 3, "float32"),
        ("paddlergba", 4, "float32"),
        ("paddlel", 1, "float32"),
        ("paddlergb8", 3, "uint8"),
        ("paddlergba8", 4, "uint8"),
        ("paddlel8", 1, "uint8"),
    ],
)
def test_paddle_specs_give_chw_cpu_tensors(spec, channels, dtype):
    paddle = pytest.importorskip("paddle")
    t = ad.imagehandler(spec)(".png", png_bytes(RGB))
    assert isinstance(t, paddle.Tensor)
    # Grey images are 2-D [H, W], like upstream's torchl/torchl8.
    assert tuple(t.shape) == ((channels, 5, 7) if channels > 1 else (5, 7))
    assert str(t.dtype).endswith(dtype)
    assert t.place.is_cpu_place()
    arr = t.numpy()
    if channels == 3:
        expected = RGB.transpose(2, 0, 1)
        if dtype == "float32":
            np.testing.assert_allclose(arr, expected / 255.0, rtol=1e-6)
        else:
            np.testing.assert_array_equal(arr, expected)


@pytest.mark.skipif(importlib.util.find_spec("torch") is not None, reason="torch is installed")
def test_torch_specs_without_torch_raise_a_clear_error():
    with pytest.raises(ImportError, match="torch"):
        ad.imagehandler("torchrgb")


def test_top_level_exports():
    assert wds.Decoder is ad.Decoder
    assert wds.Continue is ad.Continue
    assert wds.gzfilter is ad.gzfilter
    assert wds.paddle_autdio is ad.paddle_audio
    assert ad.DecodingError is wds.DecodingError


def test_decoders_pickle_for_spawned_workers():
    dec = ad.Decoder([ad.imagehandler("rgb8"), ad.handle_extension("seg", bytes.upper)], only=["png", "seg", "txt"])
    sample = {"__key__": "k", "png": png_bytes(RGB), "seg": b"s", "txt": b"t", "cls": b"1"}
    dec(sample)  # plans are built
    clone = pickle.loads(pickle.dumps(dec))
    out = clone(sample)
    np.testing.assert_array_equal(out["png"], RGB)
    assert (out["seg"], out["txt"], out["cls"]) == (b"S", "t", b"1")


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=200, deadline=None)
@given(_json_values, st.sampled_from(["", " ", "\n", "\t "]), st.sampled_from(["", " ", "\n\n", "x", ",", "]"]))
def test_json_decoder_agrees_with_json_loads(value, before, after):
    data = (before + json.dumps(value) + after).encode()
    for raw in (data, json.dumps(value, ensure_ascii=False).encode()):
        try:
            expected = json.loads(raw)
        except ValueError as exn:
            with pytest.raises(type(exn)):
                ad.decoders["json"](raw)
        else:
            assert ad.decoders["json"](raw) == expected


@pytest.mark.parametrize(
    "raw",
    [b"{", b"[1,", b"{}x", b"[] ", b'{"a": NaN}', b"[1e400]", b"\xef\xbb\xbf[1]", "[1]".encode("utf-16-le"), b"[\xff]"],
)
def test_json_decoder_edge_cases_agree_with_json_loads(raw):
    try:
        expected = json.loads(raw)
    except Exception as exn:  # noqa: BLE001
        with pytest.raises(type(exn)):
            ad.decoders["json"](raw)
    else:
        assert ad.decoders["json"](raw) == expected
