"""`ppwebdataset lint` / `inspect`: every damage case is found, clean shards pass, output forms agree."""

from __future__ import annotations

import bz2
import gzip
import io
import json
import os
import subprocess
import sys
import tarfile

import pytest

from ppwebdataset import _core
from ppwebdataset.cli import main


def make_tar(members, fmt=tarfile.USTAR_FORMAT) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tf:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 1_700_000_000
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def good_members(n=6):
    return [m for i in range(n) for m in ((f"s{i:03d}.jpg", os.urandom(700 + i)), (f"s{i:03d}.cls", b"%d" % i))]


def offsets(raw: bytes):
    """Header offsets of regular members, from tarfile (the oracle)."""
    with tarfile.open(fileobj=io.BytesIO(raw)) as tf:
        return [(m.name, m.offset, m.size) for m in tf.getmembers()]


def lint_json(capsys, *args):
    status = main(["lint", "--json", "--no-progress", *map(str, args)])
    out = json.loads(capsys.readouterr().out)
    return status, out


def findings(out, level=None):
    return [(i["code"], i) for s in out["shards"] for i in s["issues"] if level is None or i["level"] == level]


def write(tmp_path, name, data):
    p = tmp_path / name
    p.write_bytes(data)
    return p


def test_clean_shards_pass_with_exit_0(tmp_path, capsys):
    paths = [write(tmp_path, f"good-{i}.tar", make_tar(good_members())) for i in range(3)]
    status, out = lint_json(capsys, *paths)
    assert status == 0
    assert out["summary"]["shards"] == 3 and out["summary"]["failed"] == 0
    assert out["summary"]["samples"] == 18
    assert findings(out) == []


def _flip_checksum(raw: bytes, member_index: int) -> bytes:
    off = offsets(raw)[member_index][1]
    b = bytearray(raw)
    b[off + 148 : off + 156] = b"0000000\0"
    return bytes(b)


def _zero_block_middle(raw: bytes) -> bytes:
    off = offsets(raw)[4][1]
    b = bytearray(raw)
    b[off : off + 1024] = bytes(1024)
    return bytes(b)


def _gzip_crc(raw: bytes) -> bytes:
    g = bytearray(gzip.compress(raw))
    g[-8] ^= 0xFF  # CRC32 in the trailer
    return bytes(g)


def _gzip_length(raw: bytes) -> bytes:
    g = bytearray(gzip.compress(raw))
    g[-1] ^= 0x01  # ISIZE in the trailer
    return bytes(g)


def _gzip_cut(raw: bytes) -> bytes:
    g = gzip.compress(raw)
    return g[: len(g) - 20]


def _huge_size(raw: bytes) -> bytes:
    off = offsets(raw)[2][1]
    b = bytearray(raw)
    b[off + 124 : off + 136] = b"\x80" + b"\xff" * 11  # base-256, near 2**88
    # Recompute the checksum so only the size is wrong.
    b[off + 148 : off + 156] = b" " * 8
    chk = sum(b[off : off + 512])
    b[off + 148 : off + 156] = b"%06o\0 " % chk
    return bytes(b)


DAMAGE = {
    # name: (make damaged bytes from a good tar, the finding codes that may report it)
    "bad-checksum": (lambda raw: _flip_checksum(raw, 3), {"bad-header"}),
    "truncated-data": (lambda raw: raw[: offsets(raw)[5][1] + 600], {"truncated"}),
    "truncated-header": (lambda raw: raw[: offsets(raw)[5][1] + 100], {"truncated"}),
    "no-end-marker": (lambda raw: raw[: offsets(raw)[-1][1] + 1024], {"truncated"}),
    "zero-block": (_zero_block_middle, {"zero-block"}),
    "gzip-crc": (_gzip_crc, {"corrupt-compression"}),
    "gzip-length": (_gzip_length, {"corrupt-compression"}),
    "gzip-cut": (_gzip_cut, {"corrupt-compression", "truncated"}),
    "gzip-flipped-byte": (
        lambda raw: (lambda g: g[:200] + bytes([g[200] ^ 0x55]) + g[201:])(gzip.compress(raw)),
        {"corrupt-compression", "bad-header", "truncated", "invalid"},
    ),
    "bzip2-cut": (lambda raw: bz2.compress(raw)[:-30], {"corrupt-compression", "truncated"}),
    "huge-size": (_huge_size, {"truncated", "bad-header"}),
    "empty-file": (lambda raw: b"", {"truncated", "empty"}),
    "one-byte": (lambda raw: b"x", {"truncated"}),
    "only-end-marker": (lambda raw: bytes(1024), {"empty"}),
}


