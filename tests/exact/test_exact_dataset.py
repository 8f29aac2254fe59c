"""WebDataset(exact=True) in one process: counts, index reads, coverage per (rank, worker), shuffle, errors."""

from __future__ import annotations

import io
import json
import os
import tarfile

import pytest
from exshards import UNEVEN, make_counts

import ppwebdataset as wds
from ppwebdataset._core import ShardIndex
from ppwebdataset.errors import DuplicateMemberError
from ppwebdataset.exact import ExactSamples, exact_stage, scan_counts


@pytest.fixture
def urls(tmp_path):
    return make_counts(tmp_path / "data", UNEVEN)


def keys(ds):
    return [s["__key__"] for s in ds]


def as_reader(monkeypatch, rank, world, worker, nworkers):
    monkeypatch.setenv("RANK", str(rank))
    monkeypatch.setenv("WORLD_SIZE", str(world))
    monkeypatch.setenv("WORKER", str(worker))
    monkeypatch.setenv("NUM_WORKERS", str(nworkers))


def test_counts_come_from_the_index_and_are_cached_in_the_sidecar(urls):
    assert scan_counts(urls) == list(UNEVEN)
    side = urls[0] + ".ppwidx"
    assert os.path.exists(side)
    assert ShardIndex(urls[0], sidecar=side).from_sidecar


def test_samples_match_the_streaming_reader(urls):
    exact = {s["__key__"]: s for s in wds.WebDataset(urls, exact=True, shardshuffle=False)}
    stream = {s["__key__"]: s for s in wds.WebDataset(urls, shardshuffle=False)}
    assert exact.keys() == stream.keys()
    for k, s in stream.items():
        assert exact[k] == s


@pytest.mark.parametrize("pad", [True, False])
def test_readers_cover_every_sample(monkeypatch, urls, pad):
    ds = wds.WebDataset(urls, exact=True, seed=3, shardshuffle=True, pad=pad)
    got = {}
    for rank in range(2):
        for worker in range(3):
            as_reader(monkeypatch, rank, 2, worker, 3)
            got[rank, worker] = keys(ds.set_epoch(0))
    every = [k for v in got.values() for k in v]
    assert set(every) == {f"s{s:02d}-{i:05d}" for s, n in enumerate(UNEVEN) for i in range(n)}
    per_rank = [sum(len(got[r, w]) for w in range(3)) for r in range(2)]
    if pad:
        assert per_rank == [151, 151] and len(every) == 302
    else:
        assert len(every) == len(set(every)) == 301 and per_rank == [151, 150]


def test_fewer_shards_than_ranks_times_workers(monkeypatch, tmp_path):
    urls = make_counts(tmp_path / "few", (9, 4), prefix="few")
    ds = wds.WebDataset(urls, exact=True, seed=0, shardshuffle=True, pad=False)
    seen = []
    for rank in range(2):
        for worker in range(2):
            as_reader(monkeypatch, rank, 2, worker, 2)
            part = keys(ds.set_epoch(1))
            assert len(part) in (3, 4)
            seen += part
    assert sorted(seen) == sorted(f"s{s:02d}-{i:05d}" for s, n in enumerate((9, 4)) for i in range(n))


def test_shard_order_defaults(urls, monkeypatch):
    shuffled = keys(wds.WebDataset(urls, exact=True))
    assert shuffled == keys(wds.WebDataset(urls, exact=True, seed=0, shardshuffle=100))
    assert keys(wds.WebDataset(urls, exact=True, shardshuffle=False)) == sorted(shuffled)
    monkeypatch.setenv("WDS_SEED", "5")  # the seed every rank agrees on, when none is passed
    assert keys(wds.WebDataset(urls, exact=True)) == keys(wds.WebDataset(urls, exact=True, seed=5)) != shuffled


def test_epochs_seed_and_shuffle(urls):
    ds = wds.WebDataset(urls, exact=True, seed=0, shardshuffle=True)
    e0, e1 = keys(ds.set_epoch(0)), keys(ds.set_epoch(1))
    assert e0 != e1 and sorted(e0) == sorted(e1)
    assert keys(wds.WebDataset(urls, exact=True, seed=0, shardshuffle=True).set_epoch(1)) == e1
    # Passes advance the epoch in the process that runs them (one convention with set_epoch).
    ds.set_epoch(0)
    assert keys(ds) == e0 and keys(ds) == e1
    sh = ds.shuffle(20)
    s0 = keys(sh.set_epoch(0))
    assert s0 != e0 and sorted(s0) == sorted(e0)
    assert keys(sh.set_epoch(0)) == s0
    assert exact_stage(ds).shuffle_size == 0  # the unshuffled pipeline is unchanged


