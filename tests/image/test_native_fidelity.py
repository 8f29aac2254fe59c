"""Native JPEG/PNG decoding and resizing against PIL on a generated corpus."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))

from corpus import SIZES, jpeg_fidelity, jpegs, native_decode, photo, pil_decode, pngs  # noqa: E402

MODES = ("L", "RGB", "RGBA")


@pytest.mark.parametrize("mode", MODES)
def test_png_is_identical_to_pil(mode):
    for name, data in pngs():
        ref = pil_decode(data, mode)
        got = native_decode(data, mode)
        assert got.dtype == ref.dtype and got.shape == ref.shape, name
        assert np.array_equal(got, ref), name


@pytest.mark.parametrize("mode", MODES)
def test_jpeg_is_close_to_pil_image_by_image(mode):
    for name, data in jpegs():
        ref = pil_decode(data, mode).astype(int)
        got = native_decode(data, mode).astype(int)
        assert got.shape == ref.shape, name
        d = np.abs(got - ref)
        assert d.mean() <= 0.5, (name, d.mean())


def test_jpeg_share_off_by_more_than_2_is_below_1_percent():
    share, _, worst_mean = jpeg_fidelity()
    assert share <= 0.01
    assert worst_mean <= 0.5


def test_cmyk_and_gray_jpeg_follow_pil_conversions():
    rgb = Image.fromarray(photo(32, 48, 1))
    for im in (rgb.convert("CMYK"), rgb.convert("L")):
        b = io.BytesIO()
        im.save(b, "JPEG", quality=95)
        for mode in MODES:
            d = np.abs(native_decode(b.getvalue(), mode).astype(int) - pil_decode(b.getvalue(), mode).astype(int))
            assert d.max() <= 2, (im.mode, mode, d.max())


def test_exif_orientation_is_ignored_like_pil():
    name, data = jpegs()[-1]
    assert name == "jpg_exif_rot"
    assert native_decode(data, "RGB").shape == pil_decode(data, "RGB").shape == (40, 30, 3)


def _pil_resize_crop(data, mode, size, crop, resample):
    with Image.open(io.BytesIO(data)) as im:
        im = im.convert(mode)
        w, h = im.size
        if w <= h:
            nw, nh = size, int(round(h * size / w))
        else:
            nw, nh = int(round(w * size / h)), size
        im = im.resize((nw, nh), resample)
        if crop is not None:
            ch, cw = crop
            top, left = (nh - ch) // 2, (nw - cw) // 2
            im = im.crop((left, top, left + cw, top + ch))
        return np.asarray(im)


@pytest.mark.parametrize("filt,resample", [("bicubic", Image.BICUBIC), ("bilinear", Image.BILINEAR)])
@pytest.mark.parametrize("mode", MODES)
def test_resize_and_crop_match_pil_resize(filt, resample, mode):
    rgba = Image.fromarray(photo(75, 96, 3)).convert("RGBA")
    rgba.putalpha(Image.fromarray((np.arange(75 * 96).reshape(75, 96) % 256).astype(np.uint8)))
    b = io.BytesIO()
    rgba.save(b, "PNG")
    cases = [(b.getvalue(), 64, (60, 56)), (b.getvalue(), 40, None), (b.getvalue(), 150, (100, 120))]
    cases += [(data, 32, (32, 32)) for name, data in jpegs() if "120x160_sub2_p0_q95" in name]
    for data, size, crop in cases:
        ref = _pil_resize_crop(data, mode, size, crop, resample).astype(int)
        got = native_decode(data, mode, resize=size, crop=crop, filter=filt).astype(int)
        assert got.shape == ref.shape
        d = np.abs(got - ref)
        # Pillow's algorithm re-implemented: identical input (PNG) resizes identically.
        assert d.mean() <= 2
        if data[:4] == b"\x89PNG":
            assert d.max() == 0, (mode, size, crop, d.max())


def test_random_crop_is_a_window_of_the_resized_image():
    data = [d for n, d in pngs() if n.endswith("120x160_rgb")][0]
    full = native_decode(data, "RGB", resize=64)
    seeds = [(i * 7919, i * 104729 + 1) for i in range(8)]
    from ppwebdataset import _core

    out = _core.decode_images([data] * 8, "RGB", resize=64, crop=(40, 50), seeds=seeds, threads=2)
    offsets = set()
    for (a, b), (h, w, c, buf) in zip(seeds, out, strict=True):
        got = np.frombuffer(buf, np.uint8).reshape(h, w, c)
        top, left = a % (full.shape[0] - 40 + 1), b % (full.shape[1] - 50 + 1)
        assert np.array_equal(got, full[top : top + 40, left : left + 50])
        offsets.add((top, left))
    assert len(offsets) > 1


@pytest.mark.parametrize("h,w", SIZES)
def test_odd_sizes_decode(h, w):
    arr = photo(h, w, 9)
    b = io.BytesIO()
    Image.fromarray(arr).save(b, "PNG")
    assert np.array_equal(native_decode(b.getvalue(), "RGB"), arr)


def test_background_job_matches_the_blocking_call():
    from ppwebdataset import _core

    items = [d for _, d in jpegs()[:10]] + [b"not an image"]
    job = _core.start_decode_images(items, "RGB", resize=8, crop=(6, 6), threads=2)
    assert job.result() == _core.decode_images(items, "RGB", resize=8, crop=(6, 6), threads=2)
    with pytest.raises(RuntimeError, match="already"):
        job.result()
    with pytest.raises(ValueError, match="mode"):
        _core.start_decode_images(items, "CMYK")
