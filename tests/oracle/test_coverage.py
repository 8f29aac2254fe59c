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


# -- ppwids (shipped with 0.2.86) -------------------------------------------------------------

WIDS_MODULES = ["ppwids", "ppwids.wids", "ppwids.wids_cleanup", "ppwids.wids_dl", "ppwids.wids_index"]
WIDS_MODULES += ["ppwids.wids_lru", "ppwids.wids_mmtar", "ppwids.wids_specs", "ppwids.wids_tar"]

WIDS_LISTER = r"""
import importlib, json, sys, types, warnings
warnings.simplefilter("ignore")
out = {}
for m in sys.argv[1:]:
    mod = importlib.import_module(m)
    def own(v):
        return not callable(v) or str(getattr(v, "__module__", "")).startswith("ppwids")
    out[m] = [n for n in dir(mod) if not n.startswith("_") and not isinstance(getattr(mod, n), types.ModuleType)
              and own(getattr(mod, n))]
print(json.dumps(out))
"""

#: 0.2.86 ppwids names without a case, each with its reason
WIDS_NOT_COVERED = {
    "T": "a typing.TypeVar of the module, not API",
    "T_co": "a typing.TypeVar of the module, not API",
    "open_itfs": "0.2.86's global registry of open shards; LRUShards owns and closes them",
    "open_objects": "0.2.86's global registry of open downloads; nothing is kept open",
    "max_open_objects": "limit of the registry above",
    "vcmd": "0.2.86's debug print of shell commands; downloads run argument lists",
    "verbose_cmd": "flag of vcmd",
    "maybe_decode": "private helper of 0.2.86's widsindex CLI",
    "maybe_read": "private helper of 0.2.86's widsindex CLI",
    "TarHeader": "0.2.86's ustar header parser; headers are parsed by the Rust index (GNU/pax names too)",
    "next_header": "see TarHeader",
    "parse_tar_header": "see TarHeader",
    "create_cleanup_background_process": "forks; 0.2.86's child ignores terminate() and hangs interpreter exit",
}


def test_every_ppwids_name_has_a_case():
    if not (REF / "ppwids" / "__init__.py").exists():
        pytest.skip("reference ppwebdataset==0.2.86 not installed (run scripts/setup.sh)")
    from cases_wids import WIDS

    env = dict(os.environ, PYTHONPATH=str(REF))
    proc = subprocess.run([sys.executable, "-c", WIDS_LISTER, *WIDS_MODULES], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    covered = set()
    for c in WIDS:
        for cover in c.covers:
            module, _, name = cover.rpartition(".")
            covered.add(id(getattr(importlib.import_module(module), name)))
    missing = []
    for module, names in json.loads(proc.stdout.strip().splitlines()[-1]).items():
        for name in names:
            obj = getattr(importlib.import_module(module), name, None)
            if name not in WIDS_NOT_COVERED and (obj is None or id(obj) not in covered):
                missing.append(f"{module}.{name}")
    assert not missing, missing
