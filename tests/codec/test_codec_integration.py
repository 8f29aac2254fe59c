"""Writer → native reader → Decoder gives back what was written."""

from __future__ import annotations

import numpy as np
import pytest

import ppwebdataset as wds
from ppwebdataset._core import TarSampleReader


def test_shards_written_then_read_and_decoded(tmp_path):
    rng = np.random.default_rng(0)
    samples = [
        {
            "__key__": f"sample{i:04d}",
            "cls": i % 10,
            "txt": f"caption {i} ✓",
            "json": {"i": i, "tags": ["a", "b"]},
            "npy": rng.standard_normal((3, i % 4 + 1)).astype(np.float32),
            "png": rng.integers(0, 256, (4, 6, 3), dtype=np.uint8),
            "meta.json.gz": {"compressed": True},
        }
        for i in range(40)
    ]
    with wds.ShardWriter(str(tmp_path / "shard-%02d.tar"), maxcount=15, verbose=0, mtime=0) as sink:
        for s in samples:
            sink.write(s)
    decoder = wds.autodecode.Decoder([wds.autodecode.imagehandler("rgb8")])
    got = []
    for path in sorted(tmp_path.glob("shard-*.tar")):
        reader = TarSampleReader(str(path), path.name)
        while batch := reader.next_batch():
            got.extend(decoder(s) for s in batch)
    assert len(got) == 40
    for want, have in zip(samples, got, strict=True):
        assert have["__key__"] == want["__key__"]
        assert have["__url__"].startswith("shard-")
        assert have["cls"] == want["cls"]
        assert have["txt"] == want["txt"]
        assert have["json"] == want["json"]
        assert have["meta.json.gz"] == {"compressed": True}
        np.testing.assert_array_equal(have["npy"], want["npy"])
        np.testing.assert_array_equal(have["png"], want["png"])


def test_webdataset_reads_our_shards(tmp_path):
    webdataset = pytest.importorskip("webdataset")
    path = tmp_path / "w-%d.tar"
    with wds.ShardWriter(str(path), verbose=0) as sink:
        for i in range(5):
            sink.write({"__key__": f"k{i}", "cls": i, "txt": "t" * i})
    ds = webdataset.WebDataset(str(tmp_path / "w-0.tar"), shardshuffle=False).decode()
    got = [(s["__key__"], s["cls"], s["txt"]) for s in ds]
    assert got == [(f"k{i}", i, "t" * i) for i in range(5)]
