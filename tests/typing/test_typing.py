"""Checkers see the real API: _core.pyi matches the native module, static __all__ matches the
lazy exports, every export is visible to checkers, and pipelines print their stages."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

import ppwebdataset
import ppwids
from ppwebdataset import _core

ROOT = Path(__file__).resolve().parents[2]
PYTHON = ROOT / "python"


def test_core_stub_matches_the_runtime():
    # mypy.stubtest imports the module and compares every name and signature with the stub.
    env = dict(os.environ, PYTHONPATH=str(PYTHON), MYPYPATH=str(PYTHON))
    r = subprocess.run(
        [sys.executable, "-m", "mypy.stubtest", "ppwebdataset._core"],
        capture_output=True,
        text=True,
        env=env,
        cwd=PYTHON,
    )
    assert r.returncode == 0, r.stdout + r.stderr


def test_core_stub_names_every_runtime_name():
    tree = ast.parse((PYTHON / "ppwebdataset" / "_core.pyi").read_text())
    stub = {n.name for n in tree.body if isinstance(n, ast.ClassDef | ast.FunctionDef)}
    stub |= {t.id for n in tree.body if isinstance(n, ast.AnnAssign) for t in [n.target] if isinstance(t, ast.Name)}
    public = {n for n in dir(_core) if not n.startswith("_")} | {"__version__"}
    assert public <= stub | {"__version__"}, public - stub


def _type_checking_names(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            for imp in node.body:
                if isinstance(imp, ast.ImportFrom):
                    names |= {a.asname or a.name for a in imp.names}
        if isinstance(node, ast.ImportFrom):
            names |= {a.asname or a.name for a in node.names}
    return names


def test_static_all_matches_lazy_exports():
    computed = sorted([*ppwebdataset._WHERE, "gopen", "gopen_schemes", "tenbin", "__version__"])
    assert sorted(ppwebdataset.__all__) == computed
    assert sorted(ppwids.__all__) == sorted([*ppwids._CLASSES, "__version__"])


def test_checkers_see_every_export():
    seen = _type_checking_names(PYTHON / "ppwebdataset" / "__init__.py")
    assert set(ppwebdataset.__all__) <= seen
    assert set(ppwebdataset._SUBMODULES) <= seen
    seen = _type_checking_names(PYTHON / "ppwids" / "__init__.py")
    assert set(ppwids.__all__) <= seen and set(ppwids._SUBMODULES) <= seen


def test_lazy_import_still_cheap():
    code = "import sys, ppwebdataset, ppwids; print('paddle' in sys.modules, 'ppwebdataset.compat' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_fluent_methods_have_docstrings_and_return_self_type():
    import inspect

    from ppwebdataset.compat import FluidInterface

    methods = [m for m, f in vars(FluidInterface).items() if inspect.isfunction(f) and not m.startswith("_")]
    assert len(methods) >= 20
    for name in methods:
        f = getattr(FluidInterface, name)
        assert f.__doc__, name
        assert f.__annotations__.get("return") == "Self", name


def test_pipeline_repr_lists_its_stages():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = (
            ppwebdataset.WebDataset(["a.tar", "b.tar", "c.tar"], shardshuffle=False)
            .shuffle(100)
            .to_tuple("jpg", "cls")
            .batched(8)
            .with_epoch(50)
        )
    text = repr(ds)
    lines = text.splitlines()
    assert lines[0] == "WebDataset("
    assert lines[1] == "  0: SimpleShardList(3 urls: 'a.tar', 'b.tar', ...),"
    assert "  1: single_node_only," in lines and "  2: split_by_worker," in lines
    assert any(line.startswith("  4: shuffle(bufsize=100") for line in lines)
    assert "  5: to_tuple('jpg', 'cls')," in lines
    assert "  6: batched(8, collation_fn=default_collation_fn, partial=True)," in lines
    assert "  repeated forever, 50 items per epoch" in lines and lines[-1] == ")"


@pytest.mark.parametrize("bad", ["100", 10.5, None])
def test_shuffle_wants_an_int(bad):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = ppwebdataset.WebDataset(["a.tar"], shardshuffle=False)
    with pytest.raises(TypeError, match="shuffle\\(\\) wants an int buffer size"):
        ds.shuffle(bad)
