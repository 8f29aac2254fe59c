"""Machinery of the behavioural oracle: run one case on a package, normalise what it did.

A *case* is a function ``case(P, tmp)``: ``P`` gives the package under test
(ours, webdataset 1.0.2 or ppwebdataset 0.2.86: ``P.wds`` is the top module,
``P.m("filters")`` a submodule), ``tmp`` a fresh directory that is also the
working directory. Whatever the case returns or raises, plus the files left in
``tmp`` and the child processes left running, is normalised into plain JSON
data, so results from the reference in a subprocess compare with ours.

This file imports no package under test at module level: ``python oracle.py OUT``
runs every case of ``cases.py`` on whichever ``ppwebdataset`` is first on
``sys.path`` (the 0.2.86 reference) and writes the results as JSON to ``OUT``.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import io
import json
import os
import signal
import sys
import tempfile
import warnings
from pathlib import Path

CASE_TIMEOUT = 30

#: which package a result came from
OURS, V102, V0286 = "ours", "1.0.2", "0.2.86"


class Pkg:
    """The package under test as the cases see it."""

    def __init__(self, kind):
        self.kind = kind
        self.top = "webdataset" if kind == V102 else "ppwebdataset"
        self.wds = importlib.import_module(self.top)

    def m(self, sub):
        """Submodule ``sub`` (our ``paddle`` is 1.0.2's ``pytorch``)."""
        if self.kind == V102 and sub == "paddle":
            sub = "pytorch"
        return importlib.import_module(f"{self.top}.{sub}")

    @property
    def ours(self):
        return self.kind == OURS


def _is_tensor(x):
    mod = type(x).__module__ or ""
    return (mod.startswith("paddle") or mod.startswith("torch")) and hasattr(x, "numpy") and hasattr(x, "shape")


def normalise(x, tmp="", depth=0):
    """Plain, comparable JSON data for ``x``.

    numpy arrays and Paddle/torch tensors become the same ``{"nd": ...}`` form
    (tensor results compare with array results by value and dtype); tuples and
    lists are both lists; bytes are hex (a digest when long); the temporary
    directory's path is replaced by ``<tmp>``; iterators are drained (at most
    1000 items); other objects are described by their type name only.
    """
    import numpy as np

    if depth > 40:
        return {"deep": True}
    if isinstance(x, BaseException):  # a sub-call's exception (cases.attempt)
        return {"raised": [c.__name__ for c in type(x).__mro__ if c is not object]}
    if x is None or isinstance(x, bool | int):
        return x
    if isinstance(x, float):
        return "nan" if x != x else round(x, 6)
    if isinstance(x, str):
        return x.replace(tmp, "<tmp>") if tmp else x
    if isinstance(x, bytes | bytearray | memoryview):
        b = bytes(x)
        if tmp:
            b = b.replace(tmp.encode(), b"<tmp>")
        return {"bytes": b.hex()} if len(b) <= 512 else {"bytes-sha": hashlib.sha256(b).hexdigest(), "len": len(b)}
    if _is_tensor(x):
        x = np.asarray(x.numpy())
    if isinstance(x, np.ndarray):
        return {"nd": x.dtype.name, "shape": list(x.shape), "v": normalise(x.tolist(), tmp, depth + 1)}
    if isinstance(x, np.generic):
        return {"np": x.dtype.name, "v": normalise(x.item(), tmp, depth + 1)}
    if isinstance(x, dict):
        return {"dict": {str(k): normalise(v, tmp, depth + 1) for k, v in sorted(x.items(), key=lambda kv: str(kv[0]))}}
    if isinstance(x, list | tuple):
        return [normalise(v, tmp, depth + 1) for v in x]
    if isinstance(x, set | frozenset):
        return {"set": sorted((normalise(v, tmp, depth + 1) for v in x), key=repr)}
    if type(x).__module__.startswith("PIL"):
        return {"pil": x.mode, "size": list(x.size), "sha": hashlib.sha256(x.tobytes()).hexdigest()[:16]}
    if isinstance(x, io.IOBase) and hasattr(x, "read"):
        return {"stream": normalise(x.read(), tmp, depth + 1)}
    if isinstance(x, type):
        return {"type": x.__name__}
    if hasattr(x, "__next__"):
        out = []
        for i, v in enumerate(x):
            if i >= 1000:
                break
            out.append(normalise(v, tmp, depth + 1))
        return {"iter": out}
    return {"obj": type(x).__name__}


def exception_record(exn):
    return {"exc": [c.__name__ for c in type(exn).__mro__ if c is not object]}


def _children():
    pid = os.getpid()
    out = set()
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            out.update(int(p) for p in (task / "children").read_text().split())
    alive = set()
    for p in out:
        with contextlib.suppress(OSError):
            state = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()[0]
            if state != "Z":
                alive.add(p)
    return alive


def _listing(tmp):
    files = []
    for root, dirs, names in os.walk(tmp):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for n in names:
            files.append(os.path.relpath(os.path.join(root, n), tmp))
    return sorted(files)


class _Timeout(Exception):
    pass


def _alarm(signum, frame):
    raise _Timeout(f"case took more than {CASE_TIMEOUT} s")


def run_case(fn, pkg, tmp=None):
    """Run case ``fn`` on ``pkg`` in a fresh directory; the normalised record of what happened."""
    with contextlib.ExitStack() as stack:
        if tmp is None:
            tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="oracle-"))
        tmp = os.path.realpath(tmp)
        before = _children()
        cwd = os.getcwd()
        env = dict(os.environ)
        os.chdir(tmp)
        old = signal.signal(signal.SIGALRM, _alarm)
        signal.alarm(CASE_TIMEOUT)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                value = normalise(fn(pkg, Path(tmp)), tmp)
            record = {"value": value}
        except Exception as exn:  # the exception type is part of the behaviour
            record = exception_record(exn)
            record["msg"] = str(exn)[:300].replace(tmp, "<tmp>")
        finally:
            signal.alarm(0)
            signal.signal(signal.SIGALRM, old)
            os.chdir(cwd)
            os.environ.clear()
            os.environ.update(env)
        record["files"] = _listing(tmp)
        record["children"] = len(_children() - before)
        return record


