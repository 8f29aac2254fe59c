"""User code as the README writes it, type-checked (not run) by tests/typing/test_typing.py.

`mypy --strict` and pyright must accept it, and `assert_type` pins what the fluent API returns:
a checker that saw these objects as `Any` (or as modules) would fail here.
"""

from __future__ import annotations

from typing import Any, assert_type

import paddle

import ppwebdataset as wds
import ppwids
from ppwebdataset import _core
from ppwebdataset.compat import WebDataset
from ppwebdataset.writer import ShardWriter, TarWriter


def streaming() -> None:
    ds = (
        wds.WebDataset("data/shard-{000000..000099}.tar", shardshuffle=100, nodesplitter=wds.split_by_node)
        .shuffle(1000)
        .decode("rgb8")
        .to_tuple("jpg", "cls")
        .batched(64)
    )
    assert_type(ds, WebDataset)
    assert_type(ds.with_epoch(1000), WebDataset)
    assert_type(ds.set_epoch(3), WebDataset)
    # Paddle annotates batch_size as int, but None (no batching in the loader) works and is what
    # a pipeline that batches itself needs.
    loader = paddle.io.DataLoader(ds, batch_size=None, num_workers=4)  # type: ignore[arg-type]
    for images, labels in loader:
        print(images, labels)
    with wds.WebDataset(["a.tar", "b.tar"], shardshuffle=False) as plain:
        for sample in plain.map(lambda s: s).select(lambda s: True).slice(10):
            print(sample)


def explicit() -> wds.DataPipeline:
    return wds.DataPipeline(
        wds.SimpleShardList("data/shard-{000000..000099}.tar"),
        wds.split_by_node,
        wds.split_by_worker,
        wds.tarfile_to_samples(),
        wds.shuffle(1000),
    )


def writing(items: list[tuple[bytes, int]]) -> None:
    with wds.ShardWriter("out/shard-%06d.tar", maxcount=10000) as sink:
        assert_type(sink, ShardWriter)
        for i, (image, label) in enumerate(items):
            sink.write({"__key__": f"{i:08d}", "jpg": image, "cls": label})
    with wds.TarWriter("out/one.tar") as tw:
        assert_type(tw, TarWriter)
        n: int = tw.write({"__key__": "a", "txt": "hello"})
        print(n)


def random_access() -> None:
    ds = ppwids.ShardListDataset("data/shardindex.json")
    assert_type(ds, ppwids.ShardListDataset)
    sample: Any = ds[12345]
    print(sample, len(ds))
    sampler = ppwids.DistributedChunkedSampler(ds, chunksize=1000, shuffle=True)
    sampler.set_epoch(1)
    for index in sampler:
        assert_type(index, int)
    batches = paddle.io.BatchSampler(sampler=sampler, batch_size=32)
    loader = paddle.io.DataLoader(ds, batch_sampler=batches, num_workers=4)
    print(loader)


def native() -> None:
    key, ext = _core.split_key("dir/a.seg.jpg")
    print(key, ext, _core.__version__)
    report = _core.lint_shard("data/shard-000000.tar", max_member_size=1 << 20)
    for level, code, message, member, offset in report["issues"]:
        print(level, code, message, member, offset)