@pytest.mark.parametrize("case", sorted(DAMAGE))
def test_every_damage_case_is_an_error(tmp_path, capsys, case):
    make, codes = DAMAGE[case]
    raw = make_tar(good_members())
    bad = write(tmp_path, f"{case}.tar", make(raw))
    good = write(tmp_path, "good.tar", raw)
    status, out = lint_json(capsys, good, bad)
    assert status == 1
    by_path = {s["path"]: s for s in out["shards"]}
    assert by_path[str(good)]["ok"] and by_path[str(good)]["issues"] == []
    errors = [i for i in by_path[str(bad)]["issues"] if i["level"] == "error"]
    assert errors, by_path[str(bad)]
    assert {i["code"] for i in errors} & codes, errors


def test_truncation_at_every_block_boundary(tmp_path):
    raw = make_tar(good_members(3))
    name, off, size = offsets(raw)[-1]
    data_end = off + 512 + size + (-size % 512)
    # Every cut before the end-of-archive marker (one zero block is enough, as for tarfile).
    for cut in range(0, data_end + 1, 512):
        p = write(tmp_path, "cut.tar", raw[:cut])
        r = _core.lint_shard(str(p))
        assert [i for i in r["issues"] if i[0] == "error"], cut


def test_zero_block_names_the_hidden_member(tmp_path, capsys):
    raw = make_tar(good_members())
    hidden = offsets(raw)[5]  # the first header after the zeroed header + data block of member 4
    p = write(tmp_path, "z.tar", _zero_block_middle(raw))
    _, out = lint_json(capsys, p)
    zero = [i for _, i in findings(out, "error") if i["code"] == "zero-block"]
    assert zero and zero[0]["member"] == hidden[0] and zero[0]["offset"] == hidden[1]


def test_bad_checksum_names_member_and_offset(tmp_path, capsys):
    raw = make_tar(good_members())
    name, off, _ = offsets(raw)[3]
    p = write(tmp_path, "c.tar", _flip_checksum(raw, 3))
    _, out = lint_json(capsys, p)
    (code, issue), *_ = findings(out, "error")
    assert (code, issue["member"], issue["offset"]) == ("bad-header", name, off)


def test_pax_overflow_is_a_finding_not_a_crash(tmp_path, capsys):
    # Issue 9 item 1: a pax length near 2**64 once panicked in the core; lint must report, never die.
    pax = b"13 path=a\nbc\n18446744073709551613 x=y\n"
    raw = make_tar([("x.txt", b"hello")])
    hdr = tarfile.TarInfo("././@PaxHeader")
    hdr.type = tarfile.XHDTYPE
    hdr.size = len(pax)
    block = hdr.tobuf(tarfile.USTAR_FORMAT)
    data = block + pax + bytes(-len(pax) % 512) + raw
    p = write(tmp_path, "pax.tar", data)
    status, out = lint_json(capsys, p)
    assert status == 1 and findings(out, "error")


def test_layout_warnings(tmp_path, capsys):
    members = good_members(6)
    members[2:4] = [("s001.Img.JPG", b"x")]  # odd and dotted extension; s001 loses .jpg and .cls
    members += [("s000.txt", b"again")]  # key s000 again after other samples
    members += [("README", b"no key")]
    members += [("s900.jpg", b"y" * 5000)]
    p = write(tmp_path, "w.tar", make_tar(members))
    status, out = lint_json(capsys, p, "--max-member-size", "4000")
    assert status == 0  # warnings only
    codes = {c for c, _ in findings(out, "warning")}
    assert {"odd-extension", "dotted-key", "missing-field", "split-sample", "no-key", "large-member"} <= codes
    missing = [i for c, i in findings(out) if c == "missing-field"]
    assert any('"cls"' in i["message"] and '"s001"' in i["message"] for i in missing)
    status, _ = lint_json(capsys, p, "--strict")
    assert status == 1


def test_duplicate_member_is_an_error(tmp_path, capsys):
    members = good_members(3) + [("s002.cls", b"dup")]
    p = write(tmp_path, "d.tar", make_tar(members))
    status, out = lint_json(capsys, p)
    assert status == 1
    (code, issue), *_ = findings(out, "error")
    assert code == "duplicate-member" and issue["member"] == "s002.cls"


