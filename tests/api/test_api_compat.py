"""Every public name and signature of ppwebdataset==0.2.86 exists in ours (same module paths).

Both APIs are dumped by dump_api.py in subprocesses: 0.2.86 has the same import names as
ours, so it is loaded from .ref/ppwebdataset-0.2.86 (installed by scripts/setup.sh).
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
REF = ROOT / ".ref" / "ppwebdataset-0.2.86"
DUMP = Path(__file__).with_name("dump_api.py")

# Deliberate differences, each with its reason.
CHANGED_DEFAULTS = {
    # Shell pipes and pickle are opt-in; upstream's default url_to_name raised ObsoleteException.
    ("ppwebdataset.compat", "WebDataset", "url_to_name"),
    ("ppwebdataset", "WebDataset", "url_to_name"),
}

# Names in ppwebdataset.paddle come from Paddle itself.
PADDLE_NAMES = {"IterableDataset", "DataLoader", "PaddleTensor"}


def dump(pythonpath=None):
    env = dict(os.environ)
    # This checkout's package, not whatever the venv's .pth points at (another worktree).
    env["PYTHONPATH"] = str(pythonpath or ROOT / "python")
    out = subprocess.run([sys.executable, str(DUMP)], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout)


@pytest.fixture(scope="module")
def apis():
    if not (REF / "ppwebdataset" / "__init__.py").exists():
        pytest.skip("reference ppwebdataset==0.2.86 not installed (run scripts/setup.sh)")
    return dump(REF), dump()


def literal(text):
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return None


def compare_params(where, ref, ours, problems):
    ours_by_name = {p[0]: (i, p) for i, p in enumerate(ours)}
    has_var_kw = any(p[1] == "VAR_KEYWORD" for p in ours)
    has_var_pos = any(p[1] == "VAR_POSITIONAL" for p in ours)
    for i, (name, kind, default) in enumerate(ref):
        if kind == "VAR_POSITIONAL":
            if not has_var_pos:
                problems.append(f"{where}: lost *{name}")
            continue
        if kind == "VAR_KEYWORD":
            if not has_var_kw:
                problems.append(f"{where}: lost **{name}")
            continue
        if name not in ours_by_name:
            if not (has_var_kw and kind == "KEYWORD_ONLY"):
                problems.append(f"{where}: parameter {name!r} missing")
            continue
        j, (_, okind, odefault) = ours_by_name[name]
        if kind in ("POSITIONAL_ONLY", "POSITIONAL_OR_KEYWORD"):
            if j != i or okind not in ("POSITIONAL_ONLY", "POSITIONAL_OR_KEYWORD"):
                problems.append(f"{where}: positional parameter {name!r} moved ({i} -> {j}, {okind})")
        if default is not None and odefault is None:
            problems.append(f"{where}: parameter {name!r} lost its default {default}")
        if default is not None and odefault is not None and default != odefault:
            key = tuple(where.split(":")) + (name,)
            a, b = literal(default), literal(odefault)
            if (a is not None or default == "None") and a != b and key not in CHANGED_DEFAULTS:
                problems.append(f"{where}: default of {name!r} changed {default} -> {odefault}")
    ref_names = {p[0] for p in ref}
    for name, kind, default in ours:
        if name not in ref_names and kind in ("POSITIONAL_ONLY", "POSITIONAL_OR_KEYWORD", "KEYWORD_ONLY"):
            if default is None:
                problems.append(f"{where}: new required parameter {name!r}")


def test_every_name_and_signature(apis):
    ref, ours = apis
    problems = []
    for module, names in ref.items():
        if "__error__" in names:
            continue
        mine = ours.get(module)
        if mine is None or "__error__" in mine:
            problems.append(f"{module}: cannot import ({(mine or {}).get('__error__')})")
            continue
        for name, info in names.items():
            if info["kind"] == "module" and module != "ppwebdataset":
                continue  # incidental `from . import x` inside a submodule
            if name not in mine:
                problems.append(f"{module}.{name} missing")
                continue
            if info.get("params") is not None and mine[name].get("params") is not None:
                compare_params(f"{module}:{name}", info["params"], mine[name]["params"], problems)
    assert not problems, "\n".join(problems)


def test_paddle_module_names():
    import ppwebdataset.paddle as pp

    for name in PADDLE_NAMES:
        assert hasattr(pp, name)


def test_webdataset_102_additions():
    import ppwebdataset as wds

    for name in ("DecodingError", "FluidInterface"):
        assert hasattr(wds, name), name
    import inspect

    assert "empty_check" in inspect.signature(wds.WebDataset).parameters
    assert "opener" in inspect.signature(wds.ShardWriter).parameters
    assert "empty_check" in inspect.signature(wds.ResampledShards).parameters
