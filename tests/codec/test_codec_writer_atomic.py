"""Writers to local paths publish a shard under its final name only when it is complete."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import tarfile
import textwrap
from pathlib import Path

import pytest

import ppwebdataset as wds
from ppwebdataset import writer as writer_mod

ROOT = Path(__file__).resolve().parents[2]


def _names(path):
    with tarfile.open(path) as tf:  # reads to the end marker: a cut file raises
        return tf.getnames()


def test_tarwriter_writes_a_temp_then_renames(tmp_path):
    final = tmp_path / "out.tar"
    sink = wds.TarWriter(str(final))
    sink.write({"__key__": "a", "txt": "x"})
    sink.stream.flush()
    assert not final.exists()
    (tmp,) = tmp_path.iterdir()
    assert tmp.name.startswith(f"out.tar.tmp-{os.getpid()}-")
    sink.close()
    assert [p.name for p in tmp_path.iterdir()] == ["out.tar"]
    assert _names(final) == ["a.txt"]


def test_replaces_an_existing_shard_and_keeps_the_umask_mode(tmp_path):
    final = tmp_path / "out.tar"
    final.write_bytes(b"old")
    with wds.TarWriter(final) as sink:  # a PathLike
        sink.write({"__key__": "a", "txt": "x"})
    assert _names(final) == ["a.txt"]
    umask = os.umask(0)
    os.umask(umask)
    assert final.stat().st_mode & 0o777 == 0o666 & ~umask


def test_symlinked_target_is_written_through(tmp_path):
    real = tmp_path / "real.tar"
    link = tmp_path / "link.tar"
    link.symlink_to(real)
    with wds.TarWriter(str(link)) as sink:
        sink.write({"__key__": "a", "txt": "x"})
    assert link.is_symlink() and _names(real) == ["a.txt"]


def test_failed_finish_leaves_no_file(tmp_path, monkeypatch):
    final = tmp_path / "out.tar.gz"
    sink = wds.TarWriter(str(final))
    sink.write({"__key__": "a", "txt": "x"})

    def broken_close():
        raise OSError("disk full")

    monkeypatch.setattr(sink._zstream, "close", broken_close)
    with pytest.raises(OSError, match="disk full"):
        sink.close()
    assert list(tmp_path.iterdir()) == []


def test_fsync_syncs_file_and_directory(tmp_path, monkeypatch):
    synced = []
    real_fsync = os.fsync
    monkeypatch.setattr(writer_mod.os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd)))
    with wds.ShardWriter(str(tmp_path / "s-%02d.tar"), maxcount=1, fsync=True, verbose=0) as sink:
        for i in range(2):
            sink.write({"__key__": f"k{i}", "txt": "x"})
    assert len(synced) == 4  # file + directory, per shard
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s-00.tar", "s-01.tar"]


def test_streams_and_openers_are_written_in_place(tmp_path):
    buf = io.BytesIO()
    with wds.TarWriter(buf) as sink:
        sink.write({"__key__": "a", "txt": "x"})
    assert tarfile.open(fileobj=io.BytesIO(buf.getvalue())).getnames() == ["a.txt"]
    seen = []

    def opener(fname):
        seen.append(fname)
        return open(fname, "wb")

    with wds.ShardWriter(str(tmp_path / "o-%02d.tar"), maxcount=1, opener=opener, verbose=0) as sink:
        sink.write({"__key__": "a", "txt": "x"})
    assert seen == [str(tmp_path / "o-00.tar")] and _names(seen[0]) == ["a.txt"]


def test_devices_are_written_directly(tmp_path):
    with wds.TarWriter(os.devnull) as sink:
        sink.write({"__key__": "a", "txt": "x"})
    assert Path(os.devnull).is_char_device()


KILLED_WRITER = textwrap.dedent(
    """
    import sys, time
    import ppwebdataset as wds
    sink = wds.ShardWriter(sys.argv[1], maxcount=3, verbose=0)
    for i in range(5):  # shard 0 complete, shard 1 half written
        sink.write({"__key__": f"k{i:03d}", "bin": b"x" * 100_000})
    sink.tarstream.stream.flush()
    print("ready", flush=True)
    time.sleep(60)
    """
)


def test_sigkill_mid_shard_leaves_no_cut_file_under_a_final_name(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT / "python"))
    pattern = str(tmp_path / "out-%06d.tar")
    proc = subprocess.Popen([sys.executable, "-c", KILLED_WRITER, pattern], env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    shards = sorted(p.name for p in tmp_path.glob("out-*.tar"))
    assert shards == ["out-000000.tar"]
    assert _names(tmp_path / shards[0]) == [f"k{i:03d}.bin" for i in range(3)]
    leftovers = [p for p in tmp_path.iterdir() if p.name.startswith("out-000001.tar.tmp-")]
    assert len(leftovers) == 1  # the cut shard exists only under its temporary name
    # A rerun writes the shard completely.
    with wds.ShardWriter(pattern, maxcount=3, verbose=0, start_shard=1) as sink:
        for i in range(3, 5):
            sink.write({"__key__": f"k{i:03d}", "bin": b"x"})
    assert _names(tmp_path / "out-000001.tar") == ["k003.bin", "k004.bin"]
