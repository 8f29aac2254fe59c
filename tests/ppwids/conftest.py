"""Fixtures for the ppwids tests: shard writers, a local HTTP server, the reference package."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tarfile
import threading
import time
from collections import Counter
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
REF = ROOT / ".ref" / "ppwebdataset-0.2.86"


def write_tar(path, members, format=tarfile.GNU_FORMAT):
    """Writes ``[(name, bytes)]`` as a tar with Python's tarfile."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w", format=format) as tf:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 1_700_000_000
            tf.addfile(info, io.BytesIO(data))
    return path


def simple_members(n, prefix="s", start=0):
    """``n`` samples with a ``.txt`` and a ``.cls`` member."""
    out = []
    for i in range(start, start + n):
        out.append((f"{prefix}{i:04d}.txt", f"text {prefix} {i}".encode()))
        out.append((f"{prefix}{i:04d}.cls", str(i).encode()))
    return out


@pytest.fixture
def make_tar():
    return write_tar


@pytest.fixture
def members():
    return simple_members


def run_reference(code: str, cwd, timeout=240) -> str:
    """Runs ``code`` with ppwebdataset 0.2.86 (and its ppwids) first on the path; returns stdout."""
    if not (REF / "ppwids" / "__init__.py").exists():
        pytest.skip("reference ppwebdataset 0.2.86 not installed (run scripts/setup.sh)")
    env = dict(os.environ, PYTHONPATH=str(REF), PYTHONWARNINGS="ignore")
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


@pytest.fixture
def reference():
    return run_reference


class _Handler(SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # keep test output clean
        pass

    def do_GET(self):
        self.server.requests[self.path] += 1
        if self.server.delay:
            time.sleep(self.server.delay)
        super().do_GET()


class Server:
    """A static file server on 127.0.0.1 that counts GET requests per path."""

    def __init__(self, root: Path, delay: float = 0.0):
        handler = lambda *a, **kw: _Handler(*a, directory=str(root), **kw)  # noqa: E731
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.requests = Counter()
        self.httpd.delay = delay
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def requests(self):
        return self.httpd.requests

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=10)


@pytest.fixture
def http_root(tmp_path):
    root = tmp_path / "www"
    root.mkdir()
    return root


@pytest.fixture
def http_server(http_root):
    server = Server(http_root)
    yield server
    server.close()


@pytest.fixture
def slow_http_server(http_root):
    # Slow responses keep downloads in flight long enough for workers to race for them.
    server = Server(http_root, delay=0.3)
    yield server
    server.close()
