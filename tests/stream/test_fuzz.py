"""Random and mutated shards: every outcome is samples or a ShardError — never a crash, hang or other error."""

from __future__ import annotations

import gzip
import io
import tarfile

from hypothesis import given
from hypothesis import strategies as st
from tarfixtures import make_tar, samples_members

from ppwebdataset.errors import ShardError
from ppwebdataset.tariterators import tarfile_samples


def outcome(data: bytes, source="path", tmp=None, limit=None):
    if source == "path":
        path = tmp / "f.tar"
        path.write_bytes(data)
        src = dict(url=str(path))
    else:
        src = dict(url="mem", stream=io.BytesIO(data))
    got = []
    try:
        for s in tarfile_samples([src]):
            got.append(s)
    except ShardError as exn:
        assert exn.url in (str(tmp / "f.tar") if source == "path" else "mem", "mem")
        limit = len(data) if limit is None else limit
        assert exn.offset is None or 0 <= exn.offset <= limit
        return got, exn
    return got, None


BASE = None


def base_tar(tmp_path_factory):
    global BASE
    if BASE is None:
        d = tmp_path_factory.mktemp("base")
        members = samples_members(6) + [("long/" + "n" * 150 + ".bin", b"z" * 700)]
        BASE = make_tar(d / "b.tar", members, fmt=tarfile.PAX_FORMAT).read_bytes()
    return BASE


@given(st.binary(max_size=5000), st.sampled_from(["path", "stream"]))
def test_random_bytes(tmp_path_factory, data, source):
    tmp = tmp_path_factory.mktemp("rnd")
    outcome(data, source, tmp)


@given(
    st.lists(st.tuples(st.integers(min_value=0), st.integers(0, 255)), min_size=1, max_size=10),
    st.integers(min_value=0),
    st.booleans(),
)
def test_mutated_tar(tmp_path_factory, flips, cut, compress):
    tmp = tmp_path_factory.mktemp("mut")
    data = bytearray(base_tar(tmp_path_factory))
    for pos, val in flips:
        data[pos % len(data)] = val
    data = bytes(data[: cut % (len(data) + 1)])
    plain_size = len(data)
    if compress:
        data = gzip.compress(data)
    got, err = outcome(data, "path", tmp, limit=plain_size)
    for s in got:
        assert isinstance(s["__key__"], str)
        assert all(isinstance(v, bytes) for k, v in s.items() if not k.startswith("__"))
