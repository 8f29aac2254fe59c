"""--version everywhere, progress bars, `index`/`bench` subcommands, `widsindex sample` without Pillow."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile

import pytest

import ppwebdataset
from ppwebdataset import cli
from ppwebdataset._progress import Progress
from ppwids import wids_index


def make_tar(path, members):
    with tarfile.open(path, "w", format=tarfile.USTAR_FORMAT) as tf:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))


@pytest.mark.parametrize(
    "argv",
    [[], ["inspect"], ["lint"], ["index"], ["bench"]],
)
def test_version_on_every_ppwebdataset_command(argv, capsys):
    with pytest.raises(SystemExit) as e:
        if argv == ["bench"]:
            raise SystemExit(cli.main([*argv, "--version"]))
        cli.main([*argv, "--version"])
    assert e.value.code == 0
    assert capsys.readouterr().out.strip().endswith(ppwebdataset.__version__)


@pytest.mark.parametrize("argv", [[], ["create"], ["update"], ["info"], ["sample"]])
def test_version_on_every_widsindex_command(argv, capsys):
    with pytest.raises(SystemExit) as e:
        wids_index.main([*argv, "--version"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("widsindex") and out.strip().endswith(ppwebdataset.__version__)


def test_console_scripts_and_module_run():
    r = subprocess.run([sys.executable, "-m", "ppwebdataset", "--version"], capture_output=True, text=True)
    assert r.returncode == 0 and ppwebdataset.__version__ in r.stdout


def test_widsindex_error_is_one_line(tmp_path, capsys):
    assert wids_index.main(["info", str(tmp_path / "nope.json")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("widsindex: error:") and err.count("\n") == 1 and "nope.json" in err


def test_index_subcommand_matches_widsindex_create(tmp_path, monkeypatch):
    for k in range(2):
        make_tar(tmp_path / f"s{k}.tar", [(f"k{k}{i}.txt", b"x" * i) for i in range(3 + k)])
    monkeypatch.chdir(tmp_path)
    assert cli.main(["index", "s{0..1}.tar", "-o", "a.json", "-n", "d"]) == 0
    assert wids_index.main(["create", "s{0..1}.tar", "-o", "b.json", "-n", "d"]) == 0
    a, b = (json.loads((tmp_path / f).read_text()) for f in ("a.json", "b.json"))
    assert a == b and [s["nsamples"] for s in a["shardlist"]] == [3, 4]


def test_bench_without_checkout_says_where_benchmarks_are(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(cli, "_bench_script", lambda: tmp_path / "benches" / "run.py")
    assert cli.main(["bench", "--only", "x"]) == 2
    err = capsys.readouterr().err
    assert "source repository" in err and "benches/run.py" in err


def test_bench_in_checkout_forwards_arguments(monkeypatch, tmp_path):
    script = tmp_path / "run.py"
    out = tmp_path / "args.json"
    script.write_text(f"import json, sys; json.dump(sys.argv[1:], open({str(out)!r}, 'w'))\n")
    monkeypatch.setattr(cli, "_bench_script", lambda: script)
    assert cli.main(["bench", "--only", "stream_large", "--runs", "1"]) == 0
    assert json.loads(out.read_text()) == ["--only", "stream_large", "--runs", "1"]


class FakeTTY(io.StringIO):
    def isatty(self):
        return True


def test_progress_plain_fallback_on_a_terminal(monkeypatch):
    monkeypatch.delenv("PPWDS_PROGRESS", raising=False)
    stream = FakeTTY()
    with Progress(3, "lint", stream=stream, use_tqdm=False) as bar:
        for _ in range(3):
            bar.update()
    text = stream.getvalue()
    assert "\rlint: 3/3" in text and text.endswith("\r\033[K")


def test_progress_uses_tqdm_when_installed(monkeypatch):
    pytest.importorskip("tqdm")
    monkeypatch.delenv("PPWDS_PROGRESS", raising=False)
    stream = FakeTTY()
    with Progress(2000, "lint", unit="B", stream=stream) as bar:
        assert bar._bar is not None
        bar.update(2000)
    assert "lint" in stream.getvalue()


def test_progress_off_when_not_a_terminal(monkeypatch):
    monkeypatch.delenv("PPWDS_PROGRESS", raising=False)
    stream = io.StringIO()
    with Progress(3, "lint", stream=stream) as bar:
        bar.update(3)
    assert not bar.enabled and stream.getvalue() == ""
    monkeypatch.setenv("PPWDS_PROGRESS", "1")
    with Progress(3, "lint", stream=stream, use_tqdm=False) as bar:
        bar.update(3)
    assert "lint: 3/3" in stream.getvalue()


def test_lint_shows_progress_when_forced(tmp_path, capsys):
    make_tar(tmp_path / "a.tar", [("a.txt", b"1")])
    assert cli.main(["lint", "--progress", str(tmp_path / "a.tar")]) == 0
    assert "lint" in capsys.readouterr().err


def test_widsindex_sample_needs_no_pillow_without_images(tmp_path):
    shard = tmp_path / "t.tar"
    make_tar(shard, [("k0.txt", b"hello"), ("k0.cls", b"3"), ("k1.txt", b"bye"), ("k1.cls", b"4")])
    desc = tmp_path / "d.json"
    desc.write_text(json.dumps({"wids_version": 1, "shardlist": [{"url": str(shard), "nsamples": 2}]}))
    code = (
        "import sys; sys.modules['PIL'] = None; sys.modules['PIL.Image'] = None\n"
        "from ppwids.wids_index import main\n"
        f"sys.exit(main(['sample', {str(desc)!r}, '1']))\n"
    )
    env = dict(os.environ, WIDS_CACHE=str(tmp_path / "cache"))
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr
    assert "'bye'" in r.stdout and ".cls" in r.stdout
