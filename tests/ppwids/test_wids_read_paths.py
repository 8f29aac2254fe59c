"""Samples read the same whichever read path they take (the packed per-sample table or the
general path), through ShardIndex and through ShardListDataset; a shard cut while open raises
the same error on both paths, never a signal."""

from __future__ import annotations

import gc
import io
import json
import os
import re
import signal
import subprocess
import sys
import tarfile
import textwrap
from pathlib import Path

import pytest

from ppwebdataset._core import ShardIndex
from ppwebdataset.errors import DuplicateMemberError
from ppwids import ShardListDataset

ROOT = Path(__file__).resolve().parents[2]
WIDS_RE = re.compile(r"^((?:.*/)?.*?)(\..*)$", re.DOTALL)


def mixed_members():
    """Samples of every kind: small ones, and ones the packed table cannot hold."""
    out = [(f"s{i:03d}.txt", f"text {i}".encode()) for i in range(3)]
    out += [("two.cls", b"7"), ("two.txt", b"x" * 50)]
    out += [("empty.txt", b""), ("empty.cls", b"")]
    out += [(f"many.e{k:02d}", bytes([k]) * (k + 1)) for k in range(14)]  # too many members
    out += [("k" * 150 + ".txt", b"long key")]
    out += [("big.bin", b"B" * (1 << 20) + b"!"), ("big.cls", b"1")]  # span over 1 MiB
    out += [("tail.a", b"a"), ("tail.b.c", b"bc")]
    return out


def expected_samples(path):
    """``[{ext: bytes, "__key__": key}]`` grouped like wids, read with tarfile."""
    samples = []
    with tarfile.open(path, encoding="utf-8", errors="surrogateescape") as tf:
        for m in tf:
            key, ext = WIDS_RE.match(m.name).groups()
            if not samples or samples[-1]["__key__"] != key:
                samples.append({"__key__": key})
            samples[-1][ext] = tf.extractfile(m).read()
    return [{**{k: v for k, v in s.items() if k != "__key__"}, "__key__": s["__key__"]} for s in samples]


@pytest.fixture
def mixed(tmp_path, make_tar):
    path = make_tar(tmp_path / "mixed.tar", mixed_members())
    with tarfile.open(tmp_path / "odd.tar", "w", format=tarfile.GNU_FORMAT, errors="surrogateescape") as tf:
        for name, data in [("ok.txt", b"1"), ("k\udcff.txt", b"2"), ("k\udcff.cls", b"3"), ("z.txt", b"4")]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return [path, tmp_path / "odd.tar"]


