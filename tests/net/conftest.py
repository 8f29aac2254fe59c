"""Fixtures for the gopen/cache tests: a local HTTP server, fake cloud CLIs, tar builders."""

from __future__ import annotations

import io
import os
import stat
import tarfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote

import pytest


def make_tar(members: dict[str, bytes], fmt=tarfile.USTAR_FORMAT) -> bytes:
    """A tar archive holding ``members`` (name -> data), in order."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 1_700_000_000
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def shard(prefix: str, n: int, size: int = 64) -> bytes:
    """A shard of ``n`` samples ``<prefix>NNN`` with ``.txt`` and ``.bin`` members."""
    members = {}
    for i in range(n):
        members[f"{prefix}{i:03d}.txt"] = f"{prefix}-{i}".encode()
        members[f"{prefix}{i:03d}.bin"] = bytes([i % 256]) * size
    return make_tar(members)


def endless_tar_member(i: int, size: int) -> bytes:
    """One tar member (header + padded data) for an endless stream."""
    info = tarfile.TarInfo(f"s{i:07d}.bin")
    info.size = size
    info.mtime = 1_700_000_000
    data = bytes([i % 251]) * size
    pad = (-size) % 512
    return info.tobuf(format=tarfile.USTAR_FORMAT) + data + b"\0" * pad


class Server:
    """Routes: ``files`` (path -> bytes, after ``failures[path]`` 503 replies), ``/slow/...``
    (an endless tar stream), else 404."""

    def __init__(self):
        self.files: dict[str, bytes] = {}
        self.hits: dict[str, int] = {}
        self.headers: dict[str, dict[str, str]] = {}
        self.failures: dict[str, int] = {}  # path -> how many requests get a 503 first
        self.delay = 0.0
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                path = unquote(self.path)
                with outer.lock:
                    outer.hits[path] = outer.hits.get(path, 0) + 1
                    outer.headers[path] = dict(self.headers.items())
                if outer.delay:
                    time.sleep(outer.delay)
                try:
                    if path.startswith("/slow/"):
                        self.send_response(200)
                        self.send_header("Content-Type", "application/x-tar")
                        self.end_headers()
                        # Bounded (about 60 s at most) so a broken test cannot hang the suite.
                        for i in range(6000):
                            self.wfile.write(endless_tar_member(i, 60000))
                            self.wfile.flush()
                            time.sleep(0.01)
                        return
                    with outer.lock:
                        fail = outer.failures.get(path, 0)
                        if fail:
                            outer.failures[path] = fail - 1
                    if fail:
                        self.send_error(503, "try again")
                        return
                    data = outer.files.get(path)
                    if data is None:
                        self.send_error(404, "not here")
                        return
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def do_PUT(self):
                path = unquote(self.path)
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    body = bytearray()
                    while True:
                        size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                        if size == 0:
                            self.rfile.readline()
                            break
                        body += self.rfile.read(size)
                        self.rfile.readline()
                else:
                    body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with outer.lock:
                    outer.files[path] = bytes(body)
                self.send_response(201)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def hit_count(self, path: str) -> int:
        with self.lock:
            return self.hits.get(path, 0)


@pytest.fixture
def server():
    srv = Server()
    srv.thread.start()
    try:
        yield srv
    finally:
        srv.httpd.shutdown()
        srv.httpd.server_close()
        srv.thread.join(10)


FAKE_TOOL = """#!/bin/sh
# Records its argv (NUL-separated) and stdin, then acts as told by FAKE_ACTION.
log="$FAKE_LOG_DIR/$(basename "$0")"
: > "$log.argv"
for a in "$@"; do printf '%s\\0' "$a" >> "$log.argv"; done
case "${FAKE_ACTION:-read}" in
  read) cat "$FAKE_DATA" ;;
  readstdin) cat > "$log.stdin"; cat "$FAKE_DATA" ;;
  write) cat > "$FAKE_OUT" ;;
  fail) echo "fake failure for $*" >&2; exit 3 ;;
esac
"""


class FakeTools:
    """Fake ``aws``/``gsutil``/``ais``/``curl`` executables first on PATH."""

    def __init__(self, tmp_path, monkeypatch):
        self.bin = tmp_path / "fakebin"
        self.logs = tmp_path / "fakelogs"
        self.bin.mkdir()
        self.logs.mkdir()
        self.data = tmp_path / "fakedata"
        self.out = tmp_path / "fakeout"
        for name in ("aws", "gsutil", "ais", "curl"):
            exe = self.bin / name
            exe.write_text(FAKE_TOOL)
            exe.chmod(exe.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
        monkeypatch.setenv("PATH", f"{self.bin}{os.pathsep}{os.environ.get('PATH', '')}")
        monkeypatch.setenv("FAKE_LOG_DIR", str(self.logs))
        monkeypatch.setenv("FAKE_DATA", str(self.data))
        monkeypatch.setenv("FAKE_OUT", str(self.out))
        self.monkeypatch = monkeypatch

    def action(self, what: str):
        self.monkeypatch.setenv("FAKE_ACTION", what)

    def argv(self, name: str) -> list[str]:
        raw = (self.logs / f"{name}.argv").read_bytes()
        return raw.decode().split("\0")[:-1]

    def stdin(self, name: str) -> bytes:
        return (self.logs / f"{name}.stdin").read_bytes()

    def called(self, name: str) -> bool:
        return (self.logs / f"{name}.argv").exists()


@pytest.fixture
def fake_tools(tmp_path, monkeypatch):
    return FakeTools(tmp_path, monkeypatch)


def process_gone(pid: int) -> bool:
    """True when ``pid`` no longer runs (absent, or a zombie waiting for a reaper we do not control)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return True
    return state in ("Z", "X")


def wait_gone(pid: int, seconds: float = 10.0) -> bool:
    """Poll until ``pid`` is gone (used for grandchildren that another process reaps)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process_gone(pid):
            return True
        time.sleep(0.02)
    return process_gone(pid)


@pytest.fixture
def helpers():
    """This module, so tests can call ``helpers.make_tar`` etc. (importlib mode has no conftest import)."""
    import sys

    return sys.modules[__name__]
