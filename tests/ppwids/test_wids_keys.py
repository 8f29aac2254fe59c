"""One key/metadata rule for ppwids: ``splitname``/``group_by_key`` agree with the shard index
(the core's ``wids_split`` and ``is_meta``) and with the streaming split, on generated names."""

from __future__ import annotations

import io
import re
import tarfile

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ppwebdataset._core import ShardIndex, is_meta, split_key
from ppwids.wids import group_by_key, splitname

# Dots, slashes and underscores are what the rules look at; "__" runs make metadata names.
_PART = st.text(alphabet="ab._", min_size=1, max_size=6).filter(lambda p: p not in (".", ".."))
NAMES = st.lists(_PART, min_size=1, max_size=3).map("/".join)


def _tar(path, names):
    with tarfile.open(path, "w", format=tarfile.GNU_FORMAT) as tf:
        for i, name in enumerate(names):
            info = tarfile.TarInfo(name)
            data = str(i).encode()
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))


def _index_view(path):
    """``[(key, [(name, extension), ...]), ...]`` as the shard index groups the tar."""
    index = ShardIndex(str(path))
    try:
        return [(index.key(i), [(name, ext) for name, ext, _, _ in index.members(i)]) for i in range(len(index))]
    finally:
        index.close()


def _python_view(names):
    out = []
    for group in group_by_key(names):
        key = splitname(names[group[0]])[0]
        out.append((key, [(names[i], splitname(names[i])[1]) for i in group]))
    return out


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(names=st.lists(NAMES, min_size=1, max_size=8))
def test_group_by_key_and_splitname_match_the_shard_index(tmp_path, names):
    path = tmp_path / "k.tar"
    _tar(path, names)
    assert _python_view(names) == _index_view(path)


@settings(max_examples=1000, deadline=None)
@given(name=NAMES)
def test_splitname_extends_the_streaming_split(name):
    # Where streaming splits a name, wids' key is the same and its extension is streaming's with
    # the dot in front. wids also splits some names streaming drops (e.g. "a.b/c", ".x"),
    # always at a dot and without losing a character.
    key, ext = split_key(name)
    if key is not None:
        assert splitname(name) == (key, "." + ext)
    if "." in name:
        wkey, wext = splitname(name)
        assert wkey + wext == name and wext.startswith(".")


def test_metadata_members_join_no_sample_in_either_view(tmp_path):
    names = ["__index__/x.txt", "a.txt", "__meta__", "a.cls", "__meta__.json", "README", "b.txt"]
    assert [is_meta(n) for n in names] == [True, False, True, False, False, False, False]
    _tar(tmp_path / "m.tar", names)
    # A "__dir__/..." tree is metadata (wids 0.1.11 made it a sample); "__meta__.json" is an
    # ordinary member with key "__meta__", as in streaming.
    assert group_by_key(names) == [[1, 3], [4], [6]]
    assert _python_view(names) == _index_view(tmp_path / "m.tar")


_WIDS_REGEX = re.compile(r"^((?:.*/)?.*?)(\..*)$", re.DOTALL)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(alphabet=st.sampled_from("ab./é\udcff_"), max_size=12))
def test_splitname_is_the_wids_regex(name):
    # The core's rule (keys::wids_split) against the regex wids documents, on names with
    # dots, slashes, non-ASCII and a lone surrogate (tar names decoded with surrogateescape).
    m = _WIDS_REGEX.match(name)
    if m is None:
        try:
            splitname(name)
        except ValueError:
            return
        raise AssertionError(f"{name!r} should have no split")
    assert splitname(name) == (m.group(1), m.group(2))
