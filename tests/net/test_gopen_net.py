"""gopen: local files, pipes, curl against a local server, cloud CLIs (faked), env variables."""

from __future__ import annotations

import gc
import importlib
import io
import os
import sys
import warnings

import pytest

import ppwebdataset as wds
from ppwebdataset._settings import DataURL
from ppwebdataset.errors import UnsafeOperationError

G = importlib.import_module("ppwebdataset.gopen")


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    for name in (
        "PPWDS_ALLOW_PIPE",
        "GOPEN_REWRITE",
        "GOPEN_VERBOSE",
        "GOPEN_BUFFER",
        "USE_AIS_FOR",
        "HF_TOKEN",
        "HUGGING_FACE_HUB_TOKEN",
        "HF_ENDPOINT",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HF_TOKEN_PATH", "/nonexistent/ppwds-test-token")
    monkeypatch.setattr(G, "ALLOW_PIPE", False)
    monkeypatch.setattr(G.gopen, "ALLOW_PIPE", False)


def resource_warnings(record):
    return [w for w in record if issubclass(w.category, ResourceWarning)]


# ---------------------------------------------------------------------------
# Local files
# ---------------------------------------------------------------------------


def test_top_level_gopen_is_the_function():
    assert wds.gopen is G.gopen
    assert wds.gopen_schemes is G.gopen_schemes


def test_local_path_file_url_and_pathlike(tmp_path):
    p = tmp_path / "a b#1.tar"
    p.write_bytes(b"hello")
    with G.gopen(str(p)) as f:
        assert f.read() == b"hello"
    with G.gopen(p) as f:
        assert f.read() == b"hello"
    with G.gopen("file://" + str(p).replace(" ", "%20").replace("#", "%23")) as f:
        assert f.read() == b"hello"
    with G.gopen("file:" + str(p).replace(" ", "%20").replace("#", "%23")) as f:
        assert f.read() == b"hello"
    assert G.local_path(str(p)) == str(p)
    assert G.local_path("file://localhost" + str(tmp_path / "x")) == str(tmp_path / "x")
    assert G.local_path("http://h/x") is None
    assert G.local_path("-") is None


def test_relative_file_url_as_in_0_2_86(tmp_path, monkeypatch):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "x.tar").write_bytes(b"rel")
    monkeypatch.chdir(tmp_path)
    with G.gopen("file://d/x.tar") as f:
        assert f.read() == b"rel"


def test_write_local(tmp_path):
    with G.gopen(str(tmp_path / "out.bin"), "wb") as f:
        f.write(b"xyz")
    assert (tmp_path / "out.bin").read_bytes() == b"xyz"


def test_dash_is_stdin_stdout():
    assert G.gopen("-") is sys.stdin.buffer
    assert G.gopen("-", "wb") is sys.stdout.buffer


def test_gopen_buffer_env(tmp_path, monkeypatch):
    p = tmp_path / "x"
    p.write_bytes(b"1")
    monkeypatch.setenv("GOPEN_BUFFER", "0")
    with G.gopen(str(p)) as f:
        assert isinstance(f, io.FileIO)  # unbuffered
    monkeypatch.delenv("GOPEN_BUFFER")
    with G.gopen(str(p)) as f:
        assert isinstance(f, io.BufferedReader)


def test_bad_mode_and_unknown_scheme():
    with pytest.raises(ValueError, match="only 'rb' and 'wb'"):
        G.gopen("x", "r")
    with pytest.raises(ValueError, match="nosuch://x/y: no gopen handler"):
        G.gopen("nosuch://x/y")


def test_windows_drive_is_local():
    assert G.scheme_of("C:\\data\\a.tar") == ""
    assert G.scheme_of("c:/data/a.tar") == ""
    assert G.scheme_of("s3://b/k") == "s3"


def test_gopen_rewrite_prefix(tmp_path, monkeypatch):
    (tmp_path / "a.tar").write_bytes(b"rewritten")
    monkeypatch.setenv("GOPEN_REWRITE", f"nothing://=x;http://example.invalid/data/={tmp_path}/")
    with G.gopen("http://example.invalid/data/a.tar") as f:
        assert f.read() == b"rewritten"
    assert G.rewrite_url("https://other/x") == "https://other/x"


