"""A ppwids download from a server that stops sending is given up after WIDS_DOWNLOAD_TIMEOUT."""

from __future__ import annotations

import socket
import threading

import pytest

from ppwids import wids_dl


@pytest.fixture
def stalling_server():
    # Sends headers and the first 1000 of 100000 promised bytes, then nothing, until closed.
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(4)
    stop = threading.Event()
    conns = []

    def serve():
        srv.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except OSError:
                continue
            conns.append(conn)
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + b"x" * 1000)

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.getsockname()[1]}/shard.tar"
    stop.set()
    t.join()
    for c in conns:
        c.close()
    srv.close()


def test_stalled_download_raises_download_error(stalling_server, tmp_path, monkeypatch):
    monkeypatch.setattr(wids_dl, "TIMEOUT", 1.0)
    result = {}

    def run():
        try:
            wids_dl.http_download(stalling_server, str(tmp_path / "out.tar"))
        except BaseException as e:  # noqa: BLE001 - handed to the test thread
            result["error"] = e

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(60)  # a hang guard, not a speed check
    assert not t.is_alive(), "download did not give up on a stalled server"
    err = result.get("error")
    assert isinstance(err, wids_dl.DownloadError), err
    assert "no data for 1 s" in str(err) and stalling_server in str(err)


def test_slow_but_steady_download_is_not_a_stall(tmp_path, monkeypatch):
    # Data keeps arriving, a piece within each timeout: the download completes. (Pieces are
    # larger than curl's stdout buffer, which holds smaller writes back.)
    monkeypatch.setattr(wids_dl, "TIMEOUT", 1.0)
    body = bytes(range(256)) * 400
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)

    def serve():
        conn, _ = srv.accept()
        conn.recv(65536)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body))
        for i in range(0, len(body), 20480):
            threading.Event().wait(0.4)
            conn.sendall(body[i : i + 20480])
        conn.close()

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    out = tmp_path / "out.bin"
    wids_dl.http_download(f"http://127.0.0.1:{srv.getsockname()[1]}/x", str(out))
    t.join(10)
    srv.close()
    assert out.read_bytes() == body
