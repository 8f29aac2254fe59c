"""Same outputs as ppwebdataset 0.2.86 for the deterministic filters (run in a subprocess)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
REF = ROOT / ".ref" / "ppwebdataset-0.2.86"

SCRIPT = r"""
import json, random, warnings
warnings.simplefilter("ignore")
import numpy as np
import ppwebdataset.filters as F

def samples():
    return [{"__key__": f"k{i}", "png": i, "cls": i % 3, "txt": f"t{i}", "a.JPG": i * 10} for i in range(7)]

def jsonable(x):
    if isinstance(x, np.ndarray):
        return {"nd": x.tolist(), "dtype": str(x.dtype)}
    if isinstance(x, (list, tuple)):
        return [jsonable(y) for y in x]
    if isinstance(x, dict):
        return {str(k): jsonable(v) for k, v in x.items()}
    if isinstance(x, np.generic):
        return {"np": x.item(), "dtype": str(x.dtype)}
    return x

out = {}
out["to_tuple"] = list(F.to_tuple("jpg;png", "cls")(iter(samples())))
out["to_tuple_str"] = list(F.to_tuple("png txt")(iter(samples())))
out["rename"] = list(F.rename(image="jpg;png", label="cls")(iter(samples())))
out["rename_nokeep"] = list(F.rename(image="jpg;png", keep=False)(iter(samples())))
out["map_dict"] = list(F.map_dict(cls=lambda x: x + 100)(iter(samples())))
out["map_tuple"] = list(F.map_tuple(lambda x: -x, None)(iter([(1, 2), (3, 4)])))
out["map"] = list(F.map(lambda s: None if s["cls"] == 0 else {"v": s["png"]})(iter(samples())))
out["select"] = [s["__key__"] for s in F.select(lambda s: s["cls"] == 1)(iter(samples()))]
out["extract"] = list(F.extract_keys("*.jpg", "*.txt;*png")(iter([{"a.jpg": 1, "png": 2}])))
out["rename_keys"] = list(F.rename_keys(img="*.jpg", keep_unselected=True)(iter(samples())))
out["slice"] = list(F.slice(1, 6, 2)(iter(range(10))))
tuples = [(np.full((2,), i, dtype=np.float32), i, f"s{i}", 0.5 * i) for i in range(5)]
out["batched"] = [jsonable(b) for b in F.batched(2)(iter(tuples))]
out["batched_nopartial"] = [jsonable(b) for b in F.batched(2, partial=False)(iter(tuples))]
out["unbatched"] = [jsonable(s) for s in F.unbatched()(F.batched(2)(iter(tuples)))]
out["shuffle_rng"] = list(F.shuffle(10, 3, rng=random.Random(9))(iter(range(50))))
out["getfirst"] = F.getfirst({"b": 1}, "a;b")
out["parse"] = F.parse_field_spec("a;b c")
out["transform"] = F.transform_with([1, 2, 3], [lambda x: x * 2, None])
print(json.dumps(jsonable(out), sort_keys=True))
"""


def run(pythonpath=None):
    env = dict(os.environ)
    # This checkout's package, not whatever the venv's .pth points at (another worktree).
    env["PYTHONPATH"] = str(pythonpath or ROOT / "python")
    proc = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_same_results_as_0_2_86():
    if not (REF / "ppwebdataset" / "__init__.py").exists():
        pytest.skip("reference ppwebdataset==0.2.86 not installed (run scripts/setup.sh)")
    ref, ours = run(REF), run()
    assert ref.keys() == ours.keys()
    for name in ref:
        assert ours[name] == ref[name], name
