"""decode(spec, native=True) in pipelines: same outputs as the PIL path, errors, threads, workers."""

from __future__ import annotations

import io
import json
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))

from corpus import photo  # noqa: E402

import ppwebdataset as wds  # noqa: E402
from ppwebdataset.errors import DecodingError  # noqa: E402

NUMPY_SPECS = ["l8", "rgb8", "rgba8", "l", "rgb", "rgba"]
PADDLE_SPECS = ["paddlel8", "paddlergb8", "paddlergba8", "paddlel", "paddlergb", "paddle", "paddlergba"]


def _encode(arr, fmt, **kw):
    b = io.BytesIO()
    Image.fromarray(arr).save(b, fmt, **kw)
    return b.getvalue()


def _write(path, samples):
    with tarfile.open(path, "w") as tf:
        for key, fields in samples:
            for ext, data in fields.items():
                info = tarfile.TarInfo(f"{key}.{ext}")
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
    return str(path)


def _samples(n, start=0, bad=()):
    out = []
    for i in range(start, start + n):
        arr = photo(20 + i % 7, 30 + i % 5, i)
        fields = {
            "jpg": _encode(arr, "JPEG", quality=90),
            "png": _encode(arr, "PNG"),
            "gif": _encode(arr, "GIF"),  # not native: still decoded by PIL
            "cls": str(i).encode(),
            "json": json.dumps({"i": i}).encode(),
        }
        if i in bad:
            fields["jpg"] = b"\xff\xd8\xff\xe0 this is not a jpeg"
        out.append((f"{i:05d}", fields))
    return out


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    root = tmp_path_factory.mktemp("native")
    return [_write(root / f"shard-{s}.tar", _samples(12, start=s * 12)) for s in range(3)]


@pytest.fixture(scope="module")
def bad_shard(tmp_path_factory):
    return _write(tmp_path_factory.mktemp("bad") / "bad.tar", _samples(6, bad={2, 4}))


def _run(urls, *args, **kw):
    return list(wds.WebDataset(urls, shardshuffle=False).decode(*args, **kw))


def _as_array(v):
    return v.numpy() if hasattr(v, "numpy") else v


def _compare(native, pil):
    assert len(native) == len(pil)
    for a, b in zip(native, pil, strict=True):
        assert list(a) == list(b)  # same fields, same order
        assert a["__key__"] == b["__key__"] and a["cls"] == b["cls"] and a["json"] == b["json"]
        for k in ("jpg", "png", "gif"):
            x, y = a[k], b[k]
            assert type(x) is type(y)
            assert x.dtype == y.dtype and tuple(x.shape) == tuple(y.shape), (k, x.shape, y.shape)
            x, y = _as_array(x).astype(np.float64), _as_array(y).astype(np.float64)
            scale = 255.0 if y.max() <= 1.0 else 1.0
            d = np.abs(x - y) * scale
            if k == "jpg":
                assert d.mean() <= 0.5
            else:
                assert d.max() < 1e-3, k  # PNG exact; gif goes through PIL itself


@pytest.mark.parametrize("spec", NUMPY_SPECS)
def test_numpy_specs_match_pil_path(shards, spec):
    _compare(_run(shards, spec, native=True), _run(shards, spec))


@pytest.mark.parametrize("spec", PADDLE_SPECS)
def test_paddle_specs_match_pil_path(shards, spec):
    pytest.importorskip("paddle")
    _compare(_run(shards[:1], spec, native=True), _run(shards[:1], spec))


def test_stage_form_and_fluent_form_agree(shards):
    staged = list(
        wds.DataPipeline(wds.SimpleShardList(shards), wds.tarfile_to_samples(), wds.decode("rgb8", native=True))
    )
    fluent = _run(shards, "rgb8", native=True)
    assert [s["__key__"] for s in staged] == [s["__key__"] for s in fluent]
    assert all(np.array_equal(a["jpg"], b["jpg"]) for a, b in zip(staged, fluent, strict=True))


@pytest.mark.parametrize("threads", [1, 2, 5])
def test_thread_counts_give_identical_ordered_output(shards, threads):
    ref = _run(shards, "rgb8", native=True, threads=1, window=7)
    got = _run(shards, "rgb8", native=True, threads=threads, window=7)
    assert [s["__key__"] for s in got] == [s["__key__"] for s in ref] == [f"{i:05d}" for i in range(36)]
    for a, b in zip(got, ref, strict=True):
        assert np.array_equal(a["jpg"], b["jpg"]) and np.array_equal(a["png"], b["png"])


def test_native_false_is_the_pil_path(shards):
    a, b = _run(shards[:1], "rgb8", native=False), _run(shards[:1], "rgb8")
    assert all(np.array_equal(x["jpg"], y["jpg"]) for x, y in zip(a, b, strict=True))


def test_corrupt_image_raises_decoding_error_like_pil(bad_shard):
    errors = {}
    for native in (False, True):
        with pytest.raises(DecodingError) as info:
            _run([bad_shard], "rgb8", native=native)
        errors[native] = info.value
    for e in errors.values():
        assert (e.key, e.k, e.url) == ("00002", "jpg", bad_shard)
        assert "00002" in str(e) and "'jpg'" in str(e) and bad_shard in str(e)
    assert "JPEG" in str(errors[True].__cause__)


