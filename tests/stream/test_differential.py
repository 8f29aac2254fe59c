"""Ours vs webdataset 1.0.2 on generated tars: the same sample dicts, or both refusing."""

from __future__ import annotations

import gzip
import tarfile

import pytest
from hypothesis import given
from hypothesis import strategies as st

import ppwebdataset as wds

webdataset = pytest.importorskip("webdataset")
from tarfixtures import make_tar  # noqa: E402

NAME_CHARS = st.sampled_from(list("abcXYZ019_-. ") + ["é", "日", "\u00c4"])
segment = st.text(NAME_CHARS, min_size=1, max_size=12)
name = st.one_of(
    st.builds(lambda a, b: f"{a}.{b}", segment, segment),
    st.builds(lambda d, a, b: f"{d}/{a}.{b}", segment, segment, segment),
    st.builds(lambda a: f"{a}", segment),
    st.sampled_from(["__meta__", "__index__/x.txt", "a.", "dir/.hidden", ".hidden", "A.JPG", "x.__weird"]),
    st.builds(lambda a, b: f"{'d' * 120}/{a}.{b}", segment, segment),
    st.builds(lambda a, b: f"{'e' * 160}{a}.{b}", segment, segment),
)
member = st.tuples(name, st.one_of(st.binary(max_size=700), st.none()))
formats = st.sampled_from([tarfile.USTAR_FORMAT, tarfile.GNU_FORMAT, tarfile.PAX_FORMAT])


def read_ref(path):
    try:
        return list(webdataset.WebDataset(str(path), shardshuffle=False, empty_check=False)), None
    except Exception as exn:  # the reference's refusal is part of the comparison
        return None, exn


def read_ours(path):
    try:
        return list(wds.WebDataset(str(path), shardshuffle=False, empty_check=False)), None
    except Exception as exn:
        return None, exn


def writable(members, fmt):
    # USTAR cannot store long names; skip such draws for that format.
    out = []
    for n, d in members:
        if fmt == tarfile.USTAR_FORMAT and (len(n.encode()) > 100 and "/" not in n):
            continue
        if fmt == tarfile.USTAR_FORMAT and len(n.encode()) > 255:
            continue
        if d is None and ("." in n.split("/")[-1] or n.startswith("__")):
            continue
        out.append((n, d))
    return out


@given(st.lists(member, max_size=25), formats, st.booleans())
def test_same_samples_as_webdataset(tmp_path_factory, members, fmt, compress):
    tmp = tmp_path_factory.mktemp("diff")
    path = tmp / ("shard.tar.gz" if compress else "shard.tar")
    members = writable(members, fmt)
    try:
        make_tar(path, members, fmt=fmt, mode="w:gz" if compress else "w")
    except ValueError:
        return  # tarfile refused the name for this format
    ref, ref_err = read_ref(path)
    ours, our_err = read_ours(path)
    if ref_err is not None:
        # webdataset raises ValueError for a duplicate extension; so do we (DuplicateMemberError).
        assert isinstance(ref_err, ValueError), ref_err
        assert isinstance(our_err, ValueError), (ref_err, our_err)
        return
    assert our_err is None, our_err
    assert ours == ref


def test_odd_names_fixed_cases(tmp_path):
    members = [
        ("a.jpg", b"1"),
        ("a.seg.jpg", b"2"),
        ("dir.x/a.jpg", b"3"),
        ("x/y/z.tar.gz", b"4"),
        ("235342 Track 2.0 (Clean).mp3", b"5"),
        ("2024-01-01T10:00:00.123.jpg", b"6"),
        ("noext", b"7"),
        ("dir/noext", b"8"),
        (".hidden", b"9"),
        ("dir/.hidden", b"10"),
        ("a.", b"11"),
        ("A.JPG", b"12"),
        ("__meta__", b"m"),
        ("__index__/x.txt", b"m2"),
        ("empty.txt", b""),
        ("somedir", None),
        ("u/日本.txt", "ü".encode()),
    ]
    path = make_tar(tmp_path / "odd.tar", members, fmt=tarfile.PAX_FORMAT)
    ours = list(wds.WebDataset(str(path), shardshuffle=False))
    ref = list(webdataset.WebDataset(str(path), shardshuffle=False))
    assert ours == ref
    keys = [s["__key__"] for s in ours]
    assert keys == [
        "a",
        "dir.x/a",
        "x/y/z",
        "235342 Track 2",
        "2024-01-01T10:00:00",
        "dir/",
        "a",
        "A",
        "empty",
        "u/日本",
    ]
    assert ours[0]["seg.jpg"] == b"2" and ours[0]["jpg"] == b"1"
    assert ours[7]["jpg"] == b"12"
    assert ours[8]["txt"] == b""
    assert all(s["__local_path__"] == str(path) for s in ours)


def test_gzip_shard_matches_plain(tmp_path):
    members = [(f"k{i}.txt", str(i).encode() * 1000) for i in range(50)]
    plain = make_tar(tmp_path / "p.tar", members)
    gz = tmp_path / "p.tgz"
    gz.write_bytes(gzip.compress(plain.read_bytes()))
    a = [{k: v for k, v in s.items() if not k.startswith("__")} for s in wds.WebDataset(str(plain), shardshuffle=False)]
    b = [{k: v for k, v in s.items() if not k.startswith("__")} for s in wds.WebDataset(str(gz), shardshuffle=False)]
    assert a == b and len(a) == 50
