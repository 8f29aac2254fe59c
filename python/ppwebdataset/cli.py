"""The ``ppwebdataset`` command (also ``python -m ppwebdataset``).

    ppwebdataset inspect shard-000000.tar            # members, samples, extensions, first keys
    ppwebdataset lint 'data/shard-{000000..000099}.tar' -j 4
    ppwebdataset index 'data/shard-{000000..000099}.tar' -o data.json
    ppwebdataset bench --only stream_large

``lint`` and ``inspect`` read local shards (plain, gzip or bzip2 tar) with the Rust reader:
payloads are skipped, not copied into Python. ``lint`` exits 1 when a shard has an error
(with ``--strict`` also on warnings), 0 otherwise; usage and I/O problems exit 2.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from ._progress import Progress
from ._settings import env_flag

SHARD_SUFFIXES = (".tar", ".tgz", ".tar.gz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")
_GLOB_CHARS = set("*?[")


class CliError(Exception):
    """A problem with the command line or the files named on it: printed as one line, exit 2."""


def _version() -> str:
    from ._core import __version__

    return __version__


def add_common(parser: argparse.ArgumentParser, prog: str) -> None:
    """``--version`` and ``--debug`` on a (sub)command."""
    parser.add_argument("--version", action="version", version=f"{prog} (ppwebdataset) {_version()}")
    parser.add_argument(
        "--debug", action="store_true", default=argparse.SUPPRESS, help="show the traceback of an error"
    )


def run_main(main: Callable[[Sequence[str] | None], int], argv: Sequence[str] | None, prog: str) -> int:
    """Run ``main``; an exception becomes one ``prog: error: ...`` line and exit status 2.

    ``--debug`` anywhere on the command line (or ``PPWDS_DEBUG=1``) lets the traceback through.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        debug = "--debug" in args or bool(env_flag("PPWDS_DEBUG"))
    except ValueError as exc:  # a PPWDS_DEBUG that is not a boolean
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    try:
        return main(args)
    except KeyboardInterrupt:
        if debug:
            raise
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # `ppwebdataset inspect ... | head`: the reader went away; not an error of ours.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except Exception as exc:
        if debug:
            raise
        text = str(exc).strip().splitlines()
        msg = text[0] if text else type(exc).__name__
        if not isinstance(exc, CliError | OSError):
            msg = f"{type(exc).__name__}: {msg}"
        print(f"{prog}: error: {msg} (run with --debug for the traceback)", file=sys.stderr)
        return 2


# ---------------------------------------------------------------------------
# Shard arguments
# ---------------------------------------------------------------------------


def _is_shard_name(name: str) -> bool:
    return name.endswith(SHARD_SUFFIXES)


def expand_shards(patterns: Iterable[str]) -> list[str]:
    """Local shard paths from arguments: brace patterns, globs, directories (their shards)."""
    from .utils import braceexpand

    result: list[str] = []
    for pattern in patterns:
        if pattern.startswith("file:"):
            pattern = pattern[5:]
            if pattern.startswith("//"):
                pattern = pattern[2:]
        elif "://" in pattern or pattern.startswith("pipe:"):
            raise CliError(f"{pattern}: only local files can be checked; download the shard first")
        found: list[str] = []
        for item in braceexpand(pattern):
            if _GLOB_CHARS & set(item):
                matches = sorted(glob.glob(item))
                if not matches:
                    raise CliError(f"{item}: no file matches this pattern")
                found.extend(matches)
            elif os.path.isdir(item):
                inside = sorted(str(p) for p in Path(item).iterdir() if p.is_file() and _is_shard_name(p.name))
                if not inside:
                    raise CliError(f"{item}: directory holds no shards ({', '.join(SHARD_SUFFIXES)})")
                found.extend(inside)
            elif not os.path.exists(item):
                raise CliError(f"{item}: no such file")
            else:
                found.append(item)
        result.extend(found)
    if not result:
        raise CliError("no shards given")
    return result


