"""cbors_to_samples / cbors2_to_samples read every item of every shard."""

from __future__ import annotations

import io
import pickle

import pytest

from ppwebdataset import cborsiterators as cb
from ppwebdataset.handlers import ignore_and_continue, ignore_and_stop

cbor2 = pytest.importorskip("cbor2")


def make_shard(path, items):
    with open(path, "wb") as f:
        for item in items:
            cbor2.dump(item, f)
    return str(path)


@pytest.fixture
def shards(tmp_path):
    return [
        make_shard(tmp_path / f"s{n}.cbors", [{"__key__": f"{n}-{i}", "v": i, "b": b"x" * i} for i in range(5)])
        for n in range(3)
    ]


@pytest.mark.parametrize("stage", [cb.cbors_to_samples, cb.cbors2_to_samples])
def test_every_shard_is_read(shards, stage):
    got = list(stage()([{"url": u} for u in shards]))
    assert [s["__key__"] for s in got] == [f"{n}-{i}" for n in range(3) for i in range(5)]
    assert got[7]["b"] == b"xx"


def test_plain_url_strings_and_an_empty_shard(shards, tmp_path):
    empty = make_shard(tmp_path / "empty.cbors", [])
    got = list(cb.cbors2_to_samples()([shards[0], empty, shards[1]]))
    assert len(got) == 10


def test_truncated_shard_names_the_url(shards, tmp_path):
    bad = tmp_path / "bad.cbors"
    bad.write_bytes(cbor2.dumps({"a": 1}) + cbor2.dumps({"b": b"y" * 50})[:-7])
    with pytest.raises(ValueError, match="bad.cbors") as info:
        list(cb.cbors2_to_samples()([str(bad)]))
    assert "ends inside item 1" in str(info.value)


def test_garbage_is_reported(tmp_path):
    bad = tmp_path / "garbage.cbors"
    bad.write_bytes(b"\xff\xff\xff")
    with pytest.raises(ValueError, match="garbage.cbors"):
        list(cb.cbors2_to_samples()([str(bad)]))


def test_handlers_decide_what_follows(shards, tmp_path):
    bad = tmp_path / "bad.cbors"
    bad.write_bytes(cbor2.dumps({"__key__": "ok"}) + b"\x5a\x00\x00\x10\x00")
    go_on = list(cb.cbors2_to_samples(handler=ignore_and_continue)([str(bad), shards[0]]))
    assert [s["__key__"] for s in go_on] == ["ok"] + [f"0-{i}" for i in range(5)]
    stop = list(cb.cbors2_to_samples(handler=ignore_and_stop)([str(bad), shards[0]]))
    assert [s["__key__"] for s in stop] == ["ok"]
    missing = list(cb.cbors2_to_samples(handler=ignore_and_continue)([str(tmp_path / "nope"), shards[1]]))
    assert len(missing) == 5


class NoPeek:
    """A read-only stream without peek(), like a pipe wrapper."""

    def __init__(self, data):
        self.inner = io.BytesIO(data)

    def read(self, n=-1):
        return self.inner.read(n)


def test_streams_supplied_by_an_opener_stage_are_used():
    data = b"".join(cbor2.dumps({"__key__": str(i)}) for i in range(300))
    got = list(cb.cbors2_to_samples()([{"url": "mem://x", "stream": NoPeek(data)}]))
    assert [s["__key__"] for s in got] == [str(i) for i in range(300)]


def test_stages_pickle(shards):
    stage = pickle.loads(pickle.dumps(cb.cbors2_to_samples(handler=ignore_and_continue)))
    assert len(list(stage(shards))) == 15
