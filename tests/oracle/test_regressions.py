"""Issue 8, items 7 and 8: small behaviours that must match webdataset 1.0.2."""

from __future__ import annotations

import gzip
import io
import os
import tarfile
import warnings

import numpy as np
import pytest

import ppwebdataset as wds
from ppwebdataset import cache, filters
from ppwids.wids_mmtar import MMIndexedTar


def write_tar(path, members):
    with tarfile.open(path, "w") as tf:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return str(path)


@pytest.fixture
def shard(tmp_path):
    return write_tar(tmp_path / "s.tar", [(f"k{i}.{e}", f"{i}".encode()) for i in range(3) for e in ("cls", "txt")])


def unsized_stages(url):
    yield wds.DataPipeline(wds.SimpleShardList([url]), wds.tarfile_to_samples())
    yield wds.WebDataset(url, shardshuffle=False)
    yield wds.WebDataset(url, shardshuffle=False).to_tuple("txt")
    yield wds.ResampledShards([url], nshards=2)
    yield wds.shardlists.MultiShardSample({"datasets": [{"shards": [url], "resample": 2}]})
    yield wds.RandomMix([wds.SimpleShardList([url])], [1.0])
    yield wds.RoundRobin([wds.SimpleShardList([url])])
    yield wds.MockDataset(1, 3)
    yield wds.FluidWrapper(wds.SimpleShardList([url]))


@pytest.mark.parametrize("index", range(9))
def test_len_of_unsized_stages_is_a_type_error_and_list_iterates(shard, index):
    ds = list(unsized_stages(shard))[index]
    with pytest.raises(TypeError):
        len(ds)
    assert len(list(ds)) > 0  # list() asks len() for a hint; a RuntimeError would escape


def test_with_length_gives_a_length(shard):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert len(wds.WebDataset(shard, shardshuffle=False).with_length(7)) == 7
    assert len(wds.with_length(wds.ResampledShards([shard], nshards=2), 5)) == 5
    assert len(wds.SimpleShardList([shard, shard])) == 2


def test_paddlel8_is_two_dimensional():
    paddle = pytest.importorskip("paddle")
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.arange(12, dtype=np.uint8).reshape(3, 4)).save(buf, format="png")
    for spec in ("paddlel8", "paddlel"):
        t = wds.imagehandler(spec)(".png", buf.getvalue())
        assert isinstance(t, paddle.Tensor) and tuple(t.shape) == (3, 4), spec
    assert wds.imagehandler("paddlel8")(".png", buf.getvalue()).numpy().tolist() == np.arange(12).reshape(3, 4).tolist()


def test_uncombined_collation_of_tuples_gives_tuples_of_lists():
    collate = lambda b: filters.default_collation_fn(b, combine_tensors=False, combine_scalars=False)  # noqa: E731
    batches = list(filters.batched(2, collation_fn=collate)(iter([(1,), (2,), (3,)])))
    assert batches == [([1, 2],), ([3],)]
    assert all(type(b) is tuple for b in batches)
    # Combining keeps 0.2.86's list of columns.
    assert isinstance(filters.default_collation_fn([(1,), (2,)]), list)


@pytest.mark.parametrize("handler", [wds.ignore_and_stop, wds.ignore_and_continue, wds.warn_and_stop])
def test_fluent_to_tuple_and_rename_raise_on_a_missing_field_whatever_the_dataset_handler(tmp_path, handler):
    url = write_tar(tmp_path / "m.tar", [("a.jpg", b"1"), ("a.cls", b"0"), ("b.cls", b"1")])
    # As in 1.0.2 the dataset's handler governs reading, not the fluent stages' own default.
    with pytest.raises(ValueError):
        list(wds.WebDataset(url, shardshuffle=False, handler=handler).to_tuple("jpg", "cls"))
    with pytest.raises(ValueError):
        list(wds.WebDataset(url, shardshuffle=False, handler=handler).rename(img="jpg"))
    with pytest.raises(ValueError):
        list(filters.to_tuple("jpg")(iter([{"cls": 1}])))


def test_webloader_epoch_that_yields_nothing_raises(tmp_path, monkeypatch):
    pytest.importorskip("paddle")
    url = write_tar(tmp_path / "one.tar", [("a.cls", b"0")])
    # Rank 1 of 2 gets no shard of one: each worker only warns, the loader's epoch raises.
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    ds = wds.WebDataset(url, shardshuffle=False, nodesplitter=wds.split_by_node).map(lambda s: np.zeros(1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ValueError, match="No samples found"):
            list(wds.WebLoader(ds, batch_size=None, num_workers=0))
        quiet = wds.WebDataset(url, shardshuffle=False, nodesplitter=wds.split_by_node, empty_check=False)
        assert list(wds.WebLoader(quiet, batch_size=None, num_workers=0)) == []


def test_webloader_workers_without_shards_do_not_end_the_epoch(tmp_path):
    pytest.importorskip("paddle")
    urls = [write_tar(tmp_path / f"s{i}.tar", [(f"s{i}k{j}.cls", b"1") for j in range(3)]) for i in range(2)]
    ds = wds.WebDataset(urls, shardshuffle=False).map(lambda s: np.array([int(s["cls"])]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        loader = wds.WebLoader(ds, batch_size=None, num_workers=4)
        for _ in range(2):
            assert len([b for b in loader]) == 6


def test_url_to_cache_name_is_upstreams_and_the_cache_does_not_collide(tmp_path):
    assert cache.url_to_cache_name("https://h/a/x.tar") == "x.tar"
    assert cache.url_to_cache_name("https://h/a/x.tar", 1) == "a/x.tar"
    with pytest.raises(AssertionError):
        cache.url_to_cache_name(os.fsencode("x.tar"))
    fc = cache.FileCache(str(tmp_path))
    assert fc.cache_path("https://h/a/x.tar") != fc.cache_path("https://h/b/x.tar")


def test_mmindexedtar_lists_members_without_an_extension(tmp_path):
    url = write_tar(tmp_path / "m.tar", [("a.txt", b"1"), ("README", b"r"), ("__meta__", b"m"), ("a.cls", b"2")])
    tar = MMIndexedTar(url)
    try:
        assert tar.names() == ["a.txt", "README", "__meta__", "a.cls"]
        assert tar["README"] == ("README", b"r") and tar[2] == ("__meta__", b"m")
        assert len(tar) == 4
    finally:
        tar.close()


@pytest.mark.parametrize("value", ["x" * 1001, ("hello world " * 100)[:1001], b"\x00\x01" * 700])
def test_gz_fields_are_gzip_compress_with_mtime_0(tmp_path, value):
    out = io.BytesIO()
    with wds.TarWriter(out, mtime=1234567) as sink:
        sink.write({"__key__": "k", "txt.gz": value})
    out.seek(0)
    with tarfile.open(fileobj=out) as tf:
        got = tf.extractfile("k.txt.gz").read()
    raw = value if isinstance(value, bytes) else value.encode()
    assert got == gzip.compress(raw, mtime=0)
    assert got == wds.writer.encode_based_on_extension1(value, "txt.gz", wds.writer.default_handlers)
