"""TarWriter / ShardWriter output is pinned byte for byte (see writer_golden.py)."""

from __future__ import annotations

import json

import pytest

from . import writer_golden as G

META = json.loads((G.GOLDEN / "golden.json").read_text())


class ShortWriter:
    """A stream outside the zero-copy list that takes at most 1000 bytes per call and keeps them."""

    def __init__(self):
        self.chunks = []

    def write(self, data):
        taken = bytes(data[:1000])
        self.chunks.append(taken)
        return len(taken)

    def getvalue(self):
        return b"".join(self.chunks)


@pytest.mark.parametrize("name", sorted(G.variants()))
def test_tar_writer_output_is_unchanged(name):
    samples, kw = G.variants()[name]
    data, sizes = G.write(samples(), **kw)
    suffix = ".gz" if kw.get("compress") else ""
    assert data == (G.GOLDEN / f"{name}.tar{suffix}").read_bytes()
    assert sizes == META["sizes"][name]


@pytest.mark.parametrize("name", ["default", "keep_meta", "raw"])
def test_streams_without_zero_copy_get_the_same_bytes(name):
    samples, kw = G.variants()[name]
    out = ShortWriter()
    G.write(samples(), stream=out, **kw)
    assert out.getvalue() == (G.GOLDEN / f"{name}.tar").read_bytes()


@pytest.mark.parametrize("stream", [None, ShortWriter])
def test_big_payloads_are_unchanged(stream):
    out = stream() if stream else None
    data, sizes = G.write(G.big_samples(), stream=out)
    data = data if out is None else out.getvalue()
    assert (len(data), G.digest(data)) == (META["big"]["length"], META["big"]["sha256"])
    assert sizes == META["sizes"]["big"]


def test_shard_writer_output_is_unchanged(tmp_path):
    shards = G.shard_files(tmp_path)
    assert sorted(shards) == META["shards"]
    for name, data in shards.items():
        assert data == (G.GOLDEN / name).read_bytes(), name
