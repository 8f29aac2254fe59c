"""Print the public API of the installed ppwebdataset (whichever is first on sys.path) as JSON.

For every module: the public names defined by the package (not names it merely imports from
the standard library or third parties) and, for callables, their parameters; for classes also
their public members. ``python dump_api.py webdataset`` dumps webdataset 1.0.2 the same way
(its ``pytorch`` module stands for our ``paddle``).
"""

from __future__ import annotations

import importlib
import inspect
import json
import sys
import types
import warnings

MODULES = [
    "ppwebdataset",
    "ppwebdataset.autodecode",
    "ppwebdataset.cache",
    "ppwebdataset.cborsiterators",
    "ppwebdataset.compat",
    "ppwebdataset.extradatasets",
    "ppwebdataset.filters",
    "ppwebdataset.gopen",
    "ppwebdataset.handlers",
    "ppwebdataset.mix",
    "ppwebdataset.paddle",
    "ppwebdataset.pipeline",
    "ppwebdataset.shardlists",
    "ppwebdataset.tariterators",
    "ppwebdataset.tenbin",
    "ppwebdataset.utils",
    "ppwebdataset.writer",
]


PKG = sys.argv[1] if len(sys.argv) > 1 else "ppwebdataset"
if PKG != "ppwebdataset":
    MODULES = [PKG + m[len("ppwebdataset") :].replace(".paddle", ".pytorch") for m in MODULES]


def describe(obj):
    target = obj.__init__ if inspect.isclass(obj) else obj
    try:
        sig = inspect.signature(target)
    except (TypeError, ValueError):
        return None
    params = []
    for p in sig.parameters.values():
        if p.name == "self":
            continue
        default = None if p.default is inspect.Parameter.empty else repr(p.default)
        if default is not None and " at 0x" in default:
            default = "<object>"
        params.append([p.name, p.kind.name, default])
    return params


def public(module):
    out = {}
    for name in dir(module):
        if name.startswith("_"):
            continue
        try:
            value = getattr(module, name)
        except Exception:  # listed but not importable: reported as missing
            continue
        if isinstance(value, types.ModuleType):
            if value.__name__.startswith(PKG + "."):
                out[name] = {"kind": "module"}
            continue
        origin = getattr(value, "__module__", None)
        if callable(value):
            if not (isinstance(origin, str) and origin.startswith(PKG)):
                continue
            out[name] = {"kind": "class" if inspect.isclass(value) else "function", "params": describe(value)}
            if inspect.isclass(value):
                out[name]["members"] = sorted(m for m in vars(value) if not m.startswith("_"))
        elif isinstance(value, str | int | float | dict | list | tuple | set | frozenset | bool):
            out[name] = {"kind": "value"}
    return out


def main():
    warnings.simplefilter("ignore")
    result = {}
    for name in MODULES:
        try:
            module = importlib.import_module(name)
        except Exception as exn:  # a missing module is reported, not fatal
            result[name] = {"__error__": repr(exn)}
            continue
        result[name] = public(module)
    json.dump(result, sys.stdout, indent=1, sort_keys=True)


if __name__ == "__main__":
    main()