def test_gopen_rewrite_regex_prefix(monkeypatch):
    monkeypatch.setenv("GOPEN_REWRITE", r"https?://mirror[0-9]+\.example/=s3://bucket/")
    assert G.rewrite_url("http://mirror7.example/a/b.tar") == "s3://bucket/a/b.tar"


def test_rewrite_to_pipe_is_gated_only_for_data_urls(tmp_path, monkeypatch):
    (tmp_path / "x.tar").write_bytes(b"payload")
    monkeypatch.setenv("GOPEN_REWRITE", f"s3://bucket/=pipe:cat {tmp_path}/")
    with G.gopen("s3://bucket/x.tar") as f:  # the user's URL and the user's rule
        assert f.read() == b"payload"
    data_url = DataURL("s3://bucket/x.tar", "http://example.invalid/list.json")
    with pytest.raises(UnsafeOperationError, match="PPWDS_ALLOW_PIPE=1"):
        G.gopen(data_url)


def test_missing_helper_program_is_named(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(FileNotFoundError, match=r"s3://b/k.tar: the 'aws' program"):
        G.gopen("s3://b/k.tar")


def test_gopen_verbose_logs(tmp_path, monkeypatch, capfd):
    p = tmp_path / "v"
    p.write_bytes(b"")
    monkeypatch.setenv("GOPEN_VERBOSE", "1")
    G.gopen(str(p)).close()
    assert f"GOPEN {p}" in capfd.readouterr().err


# ---------------------------------------------------------------------------
# pipe:
# ---------------------------------------------------------------------------


def test_user_pipe_runs_by_default_data_pipe_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with G.gopen("pipe:touch created") as f:
        f.read()
    assert (tmp_path / "created").exists()
    with pytest.raises(UnsafeOperationError, match="PPWDS_ALLOW_PIPE=1") as info:
        G.gopen(DataURL("pipe:touch from-data", "http://example.invalid/spec.yaml"))
    assert isinstance(info.value, PermissionError)
    assert "ALLOW_PIPE = True" in str(info.value) and "example.invalid/spec.yaml" in str(info.value)
    assert not (tmp_path / "from-data").exists()


def test_pipe_allowed_by_env_and_flag(tmp_path, monkeypatch):
    p = tmp_path / "data.bin"
    p.write_bytes(os.urandom(100_000))
    monkeypatch.setenv("PPWDS_ALLOW_PIPE", "1")
    with G.gopen(f"pipe:cat '{p}'") as f:
        assert f.read() == p.read_bytes()
    monkeypatch.delenv("PPWDS_ALLOW_PIPE")
    monkeypatch.setattr(G, "ALLOW_PIPE", True)
    with G.gopen(f"pipe:cat '{p}'") as f:
        buf = bytearray(70_000)
        n = f.readinto(buf)
        assert n > 0 and bytes(buf[:n]) == p.read_bytes()[:n]


def test_pipe_allowed_via_package_attribute(monkeypatch):
    # ``ppwebdataset.gopen`` is the function; the documented flag works on it as well.
    monkeypatch.setattr(wds.gopen, "ALLOW_PIPE", True)
    with wds.gopen("pipe:printf ok") as f:
        assert f.read() == b"ok"


def test_pipe_failure_names_url_and_status(monkeypatch):
    monkeypatch.setattr(G, "ALLOW_PIPE", True)
    url = "pipe:echo partial; exit 3"
    with pytest.raises(OSError, match=r"pipe:echo partial; exit 3: shell command failed with exit status 3"):
        with G.gopen(url) as f:
            while f.read(10):
                pass


def test_pipe_failure_reported_once(monkeypatch):
    monkeypatch.setattr(G, "ALLOW_PIPE", True)
    f = G.gopen("pipe:exit 4")
    with pytest.raises(OSError, match="status 4"):
        f.read()
    f.close()  # already reported: closing does not raise again
    assert f.closed


def test_reader_close_does_not_raise(monkeypatch):
    # A failure first seen at close() concerns data the reader did not ask for.
    monkeypatch.setattr(G, "ALLOW_PIPE", True)
    f = G.gopen("pipe:exit 5")
    f.proc.wait()
    f.close()
    assert f.status == 5 and f.closed


def test_writer_left_open_still_finishes(tmp_path, monkeypatch):
    monkeypatch.setattr(G, "ALLOW_PIPE", True)
    out = tmp_path / "late.bin"
    f = G.gopen(f"pipe:cat > '{out}'", "wb")
    f.write(b"kept")
    proc = f.proc
    del f
    gc.collect()
    assert proc.returncode == 0
    assert out.read_bytes() == b"kept"


def test_pipe_early_close_kills_process_group(tmp_path, monkeypatch, helpers):
    monkeypatch.setattr(G, "ALLOW_PIPE", True)
    pidfile = tmp_path / "bg.pid"
    f = G.gopen(f"pipe:sleep 600 & echo $! > '{pidfile}'; cat /dev/zero")
    assert f.read(1000) == b"\0" * 1000
    proc = f.proc
    f.close()
    assert proc.returncode is not None  # reaped
    assert helpers.process_gone(proc.pid)
    # The shell's background job is in the same process group and was stopped too.
    assert helpers.wait_gone(int(pidfile.read_text()))


def test_pipe_write(tmp_path, monkeypatch):
    monkeypatch.setattr(G, "ALLOW_PIPE", True)
    out = tmp_path / "w.bin"
    with G.gopen(f"pipe:cat > '{out}'", "wb") as f:
        f.write(b"a" * 100_000)
    assert out.read_bytes() == b"a" * 100_000


def test_pipe_write_failure_raises_on_close(tmp_path, monkeypatch):
    monkeypatch.setattr(G, "ALLOW_PIPE", True)
    # Reported by write() if the child is already gone, else by close(); never twice.
    with pytest.raises(OSError, match="shell command failed with exit status 2"):
        with G.gopen(f"pipe:cat > '{tmp_path}/no/such/dir/x'", "wb") as f:
            f.write(b"x")


def test_unclosed_pipe_is_reaped_quietly(monkeypatch, helpers):
    monkeypatch.setattr(G, "ALLOW_PIPE", True)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        f = G.gopen("pipe:cat /dev/zero")
        f.read(10)
        proc = f.proc
        del f
        gc.collect()
    assert proc.returncode is not None
    assert helpers.process_gone(proc.pid)
    assert resource_warnings(record) == []


# ---------------------------------------------------------------------------
# http(s) via curl, against a local server
# ---------------------------------------------------------------------------


def test_http_200_identical(server):
    data = os.urandom(3_000_000)
    server.files["/d/shard.tar"] = data
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        with G.gopen(server.url("/d/shard.tar")) as f:
            assert isinstance(f, G.Pipe)
            assert f.proc.args[0] == "curl" and f.proc.args[-1] == server.url("/d/shard.tar")
            got = f.read()
        gc.collect()
    assert got == data
    assert f.status == 0
    assert resource_warnings(record) == []


def test_http_404_names_url_and_status(server):
    url = server.url("/missing.tar")
    with pytest.raises(OSError) as info:
        with G.gopen(url) as f:
            f.read()
    msg = str(info.value)
    assert url in msg
    assert "exit status 22" in msg  # curl's exit status for an HTTP error
    assert "404" in msg  # curl's own message, captured from stderr


def test_http_quote_and_semicolon_do_not_reach_a_shell(server, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = "/a';touch${IFS}PWNED;echo${IFS}'[1-2]{x,y}b.tar"
    server.files[path] = b"payload"
    url = server.url(path)
    with G.gopen(url) as f:
        assert f.read() == b"payload"
    assert f.proc.args[-1] == url
    assert not (tmp_path / "PWNED").exists()
    assert list(tmp_path.iterdir()) == []


def test_http_upload_with_curl(server):
    data = os.urandom(200_000)
    with G.gopen(server.url("/up/x.tar"), "wb") as f:
        f.write(data)
    assert f.status == 0
    assert server.files["/up/x.tar"] == data


def test_http_early_close_reaps_curl(server, helpers):
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        f = G.gopen(server.url("/slow/x.tar"))
        assert len(f.read(5000)) == 5000
        proc = f.proc
        assert proc.poll() is None  # still downloading
        f.close()
        gc.collect()
    assert proc.returncode is not None
    assert helpers.process_gone(proc.pid)
    assert not os.path.exists(f"/proc/{proc.pid}")
    assert resource_warnings(record) == []


def test_http_pipeline_stopped_early_reaps_curl(server, helpers):
    """A pipeline over an endless http shard, stopped after a few samples, leaves no child."""
    from ppwebdataset.cache import StreamingOpen
    from ppwebdataset.tariterators import tarfile_samples

    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        opened = []

        def spy(items):
            for item in items:
                opened.append(item["stream"])
                yield item

        it = tarfile_samples(spy(StreamingOpen()([dict(url=server.url("/slow/s.tar"))])))
        first = [next(it) for _ in range(3)]
        assert [s["__key__"] for s in first] == ["s0000000", "s0000001", "s0000002"]
        it.close()
        del it
        gc.collect()
    (pipe,) = opened
    assert pipe.closed
    assert pipe.proc.returncode is not None
    assert helpers.process_gone(pipe.proc.pid)
    assert resource_warnings(record) == []


# ---------------------------------------------------------------------------
# Cloud CLIs, faked on PATH
# ---------------------------------------------------------------------------

NASTY = "bucket/dir with space/a'b\"c;$(touch PWNED)`id`&x|y*.tar"


@pytest.mark.parametrize(
    "scheme, tool, expected",
    [
        ("s3", "aws", lambda u: ["s3", "cp", u, "-"]),
        ("gs", "gsutil", lambda u: ["cat", u]),
        ("ais", "ais", lambda u: ["get", u, "-"]),
    ],
)
def test_cloud_read_argv_verbatim(scheme, tool, expected, fake_tools, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    fake_tools.data.write_bytes(b"cloud-bytes" * 1000)
    url = f"{scheme}://{NASTY}"
    with G.gopen(url) as f:
        assert f.read() == b"cloud-bytes" * 1000
    assert fake_tools.argv(tool) == expected(url)
    assert not (tmp_path / "PWNED").exists()


@pytest.mark.parametrize(
    "scheme, tool, expected",
    [
        ("s3", "aws", lambda u: ["s3", "cp", "-", u]),
        ("gs", "gsutil", lambda u: ["cp", "-", u]),
        ("ais", "ais", lambda u: ["put", "-", u]),
    ],
)
def test_cloud_write_argv(scheme, tool, expected, fake_tools):
    fake_tools.action("write")
    url = f"{scheme}://{NASTY}"
    with G.gopen(url, "wb") as f:
        f.write(b"upload")
    assert fake_tools.argv(tool) == expected(url)
    assert fake_tools.out.read_bytes() == b"upload"


def test_cloud_failure_names_url_status_and_stderr(fake_tools):
    fake_tools.action("fail")
    url = "s3://bucket/x.tar"
    with pytest.raises(OSError) as info:
        with G.gopen(url) as f:
            f.read()
    msg = str(info.value)
    assert url in msg and "aws failed with exit status 3" in msg and "fake failure" in msg


def test_use_ais_for(fake_tools, monkeypatch):
    fake_tools.data.write_bytes(b"via-ais")
    monkeypatch.setenv("USE_AIS_FOR", "gs:s3")
    with G.gopen("gs://b/k.tar") as f:
        assert f.read() == b"via-ais"
    assert fake_tools.argv("ais") == ["get", "gs://b/k.tar", "-"]
    assert not fake_tools.called("gsutil")


def test_htgs_maps_to_public_gcs(fake_tools):
    fake_tools.data.write_bytes(b"public")
    with G.gopen("htgs://bucket/a/b.tar") as f:
        assert f.read() == b"public"
    argv = fake_tools.argv("curl")
    assert argv[-1] == "https://storage.googleapis.com/bucket/a/b.tar"
    assert "-f" in argv
    with pytest.raises(ValueError, match="read-only"):
        G.gopen("htgs://bucket/a/b.tar", "wb")


# ---------------------------------------------------------------------------
# hf:
# ---------------------------------------------------------------------------


def test_hf_url_mapping(monkeypatch):
    assert G.hf_to_https("hf://datasets/org/repo/train/0001.tar") == (
        "https://huggingface.co/datasets/org/repo/resolve/main/train/0001.tar"
    )
    assert G.hf_to_https("hf://org/model@v1.0/a b.tar") == "https://huggingface.co/org/model/resolve/v1.0/a%20b.tar"
    assert G.hf_to_https("hf://datasets/o/r@refs/pr/3/x.tar") == (
        "https://huggingface.co/datasets/o/r/resolve/refs%2Fpr%2F3/x.tar"
    )
    monkeypatch.setenv("HF_ENDPOINT", "https://hf-mirror.com/")
    assert G.hf_to_https("hf://spaces/o/s/x") == "https://hf-mirror.com/spaces/o/s/resolve/main/x"
    with pytest.raises(ValueError, match="expected hf://"):
        G.hf_to_https("hf://datasets/only-owner")


def test_hf_token_not_on_argv(fake_tools, monkeypatch):
    secret = "hf_SECRET_TOKEN_123"
    monkeypatch.setenv("HF_TOKEN", secret)
    fake_tools.action("readstdin")
    fake_tools.data.write_bytes(b"hf-data")
    with G.gopen("hf://datasets/org/repo/x.tar") as f:
        assert f.read() == b"hf-data"
    argv = fake_tools.argv("curl")
    assert all(secret not in a for a in argv)
    assert argv[-1] == "https://huggingface.co/datasets/org/repo/resolve/main/x.tar"
    assert "-K" in argv
    assert f'header = "Authorization: Bearer {secret}"' in fake_tools.stdin("curl").decode()


def test_hf_with_real_curl_sends_header(server, monkeypatch):
    server.files["/datasets/org/repo/resolve/main/x.tar"] = b"from-hub"
    monkeypatch.setenv("HF_ENDPOINT", server.url(""))
    monkeypatch.setenv("HF_TOKEN", "hf_abc")
    with G.gopen("hf://datasets/org/repo/x.tar") as f:
        assert f.read() == b"from-hub"
        assert all("hf_abc" not in a for a in f.proc.args)
    assert server.headers["/datasets/org/repo/resolve/main/x.tar"]["Authorization"] == "Bearer hf_abc"


def test_hf_token_file(tmp_path, monkeypatch, server):
    token = tmp_path / "token"
    token.write_text("hf_from_file\n")
    monkeypatch.setenv("HF_TOKEN_PATH", str(token))
    monkeypatch.setenv("HF_ENDPOINT", server.url(""))
    server.files["/o/m/resolve/main/w.bin"] = b"w"
    with G.gopen("hf://o/m/w.bin") as f:
        assert f.read() == b"w"
    assert server.headers["/o/m/resolve/main/w.bin"]["Authorization"] == "Bearer hf_from_file"


def test_hf_token_file_under_hf_home(tmp_path, monkeypatch, fake_tools):
    (tmp_path / "hfhome").mkdir()
    (tmp_path / "hfhome" / "token").write_text("hf_home_token")
    monkeypatch.delenv("HF_TOKEN_PATH")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hfhome"))
    fake_tools.action("readstdin")
    fake_tools.data.write_bytes(b"w")
    with G.gopen("hf://o/m/w.bin") as f:
        assert f.read() == b"w"
    assert "Bearer hf_home_token" in fake_tools.stdin("curl").decode()


def test_hf_is_read_only():
    with pytest.raises(ValueError, match="read-only"):
        G.gopen("hf://o/r/x", "wb")


def test_set_options():
    assert G.set_options(io.BytesIO(), timeout=1) is False