def test_parallel_and_serial_agree_and_patterns_expand(tmp_path, capsys):
    for i in range(5):
        raw = make_tar(good_members(4 + i))
        write(tmp_path, f"shard-{i:03d}.tar", raw if i != 3 else _flip_checksum(raw, 1))
    _, serial = lint_json(capsys, "-j", "1", tmp_path / "shard-{000..004}.tar")
    _, parallel = lint_json(capsys, "-j", "3", tmp_path)
    _, globbed = lint_json(capsys, "-j", "2", tmp_path / "shard-*.tar")
    strip = [{k: v for k, v in s.items()} for s in serial["shards"]]
    assert strip == parallel["shards"] == globbed["shards"]
    assert [s["ok"] for s in strip] == [True, True, True, False, True]


def test_text_output_has_table_and_summary(tmp_path, capsys):
    good = write(tmp_path, "a.tar", make_tar(good_members()))
    bad = write(tmp_path, "b.tar", _flip_checksum(make_tar(good_members()), 2))
    status = main(["lint", "--no-progress", str(good), str(bad)])
    out = capsys.readouterr().out
    assert status == 1
    lines = out.splitlines()
    assert lines[0].split() == ["shard", "samples", "errors", "warnings", "status"]
    assert lines[1].split()[-1] == "ok" and lines[2].split()[-1] == "FAIL"
    assert any("[bad-header]" in line and str(bad) in line for line in lines)
    assert lines[-1].startswith("2 shards (1 failed), 7 samples")


def test_inspect_matches_tarfile(tmp_path, capsys):
    raw = make_tar(good_members(5))
    p = write(tmp_path, "i.tar", raw)
    assert main(["inspect", "--json", "--members", "--no-progress", str(p)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["summary"] == {"shards": 1, "samples": 5, "members": 10, "bytes": len(raw)}
    (info,) = report["shards"]
    oracle = offsets(raw)
    assert [(m["name"], m["offset"], m["size"]) for m in info["member_list"]] == oracle
    assert info["samples"] == 5 and info["members"] == 10 and info["compression"] == "none"
    assert info["first_keys"] == [f"s{i:03d}" for i in range(5)]
    jpg = info["extensions"]["jpg"]
    sizes = [s for n, _, s in oracle if n.endswith(".jpg")]
    assert (jpg["count"], jpg["bytes"], jpg["min"], jpg["max"]) == (5, sum(sizes), min(sizes), max(sizes))
    gz = write(tmp_path, "i.tar.gz", gzip.compress(raw))
    assert main(["inspect", "--no-progress", str(gz)]) == 0
    text = capsys.readouterr().out
    assert "gzip tar" in text and "first keys: s000, s001" in text


def test_errors_are_one_line_and_debug_shows_traceback(tmp_path):
    env = dict(os.environ)
    cmd = [sys.executable, "-m", "ppwebdataset", "lint", str(tmp_path / "missing.tar")]
    r = subprocess.run(cmd, capture_output=True, text=True, env=env)
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and "missing.tar: no such file" in r.stderr
    r = subprocess.run([*cmd, "--debug"], capture_output=True, text=True, env=env)
    assert r.returncode != 0 and "Traceback" in r.stderr


def test_remote_urls_are_refused_clearly(capsys):
    assert main(["lint", "http://example.com/a.tar"]) == 2
    assert "only local files" in capsys.readouterr().err


def test_many_extensions_are_counted_and_checked(tmp_path, capsys):
    # Past 16 extensions the lookup switches to a map, past 64 they are not tracked per sample:
    # counts and the duplicate check must stay right on both sides.
    members = [(f"k{i:03d}.e{j:02d}", b"x" * j) for i in range(4) for j in range(80)]
    members.append(("k003.e70", b"again"))
    raw = make_tar(members)
    p = write(tmp_path, "many.tar", raw)
    status, out = lint_json(capsys, p)
    assert status == 1
    dups = [i for c, i in findings(out, "error") if c == "duplicate-member"]
    assert [d["member"] for d in dups] == ["k003.e70"]
    assert main(["inspect", "--json", "--no-progress", str(p)]) == 0
    (info,) = json.loads(capsys.readouterr().out)["shards"]
    assert info["samples"] == 4 and len(info["extensions"]) == 80
    assert info["extensions"]["e70"]["count"] == 5 and info["extensions"]["e05"]["bytes"] == 20


def test_xz_shard_is_reported_as_not_checked(tmp_path, capsys):
    import lzma

    p = write(tmp_path, "a.tar.xz", lzma.compress(make_tar(good_members())))
    status, out = lint_json(capsys, p)
    assert status == 1
    (code, issue), *_ = findings(out, "error")
    assert code == "unsupported" and "xz" in issue["message"]
