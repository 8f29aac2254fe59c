"""A client written against ppwebdataset 0.2.86's member-level API, in the style of open_clip.

open_clip (and many Paddle ports of it) build their own grouping over
``tar_file_expander(url_opener(src))`` and read ``filesample["fname"]`` on every
item; an end-of-shard marker would crash them. The public expander therefore
yields member dicts only unless the caller asks for a marker.
"""

from __future__ import annotations

import pytest
from tarfixtures import make_tar, samples_members

import ppwebdataset as wds
from ppwebdataset.tariterators import base_plus_ext, group_by_keys, tar_file_expander, url_opener, valid_sample


def group_by_keys_nothrow(data, keys=base_plus_ext, lcase=True, suffixes=None, handler=None):
    """Client code: a new sample on a new key or a repeated suffix; never raises on duplicates."""
    current = None
    for filesample in data:
        assert isinstance(filesample, dict)
        fname, value = filesample["fname"], filesample["data"]
        prefix, suffix = keys(fname)
        if prefix is None:
            continue
        if lcase:
            suffix = suffix.lower()
        if current is None or prefix != current["__key__"] or suffix in current:
            if valid_sample(current):
                yield current
            current = dict(__key__=prefix, __url__=filesample["__url__"])
        if suffixes is None or suffix in suffixes:
            current[suffix] = value
    if valid_sample(current):
        yield current


def tarfile_to_samples_nothrow(src, handler=wds.warn_and_continue):
    streams = url_opener(src, handler=handler)
    files = tar_file_expander(streams, handler=handler)
    return group_by_keys_nothrow(files, handler=handler)


@pytest.fixture
def shards(tmp_path):
    paths = []
    for s in range(3):
        paths.append(str(make_tar(tmp_path / f"s{s}.tar", samples_members(4, prefix=f"k{s}-"))))
    return paths


def test_open_clip_style_pipeline(shards):
    pipeline = wds.DataPipeline(
        wds.SimpleShardList(shards),
        wds.pipelinefilter(tarfile_to_samples_nothrow)(),
        wds.to_tuple("__key__", "txt"),
    )
    got = list(pipeline)
    assert len(got) == 12
    assert got[0] == ("k0-0000", b"k0-0-txt")
    assert got == [(k, t) for k, t in wds.WebDataset(shards, shardshuffle=False).to_tuple("__key__", "txt")]


def test_expander_yields_member_dicts_only(shards):
    items = list(tar_file_expander(url_opener([dict(url=u) for u in shards])))
    assert len(items) == 3 * 4 * 2
    assert all(set(item) >= {"fname", "data", "__url__"} for item in items)


def test_marker_only_when_asked(shards):
    items = list(tar_file_expander(url_opener([dict(url=u) for u in shards]), eof_value={}))
    assert sum(1 for i in items if i == {}) == 3 and items[-1] == {}
    marker = object()
    items = list(tar_file_expander(url_opener([dict(url=u) for u in shards[:1]]), eof_value=marker))
    assert items[-1] is marker


def test_our_grouping_never_merges_across_shards(tmp_path):
    # Both shards hold key "same": one sample each, not one merged sample (or a duplicate error).
    a = str(make_tar(tmp_path / "a.tar", [("same.txt", b"a")]))
    b = str(make_tar(tmp_path / "b.tar", [("same.txt", b"b")]))
    samples = list(group_by_keys(tar_file_expander(url_opener([dict(url=a), dict(url=b)]))))
    assert [(s["__url__"], s["txt"]) for s in samples] == [(a, b"a"), (b, b"b")]
    fast = list(wds.WebDataset([a, a, b], shardshuffle=False))
    assert [s["txt"] for s in fast] == [b"a", b"a", b"b"]
    # The same shard twice in a row (as resampling can do): the marker keeps them apart.
    twice = list(group_by_keys(tar_file_expander(url_opener([dict(url=a), dict(url=a)]), eof_value={})))
    assert [s["txt"] for s in twice] == [b"a", b"a"]
