"""Real client programs, written the way open_clip, LAVIS and timm use the webdataset API,
run on ours and on the references (webdataset 1.0.2 in-process, ppwebdataset 0.2.86 in a
subprocess through oracle.py) with the same generated shards; the outputs must agree.

Orders that depend on a sample shuffle buffer are compared sorted (the buffer's order is
each implementation's own); everything else, values included, exactly.
"""

from __future__ import annotations

import io
import json
import logging
import random
from functools import partial

import numpy as np
import pytest
from cases import V0286, V102, case, write_tar
from test_oracle import check_case, params, run_0286

CLIENTS = []


def image_text_shards(tmp, nshards=4, per=5, broken=()):
    """open_clip/LAION-style shards: ``jpg`` + ``txt`` + ``json`` per sample; some samples lack
    a caption, ``broken`` keys get undecodable image bytes."""
    from PIL import Image

    urls = []
    for s in range(nshards):
        members = []
        for i in range(per):
            key = f"{s:02d}{i:04d}"
            a = np.full((6, 8, 3), (s * 40 + i * 9) % 256, dtype=np.uint8)
            a[:, :4, 1] = 255 - a[:, :4, 1]
            buf = io.BytesIO()
            Image.fromarray(a).save(buf, format="jpeg", quality=95)
            members.append((f"{key}.jpg", b"garbage" if key in broken else buf.getvalue()))
            if i % 4 != 3:
                members.append((f"{key}.txt", f"caption {s} {i}".encode()))
            members.append((f"{key}.json", json.dumps({"key": key, "w": 8, "h": 6}).encode()))
        urls.append(write_tar(tmp / f"train-{s:06d}.tar", members))
    return urls


def pixels(img):
    a = np.asarray(img, dtype=np.float32) / 255.0
    return a.transpose(2, 0, 1)  # CHW, as a torchvision ToTensor would


# -- open_clip (src/training/data.py) ----------------------------------------------------------


def log_and_continue(exn):
    logging.warning(f"Handling webdataset error ({exn!r}). Ignoring.")
    return True


def open_clip_pipeline(P, urls, resampled, guard_eof=False):
    wds = P.wds
    tar = P.m("tariterators")

    def group_by_keys_nothrow(data, keys=tar.base_plus_ext, lcase=True, suffixes=None, handler=None):
        current_sample = None
        for filesample in data:
            if guard_eof and not filesample:
                continue
            assert isinstance(filesample, dict)
            fname, value = filesample["fname"], filesample["data"]
            prefix, suffix = keys(fname)
            if prefix is None:
                continue
            if lcase:
                suffix = suffix.lower()
            if current_sample is None or prefix != current_sample["__key__"] or suffix in current_sample:
                if tar.valid_sample(current_sample):
                    yield current_sample
                current_sample = dict(__key__=prefix, __url__=filesample["__url__"])
            if suffixes is None or suffix in suffixes:
                current_sample[suffix] = value
        if tar.valid_sample(current_sample):
            yield current_sample

    def tarfile_to_samples_nothrow(src, handler=log_and_continue):
        streams = tar.url_opener(src, handler=handler)
        files = tar.tar_file_expander(streams, handler=handler)
        return group_by_keys_nothrow(files, handler=handler)

    def filter_no_caption_or_no_image(sample):
        has_caption = "txt" in sample
        has_image = "png" in sample or "jpg" in sample or "jpeg" in sample or "webp" in sample
        return has_caption and has_image

    if resampled:
        stages = [wds.ResampledShards(urls), wds.split_by_node, wds.split_by_worker]
    else:
        stages = [wds.SimpleShardList(urls), wds.detshuffle(100, seed=7), wds.split_by_node, wds.split_by_worker]
    stages += [
        tarfile_to_samples_nothrow,
        wds.shuffle(20, initial=5),
        wds.select(filter_no_caption_or_no_image),
        wds.decode("pilrgb", handler=log_and_continue),
        wds.rename(image="jpg;png;jpeg;webp", text="txt"),
        wds.map_dict(image=pixels, text=lambda text: [ord(c) for c in text][:12]),
        wds.to_tuple("image", "text"),
        wds.batched(3, partial=True),
    ]
    pipeline = wds.DataPipeline(*stages)
    if resampled:
        pipeline = pipeline.with_epoch(4)
    return pipeline


def unbatch(batches):
    """Sorted (image checksum, text) rows of a list of (images, texts) batches."""
    rows = []
    for images, texts in batches:
        for im, tx in zip(images, texts, strict=True):
            rows.append((round(float(np.asarray(im).sum()), 3), list(tx), list(np.asarray(im).shape)))
    return sorted(rows), [len(t) for _, t in batches]


def open_clip_program(P, tmp, resampled=False):
    urls = image_text_shards(tmp, broken={"010002"})
    # 1.0.2's tar_file_expander ends each shard with a {} marker, which this code (written
    # for 0.2.86) cannot read; on 1.0.2 the program needs a guard, ours must not.
    pipeline = open_clip_pipeline(P, urls, resampled, guard_eof=P.kind == V102)
    rows, sizes = unbatch([b for b in pipeline])
    if resampled:
        return len(sizes), sum(sizes), {r[2][0] for r in rows}
    return rows, sorted(sizes)


case("open_clip", name="open_clip", table=CLIENTS)(open_clip_program)
case("open_clip", name="open_clip_0286", rule=V0286, table=CLIENTS)(open_clip_program)
case("open_clip", name="open_clip_resampled", table=CLIENTS)(partial(open_clip_program, resampled=True))


