"""Run the benchmark scenarios for ours and ppwebdataset==0.2.86 in one run and print a table.

Each measurement runs in a fresh process; the reference is imported from
.ref/ppwebdataset-0.2.86 (it has the same import names as ours). The figure
reported is the median over ``--runs`` measurements, ours and the reference
interleaved so that machine noise hits both alike.

    python benches/run.py [--runs 5] [--only stream_tiny,stream_large] [--data DIR] [--ours DIR]
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
REF = ROOT / ".ref" / "ppwebdataset-0.2.86"


def scenarios():
    names = sorted(p.stem for p in (HERE / "scenarios").glob("*.py") if not p.stem.startswith("_"))
    sys.path.insert(0, str(HERE))
    return {name: importlib.import_module(f"scenarios.{name}") for name in names}


OURS: Path | None = None  # --ours: the python/ dir of another checkout to measure as ours


def child_env(impl: str) -> dict:
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    env["PYTHONWARNINGS"] = "ignore"
    if impl != "ref" and OURS is not None:  # ours and its variants (ours_w0_t2, native_1core)
        env["PYTHONPATH"] = str(OURS)
    if impl == "ref":
        if not (REF / "ppwebdataset" / "__init__.py").exists():
            raise SystemExit(f"reference not installed in {REF}; run scripts/setup.sh")
        env["PYTHONPATH"] = str(REF)
    return env


def measure(name: str, impl: str, data: Path, timeout: float) -> dict:
    code = (
        f"import json, sys; from pathlib import Path; import scenarios.{name} as s; "
        f"r = s.run({impl!r}, Path({str(data)!r})); "
        "print('@@RESULT@@' + json.dumps(r if isinstance(r, dict) else {'value': r}))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=HERE,
        env=child_env(impl),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    for line in proc.stdout.splitlines():
        if line.startswith("@@RESULT@@"):
            return json.loads(line[len("@@RESULT@@") :])
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
    return {"error": f"exit {proc.returncode}: " + " | ".join(tail)}


def fmt(v: float | None) -> str:
    if v is None:
        return "-"
    if v >= 100:
        return f"{v:,.0f}"
    return f"{v:.3g}"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--only", default="")
    ap.add_argument("--data", default=str(ROOT / ".bench" / "data"))
    ap.add_argument("--timeout", type=float, default=900)
    ap.add_argument("--json", default=str(ROOT / ".bench" / "results.json"))
    ap.add_argument("--ours", default="", help="python/ dir of a checkout to measure (default: the installed tree)")
    args = ap.parse_args(argv)
    global OURS
    OURS = Path(args.ours).resolve() if args.ours else None
    data = Path(args.data)
    data.mkdir(parents=True, exist_ok=True)
    found = scenarios()
    wanted = [n for n in args.only.split(",") if n] or list(found)
    results = {}
    for name in wanted:
        mod = found[name]
        sdir = data / name
        sdir.mkdir(parents=True, exist_ok=True)
        t0 = time.time()
        mod.prepare(sdir)
        # A scenario with REFERENCE = False has no 0.2.86 counterpart; it is checked against LIMIT instead.
        refs = ["ref"] if getattr(mod, "REFERENCE", True) else []
        impls = ["ours", *refs, *getattr(mod, "EXTRA_IMPLS", {}).keys()]
        samples = {impl: [] for impl in impls}
        extras = {impl: [] for impl in impls}
        errors = {}
        for _ in range(args.runs):
            for impl in impls:
                r = measure(name, impl, sdir, args.timeout)
                if "error" in r:
                    errors[impl] = r["error"]
                    continue
                samples[impl].append(r["value"])
                extras[impl].append(r.get("extra", {}))
        med = {impl: (statistics.median(v) if v else None) for impl, v in samples.items()}
        results[name] = {
            "unit": mod.UNIT,
            "median": med,
            "runs": samples,
            "extra": extras,
            "errors": errors,
            "target": mod.TARGET,
            "limit": getattr(mod, "LIMIT", None),
            "extra_targets": getattr(mod, "EXTRA_IMPLS", {}),
            "seconds": time.time() - t0,
        }
        print(f"[{name}] done in {time.time() - t0:.0f}s", file=sys.stderr, flush=True)
    print_table(results)
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


def print_table(results):
    rows = [("scenario", "unit", "ours", "0.2.86", "ours/0.2.86", "target", "ok", "notes")]
    for name, r in results.items():
        ours, ref = r["median"].get("ours"), r["median"].get("ref")
        ratio = ours / ref if ours and ref else None
        if r.get("limit") is not None:  # no reference: ours must stay at or below the limit
            ok = ours is not None and ours <= r["limit"]
            target = f"<={r['limit']}"
        else:
            ok = ratio is not None and ratio >= r["target"]
            target = f">={r['target']}x"
        notes = []
        for impl, need in r["extra_targets"].items():
            base = r["median"].get(impl)
            if ours and base:
                frac = ours / base
                ok = ok and frac >= need
                notes.append(f"{impl} {fmt(base)} ({frac:.0%} of it, need {need:.0%})")
        for impl, ex in r["extra"].items():
            vals = [e for e in ex if e]
            if vals:
                keys = sorted(vals[0])
                notes.append(impl + " " + ", ".join(f"{k}={fmt(max(e[k] for e in vals))}" for k in keys))
        for impl, err in r["errors"].items():
            notes.append(f"{impl} ERROR {err[:120]}")
        rows.append(
            (
                name,
                r["unit"],
                fmt(ours),
                fmt(ref),
                f"{ratio:.1f}x" if ratio else "-",
                target,
                "yes" if ok else "NO",
                "; ".join(notes),
            )
        )
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=False)) + "  " + row[-1])


if __name__ == "__main__":
    sys.exit(main())
