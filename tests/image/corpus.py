"""A generated image corpus for the native-decoder fidelity tests (PIL encodes everything)."""

import io
import struct
import zlib

import numpy as np
from PIL import Image


def photo(h, w, seed=0):
    """Photo-like RGB content: smooth gradients, a few blobs and sensor-like noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.empty((h, w, 3), np.float32)
    for c in range(3):
        fx, fy, ph = rng.uniform(0.5, 3.0), rng.uniform(0.5, 3.0), rng.uniform(0, 6.3)
        img[..., c] = 128 + 90 * np.sin(fx * x / max(w, 1) * 6.3 + ph) * np.cos(fy * y / max(h, 1) * 6.3)
    for _ in range(4):
        cy, cx, r = rng.uniform(0, h), rng.uniform(0, w), rng.uniform(2, max(h, w) / 3 + 3)
        mask = ((y - cy) ** 2 + (x - cx) ** 2) < r * r
        img[mask] = img[mask] * 0.5 + rng.uniform(0, 255, 3) * 0.5
    img += rng.normal(0, 12, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def _save(im, fmt, **kw):
    b = io.BytesIO()
    im.save(b, fmt, **kw)
    return b.getvalue()


def _png_chunk(tag, data):
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))


def raw_png(arr, color_type, depth):
    """A PNG written by hand (PIL cannot write 16-bit RGB or LA): arr is HxW or HxWxC."""
    h, w = arr.shape[:2]
    dtype = ">u2" if depth == 16 else np.uint8
    rows = arr.astype(dtype).reshape(h, -1).view(np.uint8).reshape(h, -1)
    raw = b"".join(b"\0" + r.tobytes() for r in rows)
    ihdr = struct.pack(">IIBBBBB", w, h, depth, color_type, 0, 0, 0)
    chunks = _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", zlib.compress(raw)) + _png_chunk(b"IEND", b"")
    return b"\x89PNG\r\n\x1a\n" + chunks


# Odd and even sizes, whole and partial MCUs (20x30: the last chroma sample is MCU padding).
SIZES = [(1, 1), (9, 17), (17, 9), (20, 30), (64, 48), (120, 160), (375, 480), (250, 334)]


def jpegs():
    """(name, bytes) for JPEG variants: subsampling, progressive, quality, gray, CMYK."""
    out = []
    for h, w in SIZES:
        rgb = Image.fromarray(photo(h, w, seed=h * 1000 + w))
        for sub in (0, 1, 2):  # 4:4:4, 4:2:2, 4:2:0
            for prog in (False, True):
                for q in (75, 95):
                    data = _save(rgb, "JPEG", quality=q, subsampling=sub, progressive=prog)
                    out.append((f"jpg_{h}x{w}_sub{sub}_p{int(prog)}_q{q}", data))
        out.append((f"jpg_{h}x{w}_gray", _save(rgb.convert("L"), "JPEG", quality=90)))
        out.append((f"jpg_{h}x{w}_gray_prog", _save(rgb.convert("L"), "JPEG", quality=90, progressive=True)))
        out.append((f"jpg_{h}x{w}_cmyk", _save(rgb.convert("CMYK"), "JPEG", quality=90)))
        out.append((f"jpg_{h}x{w}_cmyk420", _save(rgb.convert("CMYK"), "JPEG", quality=90, subsampling=2)))
        out.append((f"jpg_{h}x{w}_optimize", _save(rgb, "JPEG", quality=85, optimize=True)))
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate; PIL's decode ignores it
    rgb = Image.fromarray(photo(40, 30, 5))
    out.append(("jpg_exif_rot", _save(rgb, "JPEG", quality=90, exif=exif.tobytes())))
    return out


def pngs():
    """(name, bytes) for PNG variants: 8/16-bit, gray, palette, alpha, tRNS, interlace."""
    out = []
    for h, w in SIZES:
        arr = photo(h, w, seed=h + w)
        rgb = Image.fromarray(arr)
        alpha = Image.fromarray((np.arange(h * w).reshape(h, w) * 37 % 256).astype(np.uint8))
        rgba = rgb.copy()
        rgba.putalpha(alpha)
        out.append((f"png_{h}x{w}_rgb", _save(rgb, "PNG")))
        out.append((f"png_{h}x{w}_rgba", _save(rgba, "PNG")))
        out.append((f"png_{h}x{w}_l", _save(rgb.convert("L"), "PNG")))
        la = rgb.convert("L")
        la.putalpha(alpha)
        out.append((f"png_{h}x{w}_la", _save(la, "PNG")))
        out.append((f"png_{h}x{w}_pal", _save(rgb.quantize(37), "PNG")))
        pal_t = rgb.quantize(16)
        out.append((f"png_{h}x{w}_pal_trns", _save(pal_t, "PNG", transparency=3)))
        out.append((f"png_{h}x{w}_rgb_unfiltered", raw_png(arr, 2, 8)))
        out.append((f"png_{h}x{w}_l_trns", _save(rgb.convert("L"), "PNG", transparency=100)))
        out.append((f"png_{h}x{w}_1bit", _save(rgb.convert("1"), "PNG")))
        g16 = (arr[..., 0].astype(np.uint32) * 3).astype(np.uint16)  # spans 0..765: PIL clips at 255
        out.append((f"png_{h}x{w}_gray16", raw_png(g16, 0, 16)))
        wide = arr.astype(np.uint16) * 257 + np.arange(arr.size, dtype=np.uint16).reshape(arr.shape) % 200
        out.append((f"png_{h}x{w}_rgb16", raw_png(wide, 2, 16)))
        rgba16 = np.concatenate([wide, wide[..., :1]], axis=2)
        out.append((f"png_{h}x{w}_rgba16", raw_png(rgba16, 6, 16)))
        out.append((f"png_{h}x{w}_la16", raw_png(wide[..., :2], 4, 16)))
    return out


def corpus():
    return jpegs() + pngs()


def pil_decode(data, mode):
    """What the PIL path gives: ``Image.open(...).convert(mode)`` as an array."""
    with Image.open(io.BytesIO(data)) as im:
        im.load()
        return np.asarray(im.convert(mode))


def native_decode(data, mode, **kw):
    from ppwebdataset import _core

    (r,) = _core.decode_images([data], mode, **kw)
    if isinstance(r, str):
        raise ValueError(r)
    h, w, c, buf = r
    return np.frombuffer(buf, np.uint8).reshape((h, w) if mode == "L" else (h, w, c))


def jpeg_fidelity(modes=("L", "RGB", "RGBA")):
    """Native vs PIL over the JPEG corpus: (share of values off by > 2, max |d|, worst image mean |d|)."""
    over = total = 0
    worst_max = worst_mean = 0.0
    for _, data in jpegs():
        for mode in modes:
            d = np.abs(native_decode(data, mode).astype(int) - pil_decode(data, mode).astype(int))
            over += int((d > 2).sum())
            total += d.size
            worst_max = max(worst_max, int(d.max()))
            worst_mean = max(worst_mean, float(d.mean()))
    return over / total, worst_max, worst_mean


if __name__ == "__main__":
    share, mx, mean = jpeg_fidelity()
    print(f"JPEG vs PIL: {share:.4%} of values off by > 2, max {mx}, worst image mean {mean:.3f}")
