"""The widsindex command: create, update, info, sample; descriptors the reference reads too."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap

from ppwids import ShardListDataset
from ppwids.wids_index import main


def make_shards(tmp_path, make_tar, members, counts=(3, 2, 4)):
    for k, n in enumerate(counts):
        make_tar(tmp_path / f"s{k}.tar", members(n, f"s{k}_"))


def test_create_writes_a_complete_descriptor(tmp_path, make_tar, members, monkeypatch):
    make_shards(tmp_path, make_tar, members)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "about.txt").write_text("three shards")
    assert main(["create", "s{0..2}.tar", "-o", "d.json", "-n", "mine", "-i", "about.txt"]) == 0
    desc = json.loads((tmp_path / "d.json").read_text())
    assert desc["__kind__"] == "wids-shard-index-v1" and desc["wids_version"] == 1
    assert (desc["name"], desc["info"]) == ("mine", "three shards")
    assert [s["url"] for s in desc["shardlist"]] == ["s0.tar", "s1.tar", "s2.tar"]
    for k, shard in enumerate(desc["shardlist"]):
        data = (tmp_path / f"s{k}.tar").read_bytes()
        assert shard["nsamples"] == (3, 2, 4)[k]
        assert shard["md5sum"] == hashlib.md5(data).hexdigest() and shard["filesize"] == len(data)
    ds = ShardListDataset(str(tmp_path / "d.json"), transformations=[])
    assert len(ds) == 9 and ds[-1]["__key__"] == "s2_0003"

    assert main(["create", "s0.tar"]) == 0  # default output name and a name from the file
    default = json.loads((tmp_path / "shardindex.json").read_text())
    assert default["name"] == "s0" and default["shardlist"][0]["nsamples"] == 3


def test_update_and_info(tmp_path, make_tar, members, monkeypatch, capsys):
    make_shards(tmp_path, make_tar, members)
    data = tmp_path / "data"
    data.mkdir()
    for k in range(3):
        os.replace(tmp_path / f"s{k}.tar", data / f"s{k}.tar")
    monkeypatch.chdir(tmp_path)
    main(["create", "data/s{0..2}.tar", "-o", "d.json"])
    assert main(["update", "d.json", "--rebase", "-n", "renamed", "-k", "-i", "about"]) == 0
    desc = json.loads((tmp_path / "d.json").read_text())
    assert desc["base"] == f"file://{data}" and desc["keep"] is True
    assert (desc["name"], desc["info"]) == ("renamed", "about")
    assert [s["url"] for s in desc["shardlist"]] == ["s0.tar", "s1.tar", "s2.tar"]
    assert (tmp_path / "d.json.bak").exists()
    # The base in the descriptor is honoured, wherever the descriptor is read from.
    moved = tmp_path / "elsewhere"
    moved.mkdir()
    os.replace(tmp_path / "d.json", moved / "d.json")
    assert ShardListDataset(str(moved / "d.json"), transformations=[])[3]["__key__"] == "s1_0000"

    main(["update", str(moved / "d.json"), "-K", "-d", "x/y"])
    desc = json.loads((moved / "d.json").read_text())
    assert desc["keep"] is False and desc["shardlist"][0]["url"] == "x/y/s0.tar"

    capsys.readouterr()
    assert main(["info", str(moved / "d.json")]) == 0
    out = capsys.readouterr().out
    assert "renamed" in out and "total samples: 9.0" in out
    assert main(["info", "-t", str(moved / "d.json")]) == 0
    row = capsys.readouterr().out.splitlines()[1].split("\t")
    assert row[1] == "renamed" and row[3] == "9"


def test_sample_command(tmp_path, make_tar, members, monkeypatch, capsysbinary):
    make_shards(tmp_path, make_tar, members)
    monkeypatch.chdir(tmp_path)
    main(["create", "s{0..2}.tar", "-o", "d.json"])
    capsysbinary.readouterr()
    assert main(["sample", "d.json", "4"]) == 0
    lines = capsysbinary.readouterr().out.decode().splitlines()
    assert any(line.startswith(".cls") and line.rstrip().endswith("1") for line in lines)
    assert any(line.startswith("__key__") and "'s1_0001'" in line for line in lines)
    capsysbinary.readouterr()
    assert main(["sample", "d.json", "4", "--cat", ".txt"]) == 0
    assert capsysbinary.readouterr().out == b"text s1_ 1"


def test_create_from_http_keeps_urls_and_no_temp_files(tmp_path, make_tar, members, http_root, http_server):
    make_tar(http_root / "r.tar", members(5))
    out = tmp_path / "remote.json"
    assert main(["create", f"{http_server.url}/r.tar", "-o", str(out), "-n", ""]) == 0
    desc = json.loads(out.read_text())
    assert "name" not in desc
    assert desc["shardlist"] == [
        {
            "url": f"{http_server.url}/r.tar",
            "md5sum": hashlib.md5((http_root / "r.tar").read_bytes()).hexdigest(),
            "nsamples": 5,
            "filesize": (http_root / "r.tar").stat().st_size,
        }
    ]
    ds = ShardListDataset(str(out), cache_dir=str(tmp_path / "cache"), transformations=[])
    assert ds[4]["__key__"] == "s0004"


def test_reference_reads_our_descriptor(tmp_path, make_tar, members, monkeypatch, reference):
    make_shards(tmp_path, make_tar, members)
    monkeypatch.chdir(tmp_path)
    main(["create", "s{0..2}.tar", "-o", "d.json", "-n", "shared"])
    code = textwrap.dedent(
        f"""
        import json, ppwids
        from ppwids.wids_specs import load_dsdesc_and_resolve
        spec = load_dsdesc_and_resolve({str(tmp_path / "d.json")!r}, base={str(tmp_path)!r})
        ds = ppwids.ShardListDataset({str(tmp_path / "d.json")!r}, transformations=[],
                                     cache_dir={str(tmp_path / "refcache")!r})
        keys = [ds[i]["__key__"] for i in range(len(ds))]
        counts = [s["nsamples"] for s in spec["shardlist"]]
        print(json.dumps({{"name": spec["name"], "n": counts, "keys": keys}}))
        """
    )
    ref = json.loads(reference(code, cwd=tmp_path).strip().splitlines()[-1])
    ours = ShardListDataset(str(tmp_path / "d.json"), transformations=[])
    assert ref["name"] == ours.dataset_name == "shared"
    assert ref["n"] == ours.lengths
    assert ref["keys"] == [ours[i]["__key__"] for i in range(len(ours))]


def test_module_entry_point(tmp_path, make_tar, members):
    make_shards(tmp_path, make_tar, members, counts=(2,))
    out = tmp_path / "e.json"
    argv = [sys.executable, "-m", "ppwids.wids_index", "create", str(tmp_path / "s0.tar"), "-o", str(out)]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    proc = subprocess.run([sys.executable, "-m", "ppwids.wids_index", "info", str(out)], capture_output=True, text=True)
    assert proc.returncode == 0 and "total samples: 2.0" in proc.stdout
