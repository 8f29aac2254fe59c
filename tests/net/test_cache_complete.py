"""Caches accept only complete downloads, re-fetch a cached copy that fails, and clean up
after downloads that were killed (streaming FileCache and ppwids share the code)."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import tarfile
import textwrap
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

import ppwebdataset as wds
import ppwids
from ppwebdataset import _download
from ppwebdataset import cache as C
from ppwebdataset.errors import TruncatedShardError
from ppwids.wids_dl import DownloadError

ROOT = Path(__file__).resolve().parents[2]
N = 6


def _tar(n=N, size=3000):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tf:
        for i in range(n):
            data = bytes([65 + i]) * size
            info = tarfile.TarInfo(f"k{i:02d}.bin")
            info.size = len(data)
            info.mtime = 1_700_000_000
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


class CuttingServer:
    """Serves ``data`` on any path. ``cut`` bytes: send only that many, with no
    Content-Length, and close (curl and urllib see a normal end). ``stall``: send half
    and then hang until the server closes."""

    def __init__(self, data):
        self.data = data
        self.cut = None
        self.stall = False
        self.hits = 0
        self.release = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                outer.hits += 1
                self.send_response(200)
                self.send_header("Content-Type", "application/x-tar")
                if outer.cut is None and not outer.stall:
                    self.send_header("Content-Length", str(len(outer.data)))
                self.end_headers()
                if outer.stall:
                    self.wfile.write(outer.data[: len(outer.data) // 2])
                    self.wfile.flush()
                    outer.release.wait(60)
                    return
                self.wfile.write(outer.data if outer.cut is None else outer.data[: outer.cut])

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, name="s.tar"):
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/{name}"

    def close(self):
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = CuttingServer(_tar())
    yield s
    s.close()


def _files(folder):
    return sorted(p.name for p in Path(folder).rglob("*") if p.is_file())


def _keys(samples):
    return [s["__key__"] for s in samples]


def test_cut_download_is_not_cached_and_a_rerun_recovers(tmp_path, server):
    cache = tmp_path / "cache"
    cache.mkdir()
    server.cut = 5 * 1024 + 700  # inside the fourth member, no Content-Length
    with pytest.raises(TruncatedShardError, match="not a complete shard"):
        list(wds.WebDataset(server.url(), cache_dir=str(cache), shardshuffle=False))
    assert not [f for f in _files(cache) if not f.startswith(".ppwds-lock-")]
    server.cut = None
    got = list(wds.WebDataset(server.url(), cache_dir=str(cache), shardshuffle=False))
    assert _keys(got) == [f"k{i:02d}" for i in range(N)]
    cached = [p for p in cache.rglob("*.tar")]
    assert len(cached) == 1 and cached[0].read_bytes() == server.data


def test_cut_at_a_block_boundary_without_end_marker_is_refused(tmp_path, server):
    fc = C.FileCache(str(tmp_path / "cache"))
    server.cut = N * (512 + 3072)  # every member, but no end-of-archive blocks
    with pytest.raises(TruncatedShardError, match="end-of-archive"):
        fc.get_file(server.url())
    assert not os.path.exists(fc.cache_path(server.url()))


def test_cached_copy_that_fails_to_read_is_fetched_again_once(tmp_path, server):
    cache = tmp_path / "cache"
    cache.mkdir()
    fc = C.FileCache(str(cache))
    dest = Path(fc.cache_path(server.url()))
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_bytes(server.data[: 4 * (512 + 3072) + 100])  # an old cut copy
    got = list(wds.WebDataset(server.url(), cache_dir=str(cache), shardshuffle=False))
    assert _keys(got) == [f"k{i:02d}" for i in range(N)]  # each sample exactly once
    assert [s["bin"][:1] for s in got] == [bytes([65 + i]) for i in range(N)]
    assert dest.read_bytes() == server.data and server.hits == 1


def test_ppwids_refuses_a_cut_download_then_recovers(tmp_path, server):
    cache = tmp_path / "wcache"
    server.cut = 5 * 1024 + 700
    desc = [{"url": server.url(), "nsamples": N}]
    ds = ppwids.ShardListDataset(desc, cache_dir=str(cache), transformations=[])
    with pytest.raises(DownloadError, match="not a complete shard"):
        ds[0]
    assert not [f for f in _files(cache) if not f.endswith(".lock")]
    server.cut = None
    ds = ppwids.ShardListDataset(desc, cache_dir=str(cache), transformations=[])
    assert ds[N - 1][".bin"] == bytes([65 + N - 1]) * 3000


KILLED_DOWNLOAD = textwrap.dedent(
    """
    import sys
    kind, url, cache = sys.argv[1:4]
    if kind == "stream":
        import ppwebdataset as wds
        list(wds.WebDataset(url, cache_dir=cache, shardshuffle=False))
    else:
        import ppwids
        ppwids.ShardListDataset([{"url": url, "nsamples": 6}], cache_dir=cache, transformations=[])[0]
    """
)


def _temps(cache):
    return [p for p in Path(cache).rglob(".ppwds-tmp-*")]


@pytest.mark.parametrize("kind", ["stream", "ppwids"])
def test_sigkill_during_download_leaves_a_temp_that_the_next_use_removes(tmp_path, server, kind):
    cache = tmp_path / "cache"
    cache.mkdir()
    big = 400_000  # half the shard is more than one 1 MiB copy chunk, so the temp gets data
    server.data = _tar(size=big)
    server.stall = True
    env = dict(os.environ, PYTHONPATH=str(ROOT / "python"))
    proc = subprocess.Popen([sys.executable, "-c", KILLED_DOWNLOAD, kind, server.url(), str(cache)], env=env)
    try:
        deadline = time.monotonic() + 60
        while not any(p.stat().st_size > 0 for p in _temps(cache)):
            assert proc.poll() is None, "the download ended instead of hanging"
            assert time.monotonic() < deadline, "no temporary file appeared"
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    left = _temps(cache)
    assert len(left) == 1  # what the killed process left behind
    # Nothing under a final cache name.
    assert not [f for f in _files(cache) if not f.startswith((".ppwds-", ".")) and not f.endswith(".lock")]
    server.stall = False
    if kind == "stream":
        got = list(wds.WebDataset(server.url(), cache_dir=str(cache), shardshuffle=False))
        assert len(got) == N
    else:
        ds = ppwids.ShardListDataset([{"url": server.url(), "nsamples": N}], cache_dir=str(cache), transformations=[])
        assert ds[0][".bin"] == b"A" * big
    assert _temps(cache) == []


def test_live_and_foreign_temps_are_kept(tmp_path):
    folder = tmp_path / "c"
    folder.mkdir()
    fd, mine = _download.new_temp(str(folder))  # this process, lock held
    foreign = folder / ".ppwds-tmp-otherhost-1-2-abc"
    foreign.write_bytes(b"x")
    # A temp of a dead local pid whose lock is free is stale.
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    gone = folder / f".ppwds-tmp-{_download._HOST}-{int(dead.stdout)}-1-abc"
    gone.write_bytes(b"x")
    removed = _download.clean_stale_temps(str(folder), again=True)
    assert removed == [str(gone)]
    assert os.path.exists(mine) and foreign.exists()
    old = time.time() - _download.STALE_TEMP_SECONDS - 10
    os.utime(foreign, (old, old))
    assert _download.clean_stale_temps(str(folder), again=True) == [str(foreign)]
    os.close(fd)


def test_a_cache_hit_also_cleans_stale_temps(tmp_path):
    from ppwids import wids_dl

    folder = tmp_path / "c"
    folder.mkdir()
    (folder / "s.tar").write_bytes(_tar())
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = folder / f".ppwds-tmp-{_download._HOST}-{int(dead.stdout)}-1-abc"
    stale.write_bytes(b"x")
    assert wids_dl.fetch("http://127.0.0.1:9/s.tar", str(folder / "s.tar")) is False
    assert not stale.exists()