def parse_size(text: str) -> int:
    """``"512M"`` / ``"2GiB"`` / ``"1000"`` → bytes."""
    s = text.strip().upper().removesuffix("B").removesuffix("I")
    factor = 1
    for suffix, f in (("K", 1 << 10), ("M", 1 << 20), ("G", 1 << 30), ("T", 1 << 40)):
        if s.endswith(suffix):
            s, factor = s[:-1], f
            break
    try:
        return int(float(s) * factor)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (use e.g. 1000, 512M, 2G)") from None


def human(n: float) -> str:
    """Bytes as ``12.3 MB``."""
    for suffix in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1000 or suffix == "TB":
            return f"{n:.0f} {suffix}" if suffix == "B" else f"{n:.1f} {suffix}"
        n /= 1000
    return f"{n:.1f} TB"


def scan_all(
    paths: list[str], jobs: int, progress: bool | None, desc: str, **kw: Any
) -> list[tuple[str, dict[str, Any]]]:
    """Scan shards in ``jobs`` threads (the Rust scan runs without the GIL), in input order."""
    from ._core import lint_shard

    sizes = {p: os.path.getsize(p) for p in paths}
    results: dict[str, Any] = {}
    with Progress(sum(sizes.values()), desc, unit="B", enabled=progress) as bar:
        with ThreadPoolExecutor(max(1, jobs)) as pool:
            futures = {p: pool.submit(lint_shard, p, **kw) for p in paths}
            for p, fut in futures.items():
                results[p] = fut.result()
                bar.update(sizes[p])
    return [(p, results[p]) for p in paths]


def _issue_dict(issue: Sequence[Any]) -> dict[str, Any]:
    level, code, message, member, offset = issue
    return {"level": level, "code": code, "message": message, "member": member, "offset": offset}


def _issue_line(path: str, issue: dict[str, Any]) -> str:
    where = []
    if issue["member"] is not None:
        where.append(f"member {issue['member']!r}")
    if issue["offset"] is not None:
        where.append(f"offset {issue['offset']}")
    loc = f" ({', '.join(where)})" if where else ""
    return f"{path}: {issue['level']} [{issue['code']}] {issue['message']}{loc}"


def _default_jobs() -> int:
    return max(1, min(4, os.cpu_count() or 1))


# ---------------------------------------------------------------------------
# inspect
# ---------------------------------------------------------------------------


