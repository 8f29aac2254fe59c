"""The behavioural oracle: every case of cases.py on ours, webdataset 1.0.2 and ppwebdataset 0.2.86.

Ours and 1.0.2 run in this process; 0.2.86 (same import name as ours) runs all cases once
in a subprocess (oracle.py). Each case's rule says which reference ours must agree with.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cases import BOTH, CASES, OURS_ONLY, V0286, V102
from cases_wids import WIDS
from oracle import OURS, Pkg, run_case, same

ROOT = Path(__file__).resolve().parents[2]
REF = ROOT / ".ref" / "ppwebdataset-0.2.86"
pytest.importorskip("webdataset")


def run_0286(tmp_path_factory, table):
    """Results of every case of ``table`` ("module:NAME") on ppwebdataset 0.2.86, in a subprocess."""
    if not (REF / "ppwebdataset" / "__init__.py").exists():
        pytest.skip("reference ppwebdataset==0.2.86 not installed (run scripts/setup.sh)")
    env = dict(os.environ, PYTHONPATH=str(REF))
    script = Path(__file__).with_name("oracle.py")
    out = tmp_path_factory.mktemp("oracle") / "ref0286.json"
    cmd = [sys.executable, str(script), str(out), table]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(out.read_text())


@pytest.fixture(scope="session")
def ref0286(tmp_path_factory):
    return run_0286(tmp_path_factory, "cases:CASES")


def params(table):
    out = []
    for c in table:
        marks = [pytest.mark.xfail(strict=True, reason=c.xfail)] if c.xfail else []
        out.append(pytest.param(c, id=c.name, marks=marks))
    return out


def check_case(c, ref0286):
    """Run ``c`` on ours and compare with the reference(s) its rule names."""
    ours = run_case(c.fn, Pkg(OURS))
    if c.rule == OURS_ONLY:
        assert c.check(ours), f"{c.name}: {ours}"
        return
    refs = {}
    if c.rule in (BOTH, V102):
        refs[V102] = run_case(c.fn, Pkg(V102))
    if c.rule in (BOTH, V0286):
        refs[V0286] = ref0286[c.name]
    for kind, ref in refs.items():
        assert same(ours, ref), f"{c.name}: ours differs from {kind}\nours: {ours}\n{kind}: {ref}"


@pytest.mark.parametrize("c", params(CASES))
def test_case(c, ref0286):
    check_case(c, ref0286)


@pytest.fixture(scope="session")
def wids0286(tmp_path_factory):
    return run_0286(tmp_path_factory, "cases_wids:WIDS")


@pytest.mark.parametrize("c", params(WIDS))
def test_wids_case(c, wids0286):
    check_case(c, wids0286)