def open_clip_stock(P, tmp):
    """open_clip with webdataset's own tarfile_to_samples (the variant most ports use)."""
    wds = P.wds
    urls = image_text_shards(tmp, broken={"020001"})
    pipeline = wds.DataPipeline(
        wds.SimpleShardList(urls),
        wds.split_by_worker,
        wds.tarfile_to_samples(handler=log_and_continue),
        wds.select(lambda s: "txt" in s and "jpg" in s),
        wds.decode("pilrgb", handler=log_and_continue),
        wds.rename(image="jpg;png;jpeg;webp", text="txt"),
        wds.map_dict(image=pixels, text=str.upper),
        wds.to_tuple("image", "text"),
        wds.batched(4),
    )
    return unbatch([b for b in pipeline])


case("open_clip", name="open_clip_stock", table=CLIENTS)(open_clip_stock)
case("open_clip", name="open_clip_stock_0286", rule=V0286, table=CLIENTS)(open_clip_stock)


# -- LAVIS (lavis/datasets/datasets/laion_dataset.py) -----------------------------------------


def lavis_program(P, tmp):
    wds = P.wds
    urls = image_text_shards(tmp, nshards=1, per=8, broken={"000005"})

    def vis_processor(img):
        return pixels(img.resize((4, 3)))

    def text_processor(caption):
        return caption.lower().strip()

    def to_dict(sample):
        return {"image": sample[0], "text_input": text_processor(sample[1]["key"] + " " + str(sample[1]["w"]))}

    inner_dataset = wds.DataPipeline(
        wds.ResampledShards(urls),
        wds.tarfile_to_samples(handler=wds.warn_and_continue),
        wds.shuffle(1000, handler=wds.warn_and_continue),
        wds.decode("pilrgb", handler=wds.warn_and_continue),
        wds.to_tuple("jpg", "json", handler=wds.warn_and_continue),
        wds.map_tuple(vis_processor, handler=wds.warn_and_continue),
        wds.map(to_dict, handler=wds.warn_and_continue),
    )
    it = iter(inner_dataset)
    out = [next(it) for _ in range(14)]  # LAVIS draws a fixed number of iterations per epoch
    # Which samples a resampled, shuffled stream draws is random; what each one is is not.
    rows = {(s["text_input"], round(float(s["image"].sum()), 3), tuple(s["image"].shape)) for s in out}
    keys = {r[0].split()[0] for r in rows}
    return len(out), keys <= {f"0000{i:02d}" for i in range(8)} - {"000005"}, len({r[0] for r in rows}) == len(rows)


case("LAVIS", name="lavis", table=CLIENTS)(lavis_program)


# -- timm (timm/data/readers/reader_wds.py) ---------------------------------------------------


def timm_program(P, tmp, epoch=0):
    wds = P.wds
    from PIL import Image

    urls = image_text_shards(tmp, nshards=3, per=4)
    worker_info = getattr(wds.utils, "pytorch_worker_info", None) or wds.utils.paddle_worker_info

    def _split_by_node_and_worker(src):
        rank, world, worker, nworkers = worker_info()
        yield from (u for i, u in enumerate(src) if i % (world * nworkers) == rank * nworkers + worker)

    def _decode(sample_iter, image_key="jpg", image_mode="RGB", target_key="json", handler=log_and_continue):
        for sample in sample_iter:
            try:
                with io.BytesIO(sample[image_key]) as b:
                    img = Image.open(b)
                    img.load()
                img = img.convert(image_mode)
                target = json.loads(sample[target_key])["key"]
                yield {"jpg": img, "cls": target}
            except Exception as exn:
                if not handler(exn):
                    break

    pipeline = [
        wds.SimpleShardList(urls),
        wds.detshuffle(10, seed=42 + epoch),
        _split_by_node_and_worker,
        wds.tarfile_to_samples(handler=log_and_continue),
        wds.shuffle(8, rng=random.Random(1234)),
        partial(_decode, image_key="jpg", target_key="json"),
    ]
    ds = wds.DataPipeline(*pipeline)
    out = [(s["cls"], list(s["jpg"].size), round(float(np.asarray(s["jpg"]).mean()), 3)) for s in ds]
    return sorted(out), len(out)


case("timm", name="timm", table=CLIENTS)(timm_program)
case("timm", name="timm_0286", rule=V0286, table=CLIENTS)(timm_program)


# -- WebDataset fluent programs (the webdataset README / LAION-CLAP style) -------------------


def fluent_program(P, tmp):
    wds = P.wds
    urls = image_text_shards(tmp, nshards=2, per=6)
    ds = (
        wds.WebDataset(urls, shardshuffle=False, handler=wds.warn_and_continue)
        .shuffle(0)
        .decode("rgb8")
        .to_tuple("jpg", "json")
        .map_tuple(lambda a: a.mean(axis=(0, 1)), lambda j: j["key"])
        .batched(5, partial=False)
    )
    return [(np.round(a, 3), k) for a, k in ds]


case("WebDataset", name="fluent", table=CLIENTS)(fluent_program)


@pytest.fixture(scope="module")
def clients0286(tmp_path_factory):
    return run_0286(tmp_path_factory, "test_clients:CLIENTS")


@pytest.mark.parametrize("c", params(CLIENTS))
def test_client(c, clients0286):
    check_case(c, clients0286)
