"""The one settings module: boolean parsing, the pickle/pipe switches, and 1.0.2's enforce_security."""

from __future__ import annotations

import importlib
import io
import pickle
import tarfile

import numpy as np
import pytest
import webdataset as wds102
import webdataset.autodecode as ad102
import webdataset.utils as utils102

import ppwebdataset as wds
import ppwebdataset.autodecode as ad
import ppwebdataset.utils as U
import ppwids.wids_decode as wd
from ppwebdataset import _settings
from ppwebdataset.errors import UnsafeOperationError

G = importlib.import_module("ppwebdataset.gopen")
gopen102 = importlib.import_module("webdataset.gopen")  # the package attribute `gopen` is the function


@pytest.fixture(autouse=True)
def _clean(monkeypatch):
    for name in ("PPWDS_ALLOW_PICKLE", "PPWDS_ALLOW_PIPE", "WDS_SECURE", "GOPEN_REWRITE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(U, "enforce_security", None)
    monkeypatch.setattr(ad, "ALLOW_PICKLE", False)
    monkeypatch.setattr(wd, "ALLOW_PICKLE", False)
    monkeypatch.setattr(utils102, "enforce_security", False)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("1", True), ("true", True), ("True", True), ("TRUE", True), ("yes", True), ("on", True),
        ("y", True), ("t", True), (" 1 ", True), ("2", True), ("-1", True),
        ("0", False), ("false", False), ("False", False), ("no", False), ("off", False), ("n", False),
        ("f", False), ("", False), ("  ", False), ("00", False),
    ],
)  # fmt: skip
def test_parse_bool_table(text, expected, monkeypatch):
    assert _settings.parse_bool(text) is expected
    monkeypatch.setenv("SOME_SWITCH", text)
    assert _settings.env_flag("SOME_SWITCH") is expected


@pytest.mark.parametrize("text", ["maybe", "enable", "1.5", "tru"])
def test_parse_bool_rejects_garbage(text, monkeypatch):
    monkeypatch.setenv("SOME_SWITCH", text)
    with pytest.raises(ValueError, match="SOME_SWITCH"):
        _settings.env_flag("SOME_SWITCH")


def test_env_flag_default_when_unset():
    assert _settings.env_flag("PPWDS_SURELY_UNSET") is False
    assert _settings.env_flag("PPWDS_SURELY_UNSET", True) is True


PICKLED = pickle.dumps({"a": 1})


@pytest.mark.parametrize("value", ["1", "true", "yes", "on"])
def test_one_pickle_switch_for_both_packages(value, monkeypatch):
    # Before: PPWDS_ALLOW_PICKLE=true unpickled in ppwids and was refused in ppwebdataset.
    monkeypatch.setenv("PPWDS_ALLOW_PICKLE", value)
    assert ad.pickle_allowed() and wd.pickle_allowed()
    assert ad.unpickle_loads(PICKLED) == {"a": 1}
    assert wd.decode_basic({".pkl": PICKLED})[".pkl"] == {"a": 1}


def test_pickle_refused_by_default_in_both_packages():
    with pytest.raises(UnsafeOperationError, match="PPWDS_ALLOW_PICKLE=1"):
        ad.unpickle_loads(PICKLED)
    with pytest.raises(UnsafeOperationError, match="PPWDS_ALLOW_PICKLE=1"):
        wd.decode_basic({".pkl": PICKLED})
    # The module toggles still work, and either one enables both (one switch).
    wd.ALLOW_PICKLE = True
    assert ad.unpickle_loads(PICKLED) == {"a": 1}


def test_handler_sees_how_to_allow_unpickling():
    seen = []

    def handler(exn):
        seen.append(str(exn))
        return True

    sample = {"__key__": "k", "__url__": "u.tar", "pyd": PICKLED}
    out = list(wds.decode(handler=handler)(iter([sample])))
    assert out == [] and len(seen) == 1
    assert "PPWDS_ALLOW_PICKLE=1" in seen[0] and "'pyd'" in seen[0]


def secure_outcome(f):
    try:
        f()
    except Exception as exn:
        return type(exn), str(exn)
    return None


def ours_and_reference(ours, ref, monkeypatch, value=True):
    monkeypatch.setattr(U, "enforce_security", value)
    monkeypatch.setattr(utils102, "enforce_security", value)
    return secure_outcome(ours), secure_outcome(ref)


def test_enforce_security_blocks_like_1_0_2(tmp_path, monkeypatch):
    path = tmp_path / "x.bin"
    path.write_bytes(b"data")
    cases = {
        "pipe": (lambda: G.gopen(f"pipe:cat {path}"), lambda: gopen102.gopen(f"pipe:cat {path}")),
        "local": (lambda: G.gopen(str(path)), lambda: gopen102.gopen(str(path))),
        "file": (lambda: G.gopen(f"file://{path}"), lambda: gopen102.gopen(f"file://{path}")),
        "unpickle": (lambda: ad.unpickle_loads(PICKLED), lambda: ad102.unpickle_loads(PICKLED)),
    }
    for name, (ours, ref) in cases.items():
        (otype, omsg), (rtype, rmsg) = ours_and_reference(ours, ref, monkeypatch)
        assert issubclass(otype, ValueError) and rtype is ValueError, name
        assert omsg == rmsg, name
    monkeypatch.setenv("GOPEN_REWRITE", "http://a/=http://b/")
    (otype, omsg), (rtype, rmsg) = ours_and_reference(
        lambda: G.gopen("http://a/x"), lambda: gopen102.gopen("http://a/x"), monkeypatch
    )
    assert issubclass(otype, ValueError) and omsg == rmsg
    with pytest.raises(ValueError, match="paddle.loads is not allowed"):
        ad.paddle_loads(b"")
    with pytest.raises(ValueError, match="Unpickling is not allowed"):
        wd.decode_basic({".pkl": PICKLED})