def cmd_inspect(args: argparse.Namespace) -> int:
    """``inspect``: what each shard holds (text or ``--json``); exit 0 unless a file cannot be read."""
    paths = expand_shards(args.shards)
    scanned = scan_all(
        paths,
        args.jobs,
        args.progress,
        "inspect",
        members=args.members,
        first_keys=args.first,
        max_issues=20,
    )
    shards = []
    for path, r in scanned:
        exts = {
            ext: {"count": c, "bytes": b, "min": mn, "max": mx, "mean": b / c if c else 0}
            for ext, (c, b, mn, mx) in sorted(r["extensions"].items())
        }
        entry: dict[str, Any] = {
            "path": path,
            "compression": r["compression"],
            "file_size": r["file_size"],
            "tar_bytes": r["tar_bytes"],
            "members": r["members"],
            "samples": r["samples"],
            "skipped_members": r["skipped"],
            "extensions": exts,
            "first_keys": r["first_keys"],
            "errors": [_issue_dict(i) for i in r["issues"] if i[0] == "error"],
        }
        if args.members:
            entry["member_list"] = [{"name": n, "offset": o, "size": s} for n, o, s in r["member_list"]]
        shards.append(entry)
    summary = {
        "shards": len(shards),
        "samples": sum(s["samples"] for s in shards),
        "members": sum(s["members"] for s in shards),
        "bytes": sum(s["file_size"] for s in shards),
    }
    if args.json:
        # The same shape for one shard or many, like lint's report.
        json.dump({"summary": summary, "shards": shards}, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    for s in shards:
        print(f"{s['path']}")
        print(
            f"  {s['compression']} tar, {human(s['file_size'])} on disk, {s['members']} members, "
            f"{s['samples']} samples" + (f", not in a sample: {s['skipped_members']}" if s["skipped_members"] else "")
        )
        if s["extensions"]:
            width = max(9, *(len(e) for e in s["extensions"]))
            print(f"  {'extension'.ljust(width)} {'count':>8} {'total':>10} {'min':>10} {'mean':>10} {'max':>10}")
            for ext, st in s["extensions"].items():
                print(
                    f"  {ext.ljust(width)} {st['count']:>8} {human(st['bytes']):>10} {human(st['min']):>10} "
                    f"{human(st['mean']):>10} {human(st['max']):>10}"
                )
        if s["first_keys"]:
            print(f"  first keys: {', '.join(s['first_keys'])}")
        for e in s["errors"]:
            print("  " + _issue_line("damage", e))
        if args.members:
            for m in s["member_list"]:
                print(f"  {m['offset']:>12} {m['size']:>12} {m['name']}")
    if len(shards) > 1:
        print(f"{summary['shards']} shards, {summary['samples']} samples, {human(summary['bytes'])}")
    return 0


# ---------------------------------------------------------------------------
# lint
# ---------------------------------------------------------------------------


def cmd_lint(args: argparse.Namespace) -> int:
    """``lint``: check shards; exit 1 when one has an error (or, with ``--strict``, a warning)."""
    paths = expand_shards(args.shards)
    t0 = time.perf_counter()
    scanned = scan_all(
        paths,
        args.jobs,
        args.progress,
        "lint",
        max_member_size=args.max_member_size,
        first_keys=0,
        max_issues=args.max_issues,
    )
    seconds = time.perf_counter() - t0
    shards = []
    for path, r in scanned:
        issues = [_issue_dict(i) for i in r["issues"]]
        errors = sum(i["level"] == "error" for i in issues)
        warnings = len(issues) - errors
        failed = errors > 0 or (args.strict and warnings > 0)
        shards.append(
            {
                "path": path,
                "ok": not failed,
                "compression": r["compression"],
                "file_size": r["file_size"],
                "members": r["members"],
                "samples": r["samples"],
                "errors": errors,
                "warnings": warnings,
                "issues": issues,
                "suppressed": r["suppressed"],
            }
        )
    nbytes = sum(s["file_size"] for s in shards)
    summary = {
        "shards": len(shards),
        "failed": sum(not s["ok"] for s in shards),
        "samples": sum(s["samples"] for s in shards),
        "bytes": nbytes,
        "errors": sum(s["errors"] for s in shards),
        "warnings": sum(s["warnings"] for s in shards),
        "seconds": round(seconds, 4),
    }
    status = 1 if summary["failed"] else 0
    if args.json:
        json.dump({"summary": summary, "shards": shards}, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return status
    if not args.quiet:
        width = max(5, *(len(s["path"]) for s in shards))
        print(f"{'shard'.ljust(width)} {'samples':>9} {'errors':>7} {'warnings':>8}  status")
        for s in shards:
            print(
                f"{s['path'].ljust(width)} {s['samples']:>9} {s['errors']:>7} {s['warnings']:>8}  "
                f"{'ok' if s['ok'] else 'FAIL'}"
            )
    for s in shards:
        for issue in s["issues"]:
            print(_issue_line(s["path"], issue))
        for code, n in s["suppressed"].items():
            print(f"{s['path']}: ... {n} more [{code}] findings not shown")
    rate = f", {nbytes / seconds / 1e9:.2f} GB/s" if seconds > 0 else ""
    print(
        f"{summary['shards']} shards ({summary['failed']} failed), {summary['samples']} samples, "
        f"{human(nbytes)} in {seconds:.2f} s{rate}: {summary['errors']} errors, {summary['warnings']} warnings"
    )
    return status


# ---------------------------------------------------------------------------
# index, bench
# ---------------------------------------------------------------------------


def cmd_index(args: argparse.Namespace) -> int:
    """``index``: ``widsindex create`` under the ``ppwebdataset`` command."""
    from ppwids.wids_index import main_create

    return main_create(args)


def _bench_script() -> Path:
    return Path(__file__).resolve().parents[2] / "benches" / "run.py"


def cmd_bench(args: argparse.Namespace) -> int:
    """``bench``: run ``benches/run.py`` of a source checkout with the remaining arguments."""
    if args.bench_args[:1] == ["--version"]:
        print(f"ppwebdataset bench (ppwebdataset) {_version()}")
        return 0
    script = _bench_script()
    if not script.is_file():
        raise CliError(
            "the benchmarks ship with the source repository, not the wheel: "
            "clone it and run `python benches/run.py` (or `ppwebdataset bench` from the checkout)"
        )
    return subprocess.call([sys.executable, str(script), *args.bench_args])


# ---------------------------------------------------------------------------
# Parser
# ---------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``ppwebdataset``."""
    parser = argparse.ArgumentParser(
        prog="ppwebdataset",
        description="Inspect, check and index WebDataset tar shards.",
        epilog="Run `ppwebdataset COMMAND --help` for the options of a command.",
    )
    add_common(parser, "ppwebdataset")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def progress_flags(p: argparse.ArgumentParser) -> None:
        g = p.add_mutually_exclusive_group()
        g.add_argument("--progress", dest="progress", action="store_true", default=None, help="always show progress")
        g.add_argument("--no-progress", dest="progress", action="store_false", help="never show progress")
        p.add_argument(
            "-j", "--jobs", type=int, default=_default_jobs(), help="shards scanned in parallel (default %(default)s)"
        )

    p = sub.add_parser("inspect", help="show members, samples, extensions and sizes of shards")
    add_common(p, "ppwebdataset inspect")
    p.add_argument("shards", nargs="+", metavar="SHARD", help="shard files, brace patterns, globs or directories")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--members", action="store_true", help="also list every member (offset, size, name)")
    p.add_argument("-n", "--first", type=int, default=5, help="how many first sample keys to show (default 5)")
    progress_flags(p)
    p.set_defaults(func=cmd_inspect)

    p = sub.add_parser("lint", help="check shards for damage and layout problems (exit 1 on errors)")
    add_common(p, "ppwebdataset lint")
    p.add_argument("shards", nargs="+", metavar="SHARD_OR_PATTERN", help="shard files, brace patterns, globs, dirs")
    p.add_argument("--json", action="store_true", help="print a JSON report")
    p.add_argument(
        "--max-member-size",
        type=parse_size,
        default=parse_size("1G"),
        metavar="SIZE",
        help="warn about members larger than this (default 1G)",
    )
    p.add_argument("--strict", action="store_true", help="warnings fail the shard too")
    p.add_argument("-q", "--quiet", action="store_true", help="no per-shard table, only findings and the summary")
    p.add_argument("--max-issues", type=int, default=20, help="findings shown per kind and shard (default 20)")
    progress_flags(p)
    p.set_defaults(func=cmd_lint)

    from ppwids.wids_index import add_create_arguments

    p = sub.add_parser("index", help="write a wids descriptor (shardindex.json), like `widsindex create`")
    add_common(p, "ppwebdataset index")
    add_create_arguments(p)
    p.set_defaults(func=cmd_index)

    p = sub.add_parser("bench", help="run the bundled benchmarks (source checkout only)", add_help=False)
    p.add_argument("bench_args", nargs=argparse.REMAINDER, help="arguments for benches/run.py")
    p.set_defaults(func=cmd_bench)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``ppwebdataset`` command; returns the exit status."""

    def inner(args: Sequence[str] | None) -> int:
        args = list(args or [])
        if args[:1] == ["bench"]:
            # Everything after `bench` belongs to benches/run.py, options included.
            return cmd_bench(argparse.Namespace(bench_args=args[1:]))
        ns = build_parser().parse_args(args)
        result: int = ns.func(ns)
        return result

    return run_main(inner, argv, "ppwebdataset")


if __name__ == "__main__":
    sys.exit(main())
