"""photo_native: an ImageNet-like loop. 4 shards x 250 photo-sized JPEGs (~480x375, ~110 KB) through
``decode("rgb8", native=True, resize=256, crop=224).to_tuple("jpg", "cls")`` and
``paddle.io.DataLoader(batch_size=32, num_workers=2)``; 0.2.86 runs ``decode("pilrgb")``, PIL's bicubic
resize (shorter side 256) and a centre crop to 224 in the same loader.

Also measured: ours with ``num_workers=0, threads=2``, and the physical bound: the native decode alone
of the same images on one core (images/s; ``extra`` has decode+resize+crop on one core too). ``extra`` of
the loader runs: samples per CPU-second of the process and its workers (less sensitive to load)."""

from __future__ import annotations

import gc
import io
import os
from pathlib import Path

from scenarios._common import Timer, write_tar

NAME = "photo_native"
UNIT = "samples/s"
TARGET = 2.0
# Reported beside ours, no requirement on them (fraction 0).
EXTRA_IMPLS = {"ours_w0_t2": 0.0, "native_1core": 0.0}
SHARDS = 4
PER_SHARD = 250
BATCH = 32
SIZE, CROP = 256, 224


def _photo(rng, h, w):
    import numpy as np

    # Smooth gradients, blobs and sensor-like noise: JPEG sizes and decode cost like a photo's.
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.empty((h, w, 3), np.float32)
    for c in range(3):
        fx, fy, ph = rng.uniform(0.5, 4.0, 3)
        img[..., c] = 128 + 80 * np.sin(fx * x / w * 6.3 + ph) * np.cos(fy * y / h * 6.3)
    for _ in range(12):
        cy, cx, r = rng.uniform(0, h), rng.uniform(0, w), rng.uniform(10, 120)
        m = ((y - cy) ** 2 + (x - cx) ** 2) < r * r
        img[m] = img[m] * 0.4 + rng.uniform(0, 255, 3) * 0.6
    img += rng.normal(0, 20, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def _jpeg(rng):
    from PIL import Image

    # Landscape and portrait photos of slightly varying size.
    h, w = int(rng.integers(360, 391)), int(rng.integers(470, 501))
    if rng.random() < 0.25:
        h, w = w, h
    buf = io.BytesIO()
    Image.fromarray(_photo(rng, h, w)).save(buf, format="JPEG", quality=92)
    return buf.getvalue()


def _urls(data_dir: Path):
    return [str(data_dir / f"photo-{s}.tar") for s in range(SHARDS)]


def prepare(data_dir: Path) -> None:
    import numpy as np

    rng = np.random.default_rng(0)
    for s, url in enumerate(_urls(data_dir)):
        if not Path(url).exists():
            samples = [
                (f"p{s}/{i:05d}", {"jpg": _jpeg(rng), "cls": str(i % 1000).encode()})
                for i in range(s * PER_SHARD, (s + 1) * PER_SHARD)
            ]
            write_tar(Path(url), samples)


class _PilResizeCrop:
    # 0.2.86's path: a PIL image in, bicubic shorter side to SIZE, centre crop, array out (picklable).
    def __call__(self, im):
        import numpy as np
        from PIL import Image

        w, h = im.size
        nw, nh = (SIZE, round(h * SIZE / w)) if w <= h else (round(w * SIZE / h), SIZE)
        im = im.resize((nw, nh), Image.BICUBIC)
        top, left = (nh - CROP) // 2, (nw - CROP) // 2
        return np.asarray(im.crop((left, top, left + CROP, top + CROP)))


def _native_alone(urls):
    import ppwebdataset as wds
    from ppwebdataset import _core

    items = [s["jpg"] for s in wds.WebDataset(urls, shardshuffle=False)]
    _core.decode_images(items[:20], "RGB", threads=1)  # warm-up
    with Timer() as t:
        out = _core.decode_images(items, "RGB", threads=1)
    assert all(not isinstance(r, str) for r in out)
    with Timer() as t2:
        _core.decode_images(items, "RGB", resize=SIZE, crop=(CROP, CROP), threads=1)
    n = len(items)
    return {"value": n / t.seconds, "extra": {"with_resize_crop_per_s": n / t2.seconds}}


def run(impl: str, data_dir: Path):
    import warnings

    import paddle

    import ppwebdataset as wds

    warnings.simplefilter("ignore")
    urls = _urls(data_dir)
    if impl == "native_1core":
        return _native_alone(urls)
    workers = 0 if impl == "ours_w0_t2" else 2
    ds = wds.WebDataset(urls, shardshuffle=False)
    if impl == "ref":
        ds = ds.decode("pilrgb").to_tuple("jpg", "cls").map_tuple(_PilResizeCrop(), int)
    else:
        threads = 2 if impl == "ours_w0_t2" else None  # None: 1 per DataLoader worker
        ds = ds.decode("rgb8", native=True, resize=SIZE, crop=CROP, threads=threads).to_tuple("jpg", "cls")
    loader = paddle.io.DataLoader(ds, batch_size=BATCH, num_workers=workers)
    count = 0
    cpu0 = os.times()
    with Timer() as t:
        for images, _labels in loader:
            assert tuple(images.shape[1:]) == (CROP, CROP, 3), images.shape
            count += images.shape[0]
    assert count == SHARDS * PER_SHARD, count
    del loader
    gc.collect()  # the workers are joined, so their CPU time is counted below
    cpu1 = os.times()
    cpu = sum(cpu1[i] - cpu0[i] for i in range(4))  # user + system, this process and its workers
    # Samples per CPU-second of the whole process tree: what the throughput would be on one
    # otherwise idle core; much less sensitive to other load on the machine than the wall rate.
    return {"value": count / t.seconds, "extra": {"samples_per_cpu_s": count / cpu}}