@pytest.mark.parametrize(("shuffle", "block"), [(0, None), (25, None), (10, 37)])
def test_resume_positions_seek(urls, shuffle, block):
    ds = wds.WebDataset(urls, exact=True, seed=5, shardshuffle=True)
    if shuffle:
        ds = ds.shuffle(shuffle)
    stage = exact_stage(ds)
    stage.shuffle_block = block
    full = keys(ds.set_epoch(2))
    for k in (0, 1, 100, len(full) - 1, len(full)):
        stage.set_epoch(2)
        stage.resume = {"epoch": 2, "positions": [k]}
        assert keys(ds) == full[k:]


def test_wids_descriptor_and_remote_counts(tmp_path, urls, monkeypatch):
    monkeypatch.setenv("PPWDS_ALLOW_PIPE", "1")
    desc = tmp_path / "data" / "shards.json"
    shardlist = [{"url": os.path.basename(u), "nsamples": n} for u, n in zip(urls, UNEVEN, strict=True)]
    desc.write_text(json.dumps({"wids_version": 1, "shardlist": shardlist}))
    a = keys(wds.WebDataset(str(desc), exact=True, seed=1))
    assert a == keys(wds.WebDataset(urls, exact=True, seed=1))
    # Streams without a local file ("pipe:") need nsamples= and read their ranges in order.
    piped = [f"pipe:cat {u}" for u in urls]
    with pytest.raises(ValueError, match="nsamples"):
        keys(wds.WebDataset(piped, exact=True, seed=1))
    ds = wds.WebDataset(piped, exact=True, seed=1, nsamples=list(UNEVEN)).shuffle(10)
    ref = wds.WebDataset(urls, exact=True, seed=1).shuffle(10)
    exact_stage(ds).shuffle_block = exact_stage(ref).shuffle_block = 40
    assert keys(ds.set_epoch(0)) == keys(ref.set_epoch(0))
    for k in (57, 80, 300):
        exact_stage(ds).resume = {"epoch": 0, "positions": [k]}
        assert keys(ds.set_epoch(0)) == keys(ref.set_epoch(0))[k:]
    plain = wds.WebDataset(piped, exact=True, seed=1, nsamples=list(UNEVEN))
    exact_stage(plain).resume = {"epoch": 0, "positions": [120]}
    assert keys(plain) == a[120:]


def test_refused_combinations(urls):
    with pytest.raises(ValueError, match="resampled"):
        wds.WebDataset(urls, exact=True, resampled=True)
    with pytest.raises(ValueError, match="select_files"):
        wds.WebDataset(urls, exact=True, select_files=lambda n: True)
    with pytest.raises(ValueError, match="index has 37"):
        keys(wds.WebDataset(urls, exact=True, nsamples=[36, *UNEVEN[1:]]))
    with pytest.raises(ValueError, match="no shards"):
        ExactSamples([])


def test_set_epoch_lives_on_data_pipeline(urls):
    stage = ExactSamples(urls, seed=0)
    pipe = wds.DataPipeline(stage, wds.map(lambda s: s["__key__"]))
    a = list(pipe.set_epoch(4))
    assert a == list(pipe.set_epoch(4)) and a != list(pipe.set_epoch(5))


def test_a_shard_changed_after_counting_is_named(tmp_path):
    urls = make_counts(tmp_path / "data", (4, 6))
    ds = wds.WebDataset(urls, exact=True, shardshuffle=False)
    assert exact_stage(ds).counts == [4, 6]
    make_counts(tmp_path / "data", (5, 6))  # rewritten in place: new size and mtime, the sidecar is rebuilt
    with pytest.raises(ValueError, match="part-0000.tar.*has 5 samples.*planned with 4"):
        keys(ds)


def test_repeated_extension_goes_through_the_handler(tmp_path):
    path = tmp_path / "dup.tar"
    with tarfile.open(path, "w") as tf:
        for name, data in [("a.txt", b"1"), ("b.txt", b"2"), ("b.txt", b"3"), ("c.txt", b"4")]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    with pytest.raises(DuplicateMemberError):
        list(wds.WebDataset(str(path), exact=True, seed=0, shardshuffle=False))
    ds = wds.WebDataset(str(path), exact=True, seed=0, shardshuffle=False, handler=wds.ignore_and_continue)
    assert [s["__key__"] for s in ds] == ["a", "c"]