def test_enforce_security_covers_the_rust_fast_path(tmp_path, monkeypatch):
    path = tmp_path / "s.tar"
    with tarfile.open(path, "w") as tf:
        info = tarfile.TarInfo("a.txt")
        info.size = 1
        tf.addfile(info, io.BytesIO(b"x"))
    monkeypatch.setattr(U, "enforce_security", True)
    with pytest.raises(ValueError, match="cannot open local files"):
        list(wds.WebDataset(str(path), shardshuffle=False))
    monkeypatch.setattr(U, "enforce_security", False)
    assert [s["txt"] for s in wds.WebDataset(str(path), shardshuffle=False)] == [b"x"]


def test_enforce_security_false_allows_everything(tmp_path, monkeypatch):
    monkeypatch.setattr(U, "enforce_security", False)
    assert ad.unpickle_loads(PICKLED) == {"a": 1}
    assert wd.decode_basic({".pkl": PICKLED})[".pkl"] == {"a": 1}
    path = tmp_path / "x.bin"
    path.write_bytes(b"data")
    with G.gopen(f"pipe:cat {path}") as f:
        assert f.read() == b"data"
    with G.gopen(f"file://{path}") as f:
        assert f.read() == b"data"
    # The reference agrees.
    with gopen102.gopen(f"pipe:cat {path}") as f:
        assert f.read() == b"data"
    assert ad102.unpickle_loads(PICKLED) == {"a": 1}
    buf = io.BytesIO()
    np.save(buf, np.arange(3))
    assert wds102.autodecode.npy_loads(buf.getvalue()).tolist() == [0, 1, 2]


@pytest.mark.parametrize("value, expected", [("1", True), ("0", False), ("true", True), ("off", False)])
def test_wds_secure_env_sets_the_initial_value(value, expected, monkeypatch):
    monkeypatch.setenv("WDS_SECURE", value)
    assert _settings.initial_security() is expected
    monkeypatch.delenv("WDS_SECURE")
    assert _settings.initial_security() is None


def test_module_toggles_are_read_through_settings(tmp_path, monkeypatch):
    data_pipe = _settings.from_data(f"pipe:cat {tmp_path}/none", "http://h/list")
    assert not G.pipe_allowed()
    with pytest.raises(UnsafeOperationError):
        G.gopen(data_pipe)
    monkeypatch.setattr(G, "ALLOW_PIPE", True)
    assert G.pipe_allowed() and _settings.allow_pipe()
    monkeypatch.setattr(G, "ALLOW_PIPE", False)
    monkeypatch.setattr(wds.gopen, "ALLOW_PIPE", True)  # the package-level function attribute
    assert _settings.allow_pipe()
    monkeypatch.setattr(wds.gopen, "ALLOW_PIPE", False)
    monkeypatch.setattr(ad, "ALLOW_PICKLE", True)
    assert _settings.allow_pickle() and wd.pickle_allowed()


def test_switches_are_read_only_through_settings():
    # Reads of the environment live in _settings; the exceptions write (multi.py) or look up
    # the user's own ${VAR} names (shardlists.envlookup).
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "python"
    allowed = {("ppwebdataset", "_settings.py"), ("ppwebdataset", "multi.py"), ("ppwebdataset", "shardlists.py")}
    offenders = []
    for path in sorted(root.rglob("*.py")):
        text = path.read_text()
        if ("os.environ" in text or "os.getenv" in text) and (path.parent.name, path.name) not in allowed:
            offenders.append(str(path.relative_to(root)))
    assert offenders == []
    shardlists = (root / "ppwebdataset" / "shardlists.py").read_text()
    assert shardlists.count("os.environ") == 2  # envlookup only


SECURE_SCRIPT = """
import importlib, sys
name = sys.argv[1]
utils = importlib.import_module(name + ".utils")
gopen = importlib.import_module(name + ".gopen")
out = [repr(utils.enforce_security)]
try:
    gopen.gopen(sys.argv[2])
    out.append("opened")
except ValueError as exn:
    out.append(str(exn))
print("|".join(out))
"""


@pytest.mark.parametrize("value", ["1", "0"])
def test_wds_secure_env_at_import_like_1_0_2(tmp_path, value):
    import os
    import subprocess
    import sys
    from pathlib import Path

    path = tmp_path / "x.bin"
    path.write_bytes(b"x")
    env = dict(os.environ, WDS_SECURE=value, PYTHONPATH=str(Path(U.__file__).resolve().parents[1]))
    outs = []
    for name in ("ppwebdataset", "webdataset"):
        proc = subprocess.run(
            [sys.executable, "-c", SECURE_SCRIPT, name, str(path)], env=env, capture_output=True, text=True
        )
        assert proc.returncode == 0, proc.stderr[-2000:]
        outs.append(proc.stdout.strip())
    assert outs[0] == outs[1]
    assert outs[0] == ("True|gopen: unsafe_gopen is False, cannot open local files" if value == "1" else "False|opened")
