"""Every public name of webdataset 1.0.2 and ppwebdataset 0.2.86 has at least one oracle case.

The public names come from tests/api/dump_api.py run on each reference (every module's
names defined by the package, and the members of the pipeline classes). A name counts as
covered when a case's ``covers`` resolves to the same object in our package. Names that
have no case are listed in ``NOT_COVERED`` with the reason; a new upstream name, or one
that loses its case, fails this test.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cases import CASES

ROOT = Path(__file__).resolve().parents[2]
REF = ROOT / ".ref" / "ppwebdataset-0.2.86"
DUMP = ROOT / "tests" / "api" / "dump_api.py"

#: the classes whose public members (fluent methods) need cases of their own
MEMBER_CLASSES = {"FluidInterface", "DataPipeline", "WebDataset"}

#: public reference names without a case, each with its reason
NOT_COVERED = {
    "TorchTensor": "torch is not a dependency (importing it costs seconds); Paddle's is paddle.PaddleTensor",
    "pytorch_weights_only": "torch.load of data is refused unless PPWDS_ALLOW_PICKLE=1; no weights-only switch",
    "obsolete": "shardlists.obsolete is only the decorator imported there (covered as utils.obsolete)",
}


def dump(package, pythonpath):
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    if pythonpath:
        env["PYTHONPATH"] = str(pythonpath)
    args = [sys.executable, str(DUMP)] + ([package] if package != "ppwebdataset" else [])
    out = subprocess.run(args, capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout)


def reference_names(api, package):
    """``{(our module, name)}`` for every public name (and pipeline-class member) of a reference."""
    names = set()
    for module, entries in api.items():
        if "__error__" in entries:
            continue
        ours = "ppwebdataset" + module[len(package) :].replace(".pytorch", ".paddle")
        for name, info in entries.items():
            if info["kind"] == "module":
                continue
            names.add((ours, name))
            if name in MEMBER_CLASSES:
                names.update((ours, f"{name}.{m}") for m in info.get("members", []))
    return names


def resolve(module, dotted):
    obj = importlib.import_module(module)
    for part in dotted.split("."):
        obj = getattr(obj, part)
    return obj


def key(module, dotted):
    """What identifies a name: the object itself, or for plain values the qualified name."""
    try:
        obj = resolve(module, dotted)
    except (AttributeError, ImportError):
        return None
    if callable(obj) or isinstance(obj, type):
        return ("obj", id(obj))
    return ("value", dotted.rsplit(".", 1)[-1], id(obj))


def covered_keys():
    """Keys of everything the cases cover, plus the bare names of covers that only an
    xfail case uses (a name another branch adds: it must not exist here yet)."""
    out, pending = set(), set()
    for c in CASES:
        for cover in c.covers:
            head, _, rest = cover.partition(".")
            if rest and importlib.util.find_spec(f"ppwebdataset.{head}") is not None and head[0].islower():
                k = key(f"ppwebdataset.{head}", rest)
            else:
                k = key("ppwebdataset", cover)
            if k is None and c.xfail:
                pending.add(cover.rsplit(".", 1)[-1])
                continue
            assert k is not None, f"case {c.name} covers {cover!r}, which ours does not have"
            out.add(k)
    return out, pending


@pytest.fixture(scope="module")
def names():
    if not (REF / "ppwebdataset" / "__init__.py").exists():
        pytest.skip("reference ppwebdataset==0.2.86 not installed (run scripts/setup.sh)")
    pytest.importorskip("webdataset")
    return reference_names(dump("webdataset", None), "webdataset") | reference_names(
        dump("ppwebdataset", REF), "ppwebdataset"
    )


def test_every_public_name_has_a_case(names):
    covered, pending = covered_keys()
    missing = []
    for module, name in sorted(names):
        if name.rsplit(".", 1)[-1] in NOT_COVERED:
            continue
        k = key(module, name)
        if k is None and name in pending:
            continue
        if k is None:
            missing.append(f"{module}.{name}: not in ours")
        elif k not in covered:
            missing.append(f"{module}.{name}: no case")
    assert not missing, f"{len(missing)} public names without an oracle case:\n" + "\n".join(missing)


def test_allow_list_is_still_needed(names):
    listed = {n.rsplit(".", 1)[-1] for _, n in names}
    assert set(NOT_COVERED) <= listed, set(NOT_COVERED) - listed
