"""Brace expansion agrees exactly with the ``braceexpand`` package and with webdataset 1.0.2.

Every place that expands shard patterns (``expand_urls``, ``SimpleShardList``,
``ResampledShards``, ppwids' ``widsindex``) goes through ``ppwebdataset.utils.braceexpand``;
these tests compare it with the references over generated patterns.
"""

from __future__ import annotations

import braceexpand as reference
import pytest
import webdataset.shardlists as wds102
from hypothesis import given
from hypothesis import strategies as st

import ppwebdataset as wds
from ppwebdataset.shardlists import expand_urls
from ppwebdataset.utils import braceexpand


def outcome(f, pattern):
    """The expansion as a list, or the exception type when it raises."""
    try:
        return list(f(pattern))
    except Exception as exn:  # compared by type: the references raise UnbalancedBracesError
        return type(exn).__name__


number = st.integers(min_value=-12, max_value=120)


@st.composite
def int_range(draw):
    a, b = draw(number), draw(number)
    pad = draw(st.sampled_from(["", "0", "00"]))
    fmt = lambda n: ("-" if n < 0 else "") + pad + str(abs(n))  # noqa: E731
    body = f"{fmt(a)}..{fmt(b)}"
    if draw(st.booleans()):
        body += f"..{draw(st.integers(min_value=-4, max_value=5))}"
    return "{" + body + "}"


@st.composite
def char_range(draw):
    a, b = draw(st.sampled_from("aczAZ")), draw(st.sampled_from("aczAZ"))
    body = f"{a}..{b}"
    if draw(st.booleans()):
        body += f"..{draw(st.integers(min_value=-3, max_value=3))}"
    return "{" + body + "}"


literal = st.text(alphabet="ab-._/x0 9", max_size=4)
oddity = st.sampled_from(["{", "}", "\\{", "\\}", "\\,", ",", "{}", "{x}", "\\\\", "..", "{1..}", "{..2}", "{,}"])


def patterns():
    leaf = st.one_of(literal, int_range(), char_range(), oddity)
    return st.recursive(
        leaf,
        lambda inner: st.one_of(
            st.lists(inner, min_size=1, max_size=3).map("".join),
            st.lists(inner, min_size=1, max_size=3).map(lambda xs: "{" + ",".join(xs) + "}"),
        ),
        max_leaves=6,
    )


def small(pattern):
    # Keep generated expansions small enough to compare quickly.
    try:
        n = sum(1 for _ in zip(reference.braceexpand(pattern), range(5001), strict=False))
    except Exception:
        return True
    return n <= 5000


@given(patterns().filter(small))
def test_braceexpand_equals_reference_package(pattern):
    assert outcome(braceexpand, pattern) == outcome(reference.braceexpand, pattern)
    assert outcome(lambda p: braceexpand(p, escape=False), pattern) == outcome(
        lambda p: reference.braceexpand(p, escape=False), pattern
    )


@given(st.lists(patterns().filter(lambda p: "::" not in p and small(p)), min_size=1, max_size=3))
def test_expand_urls_equals_webdataset(parts):
    joined = "::".join(parts)
    ours = outcome(expand_urls, joined)
    assert ours == outcome(wds102.expand_urls, joined)
    if isinstance(ours, list):
        assert [d["url"] for d in wds.SimpleShardList(joined)] == ours


@pytest.mark.parametrize(
    "pattern",
    [
        "shard-{0..10}.tar",  # no padding from the longer end (issue 8: we gave shard-00 ... shard-10)
        "shard-{000..010}.tar",
        "shard-{10..0}.tar",
        "s{0..20..5}",
        "s{00..-3}",
        "s{a..e..2}",
        "a{b,c{d,e}}f",
        "a{b",  # unbalanced: the reference raises
        "a}b",
        "a\\{0..2\\}b",
    ],
)
def test_known_patterns(pattern):
    assert outcome(braceexpand, pattern) == outcome(reference.braceexpand, pattern)
    assert outcome(expand_urls, pattern) == outcome(wds102.expand_urls, pattern)


def test_env_substitution_as_webdataset(monkeypatch):
    monkeypatch.setenv("WDS_ROOT", "/d/${SUB}")
    monkeypatch.setenv("WDS_SUB", "x{0..1}")
    pattern = "${ROOT}/a.tar::b{8..10}.tar"
    expected = ["/d/x0/a.tar", "/d/x1/a.tar", "b8.tar", "b9.tar", "b10.tar"]
    assert expand_urls(pattern) == wds102.expand_urls(pattern) == expected
    monkeypatch.delenv("WDS_ROOT")
    with pytest.raises(AssertionError):  # 1.0.2 asserts; ours is also a ValueError naming the variable
        wds102.expand_urls("${ROOT}/a.tar")
    with pytest.raises(AssertionError, match="WDS_ROOT"):
        expand_urls("${ROOT}/a.tar")
    with pytest.raises(ValueError, match="WDS_ROOT"):
        expand_urls("${ROOT}/a.tar")


def test_webdataset_constructor_uses_the_same_expansion(tmp_path):
    ds = wds.WebDataset("shard-{0..10}.tar", shardshuffle=False)
    assert [d["url"] for d in ds.pipeline[0]] == [f"shard-{i}.tar" for i in range(11)]