@pytest.mark.parametrize("progressive", [False, True])
@pytest.mark.parametrize("keep", [-2, 0.5])
def test_truncated_jpeg_is_an_error_in_both_paths(tmp_path, progressive, keep):
    data = _encode(photo(40, 56, 2), "JPEG", quality=90, progressive=progressive)
    cut = data[: len(data) + keep] if keep < 0 else data[: int(len(data) * keep)]
    url = _write(tmp_path / "t.tar", [("a", {"jpg": cut, "cls": b"1"})])
    for native in (False, True):
        with pytest.raises(DecodingError) as info:
            _run([url], "rgb8", native=native)
        assert (info.value.key, info.value.k) == ("a", "jpg")
    assert "truncated" in str(info.value.__cause__)


def test_corrupt_image_goes_through_the_handler(bad_shard):
    seen = []

    def handler(exn):
        seen.append(exn)
        return True

    for native in (False, True):
        seen.clear()
        out = _run([bad_shard], "rgb8", native=native, handler=handler)
        assert [s["__key__"] for s in out] == ["00000", "00001", "00003", "00005"]
        assert [(type(e), e.key, e.k) for e in seen] == [
            (DecodingError, "00002", "jpg"),
            (DecodingError, "00004", "jpg"),
        ]


@pytest.mark.parametrize("window", [1, 2, 3, 64])
def test_a_handler_that_stops_ends_the_stream_in_both_paths(bad_shard, window):
    # A False handler ends the stage at the first bad sample, whatever the window of pending decodes.
    for native in (False, True):
        kw = dict(native=True, window=window) if native else {}
        out = _run([bad_shard], "rgb8", handler=wds.ignore_and_stop, **kw)
        assert [s["__key__"] for s in out] == ["00000", "00001"], (native, window)


def test_resize_and_centre_crop_give_one_shape(shards):
    out = _run(shards, "rgb8", native=True, resize=24, crop=(16, 20))
    assert {s["jpg"].shape for s in out} == {s["png"].shape for s in out} == {(16, 20, 3)}
    batch = next(
        iter(wds.WebDataset(shards).decode("paddlergb", native=True, resize=18, crop=16).to_tuple("png").batched(8))
    )
    assert tuple(batch[0].shape) == (8, 3, 16, 16)


def test_random_crop_is_seeded(shards):
    def crops(seed):
        ds = wds.WebDataset(shards, shardshuffle=False).decode(
            "l8", native=True, resize=24, crop=16, random_crop=True, seed=seed
        )
        return [s["png"] for s in ds]

    a, b, c = crops(1), crops(1), crops(2)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert not all(np.array_equal(x, y) for x, y in zip(a, c, strict=True))
    ds = wds.WebDataset(shards, shardshuffle=False).decode(
        "l8", native=True, resize=24, crop=16, random_crop=True, seed=1
    )
    first, second = ([s["png"] for s in ds] for _ in range(2))
    # Like shuffle(seed=...): reproducible per run, but each pass draws new crops.
    assert not all(np.array_equal(x, y) for x, y in zip(first, second, strict=True))


def test_bad_arguments_are_refused(shards):
    with pytest.raises(TypeError, match="native=True"):
        wds.WebDataset(shards).decode("rgb8", resize=32)
    with pytest.raises(TypeError, match="unexpected"):
        wds.WebDataset(shards).decode("rgb8", nativ=True)
    with pytest.raises(ValueError, match="numpy and paddle"):
        wds.WebDataset(shards).decode("pil", native=True)
    with pytest.raises(ValueError):
        wds.WebDataset(shards).decode("rgb8", native="fastest")
    with pytest.raises(ValueError):
        wds.WebDataset(shards).decode("rgb8", native=True, random_crop=True)
    with pytest.raises(ValueError):
        wds.WebDataset(shards).decode("rgb8", native=True, crop=(0, 3))


def test_other_formats_under_a_native_extension_go_to_pil(tmp_path):
    arr = photo(12, 10, 4)
    url = _write(tmp_path / "x.tar", [("a", {"jpg": _encode(arr, "BMP"), "png": _encode(arr, "GIF")})])
    native, pil = _run([url], "rgb8", native=True), _run([url], "rgb8")
    assert np.array_equal(native[0]["jpg"], arr) and np.array_equal(native[0]["png"], pil[0]["png"])


def test_crop_larger_than_image_is_a_decoding_error(shards):
    with pytest.raises(DecodingError) as info:
        _run(shards[:1], "rgb8", native=True, crop=500)
    assert "larger" in str(info.value.__cause__)


def test_default_threads(monkeypatch):
    from ppwebdataset._native_image import default_threads

    assert default_threads() >= 1
    monkeypatch.setenv("WORKER", "0")
    monkeypatch.setenv("NUM_WORKERS", "2")
    assert default_threads() == 1


@pytest.mark.parametrize("num_workers", [0, 2])
def test_dataloader_workers(shards, num_workers):
    paddle = pytest.importorskip("paddle")
    ds = (
        wds.WebDataset(shards, shardshuffle=False)
        .decode("rgb8", native=True, resize=20, crop=16)
        .to_tuple("jpg", "cls")
    )
    loader = paddle.io.DataLoader(ds, batch_size=4, num_workers=num_workers)
    ids = []
    for images, labels in loader:
        assert tuple(images.shape[1:]) == (16, 16, 3) and images.dtype == paddle.uint8
        ids += [int(v) for v in labels.numpy()]
    assert sorted(ids) == list(range(36))


def _with_threads(sample):
    from ppwebdataset._native_image import default_threads

    return {**sample, "threads": np.array(default_threads())}


def test_default_threads_is_one_inside_dataloader_workers(shards):
    paddle = pytest.importorskip("paddle")
    ds = wds.WebDataset(shards, shardshuffle=False).map(_with_threads).to_tuple("threads")
    seen = {int(v) for (t,) in paddle.io.DataLoader(ds, batch_size=4, num_workers=2) for v in t.numpy()}
    assert seen == {1}