def test_every_kind_of_sample_reads_like_tarfile(mixed):
    for path in mixed:
        want = expected_samples(path)
        idx = ShardIndex(str(path))
        assert len(idx) == len(want)
        for i, w in enumerate(want):
            got = idx.get_sample(i)
            assert list(got) == list(w) and got == w, i
            views = idx.get_sample(i, views=True)
            assert {k: v if k == "__key__" else bytes(v) for k, v in views.items()} == w
            assert all(isinstance(v, memoryview) and v.readonly for k, v in views.items() if k != "__key__")
        # Random order and negative indices: no state carries over between reads.
        n = len(want)
        order = [n - 1, 0, n // 2, -1, 1, -n, n - 2]
        assert [idx.get_sample(i) for i in order] == [want[i] for i in order]


def test_dataset_sample_adds_the_dataset_entries_in_order(mixed):
    path = mixed[0]
    idx = ShardIndex(str(path))
    for i in range(len(idx)):
        got = idx.dataset_sample(i, "name", 100 + i, "url")
        want = {**idx.get_sample(i), "__dataset__": "name", "__index__": 100 + i, "__shard__": "url"}
        want["__shardindex__"] = i
        assert list(got) == list(want) and got == want
    assert idx.dataset_sample(-1, None, 0, "u")["__shardindex__"] == len(idx) - 1
    with pytest.raises(IndexError, match="out of range"):
        idx.dataset_sample(len(idx), None, 0, "u")


def test_dataset_reads_across_shards_in_any_order(mixed, tmp_path, make_tar):
    other = make_tar(tmp_path / "other.tar", mixed_members()[:7])
    shards = [str(mixed[0]), str(other), str(mixed[1])]
    per_shard = [expected_samples(p) for p in shards]
    flat = [(k, j, s) for k, samples in enumerate(per_shard) for j, s in enumerate(samples)]
    specs = [{"url": p, "nsamples": len(s)} for p, s in zip(shards, per_shard, strict=True)]
    ds = ShardListDataset(specs, transformations=[], lru_size=2)
    n = len(flat)
    assert len(ds) == n
    order = [0, 1, n - 1, 5, 9, 2, -1, -n, 8, 8, 3, n - 2, 0]
    for pos in order:
        k, j, want = flat[pos]
        got = ds[pos]
        meta = {"__dataset__": None, "__index__": pos % n, "__shard__": shards[k], "__shardindex__": j}
        assert list(got) == list(want) + list(meta) and got == {**want, **meta}, pos
    with pytest.raises(IndexError):
        ds[n]
    ds.close()
    assert ds[n - 1]["__key__"] == flat[-1][2]["__key__"]


def test_duplicate_sample_refused_on_every_path(tmp_path, make_tar):
    path = make_tar(tmp_path / "d.tar", [("a.txt", b"1"), ("b.txt", b"2"), ("b.txt", b"3"), ("c.txt", b"4")])
    ds = ShardListDataset([{"url": str(path), "nsamples": 3}], transformations=[])
    assert ds[0][".txt"] == b"1"
    for _ in range(2):
        with pytest.raises(DuplicateMemberError, match="b.txt"):
            ds[1]
    assert ds[2][".txt"] == b"4"


def test_a_read_inside_a_read_gets_its_own_buffer(tmp_path, make_tar, members):
    # A garbage collection can run while a sample dict is being built and run code that
    # reads a sample on the same thread; the shared scratch buffer must not be reused then.
    path = make_tar(tmp_path / "s.tar", members(20))
    idx = ShardIndex(str(path))
    want = [idx.get_sample(i) for i in range(20)]
    inner = []

    def reader(phase, info):
        if phase == "start" and len(inner) < 50:
            k = len(inner) % 20
            try:
                inner.append(idx.get_sample(k) == want[k])
            except BaseException as exn:  # a panic in the binding is a BaseException
                inner.append(repr(exn))

    old = gc.get_threshold()
    gc.callbacks.append(reader)
    try:
        gc.set_threshold(1)
        got = [idx.get_sample(i) for i in range(20) for _ in range(5)]
    finally:
        gc.set_threshold(*old)
        gc.callbacks.remove(reader)
    assert got == [w for w in want for _ in range(5)]
    assert inner and all(ok is True for ok in inner), inner


CHILD = textwrap.dedent(
    """
    import json, os, sys
    import ppwids
    from ppwebdataset.errors import ShardError

    path, cut, n, i = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    ds = ppwids.ShardListDataset([{"url": path, "nsamples": n}], transformations=[])
    ds[0]
    os.truncate(path, cut)
    out = {}
    try:
        ds[i]
        out["error"] = None
    except ShardError as e:
        out.update(error=type(e).__name__, member=e.member, offset=e.offset, msg=str(e))
    print(json.dumps(out))
    """
)


def member_offsets(path):
    with tarfile.open(path) as tf:
        return {m.name: (m.offset_data, m.size) for m in tf}


@pytest.mark.parametrize("lost", ["two.txt", "many.e09", "big.bin"])
def test_cut_inside_a_sample_names_the_first_lost_member(tmp_path, mixed, lost):
    # two.* fits the packed table; many.* and big.* take the general path.
    path = tmp_path / "cut.tar"
    path.write_bytes(mixed[0].read_bytes())
    offsets = member_offsets(path)
    data_offset, size = offsets[lost]
    key = lost.split(".")[0]
    sample = [s["__key__"] for s in expected_samples(path)].index(key)
    env = dict(os.environ, PYTHONPATH=str(ROOT / "python"))
    args = [str(path), str(data_offset + size // 2), str(len(expected_samples(path))), str(sample)]
    proc = subprocess.run([sys.executable, "-c", CHILD, *args], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode != -signal.SIGBUS, "the reader died of SIGBUS"
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout)
    assert got["error"] == "TruncatedShardError", got
    assert (got["member"], got["offset"]) == (lost, data_offset)
    assert "changed on disk" in got["msg"]


def test_returned_dicts_are_independent(tmp_path, make_tar, members):
    path = make_tar(tmp_path / "s.tar", members(3))
    idx = ShardIndex(str(path))
    want = [idx.get_sample(i) for i in range(3)]
    for read in (idx.get_sample, lambda i: idx.dataset_sample(i, "d", i, "u")):
        first = read(0)
        first[".txt"] = b"changed"
        first["added"] = 1
        del first["__key__"]
        again = read(0)
        assert {k: again[k] for k in want[0]} == want[0]
        assert "added" not in again
    # Values given to one call never show up in another.
    for name, url in [("a", "u1"), ("b", "u2"), ("a", "u1"), (None, "u2"), (None, "u2")]:
        got = [idx.dataset_sample(i, name, 10 + i, url) for i in range(3)]
        assert [(g["__dataset__"], g["__shard__"], g["__index__"]) for g in got] == [
            (name, url, 10 + i) for i in range(3)
        ]
        assert [{k: g[k] for k in w} for g, w in zip(got, want, strict=True)] == want


def test_many_different_member_layouts(tmp_path, make_tar):
    # More distinct extension sequences than get a ready-made dict: all read the same.
    out = []
    for i in range(300):
        exts = [f".e{i}", ".txt"] if i % 2 else [".txt", f".e{i}", ".cls"]
        out += [(f"k{i:04d}{ext}", f"{i}{ext}".encode()) for ext in exts]
    path = make_tar(tmp_path / "many.tar", out)
    want = expected_samples(path)
    idx = ShardIndex(str(path))
    assert [idx.get_sample(i) for i in range(len(want))] == want
    for i in (299, 0, 150, 257):
        got = idx.dataset_sample(i, None, i, "u")
        assert list(got) == [*want[i], "__dataset__", "__index__", "__shard__", "__shardindex__"]
