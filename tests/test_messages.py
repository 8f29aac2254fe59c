"""Errors a new user meets say what to do (issue 11's audit)."""

from __future__ import annotations

import subprocess
import sys
import warnings

import pytest

import ppwebdataset as wds
from ppwebdataset.gopen import gopen


def test_directory_without_trailing_slash_says_add_slash(tmp_path):
    (tmp_path / "a.tar").write_bytes(b"")
    with pytest.raises(IsADirectoryError, match="add a trailing '/'") as e:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            wds.WebDataset(str(tmp_path), shardshuffle=False)
    assert f"{tmp_path}/" in str(e.value)


def test_unknown_url_scheme_lists_the_supported_ones():
    with pytest.raises(ValueError) as e:
        gopen("nosuch://bucket/a.tar")
    msg = str(e.value)
    assert "nosuch" in msg
    for scheme in ("file", "http", "https", "pipe", "s3", "gs"):
        assert scheme in msg


def test_yaml_spec_without_pyyaml_says_pip_install(tmp_path):
    spec = tmp_path / "spec.yaml"
    spec.write_text("datasets:\n  - shards: a.tar\n")
    code = (
        "import sys, warnings; sys.modules['yaml'] = None\n"
        "warnings.simplefilter('ignore')\n"
        "import ppwebdataset as wds\n"
        f"wds.WebDataset({str(spec)!r})\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode != 0
    assert "ModuleNotFoundError" in r.stderr  # still what `except ImportError` and upstream give
    assert "pip install pyyaml" in r.stderr and "spec.yaml" in r.stderr