def same(ours, ref):
    """Whether our record matches the reference's: equal values, or an exception of the
    reference's type (ours may be a subclass), and the same files and leftover processes.

    Where a reference fails an ``assert`` on bad input, ours raises ValueError or
    TypeError with a message instead (asserts vanish under ``python -O``): a listed
    difference."""
    if "exc" in ref:
        ok = "exc" in ours and _same_exception(ours["exc"], ref["exc"])
    else:
        ok = "value" in ours and _match(ours["value"], ref["value"])
    return ok and ours["files"] == ref["files"] and ours["children"] == ref["children"]


def _same_exception(ours, ref):
    expected = ref[0]
    return expected in ours or (expected == "AssertionError" and ours[0] in ("ValueError", "TypeError"))


def _match(ours, ref):
    """Equality, except that a sub-call's exception matches a subclass of the reference's."""
    if isinstance(ref, dict) and set(ref) == {"raised"}:
        return isinstance(ours, dict) and set(ours) == {"raised"} and _same_exception(ours["raised"], ref["raised"])
    if isinstance(ref, list):
        return isinstance(ours, list) and len(ours) == len(ref) and all(map(_match, ours, ref))
    if isinstance(ref, dict):
        return isinstance(ours, dict) and ours.keys() == ref.keys() and all(_match(ours[k], ref[k]) for k in ref)
    return ours == ref


def main():
    """``oracle.py OUT [MODULE:TABLE]``: run a case table (default ``cases:CASES``) on 0.2.86."""
    sys.path.insert(0, str(Path(__file__).parent))
    module, _, table = (sys.argv[2] if len(sys.argv) > 2 else "cases:CASES").partition(":")
    pkg = Pkg(V0286)
    out = {}
    for c in getattr(importlib.import_module(module), table):
        if V0286 in c.skip:
            continue
        out[c.name] = run_case(c.fn, pkg)
    # A file, not stdout: the reference prints progress of its own.
    with open(sys.argv[1], "w") as stream:
        json.dump(out, stream, sort_keys=True)


if __name__ == "__main__":
    main()
