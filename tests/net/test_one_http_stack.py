"""ppwids downloads go through the streaming side's opener (gopen): the same request, the
same retry policy, the same auth, rewrite rules and cloud-CLI calls as a streamed shard."""

from __future__ import annotations

import importlib

import pytest

from ppwids import wids_dl

G = importlib.import_module("ppwebdataset.gopen")


def _streamed(url) -> bytes:
    with G.gopen(url) as f:
        return f.read()


def test_ppwids_sends_the_request_streaming_sends(tmp_path, server, helpers):
    server.files["/a.tar"] = server.files["/b.tar"] = helpers.shard("s", 2)
    assert _streamed(server.url("/a.tar")) == server.files["/a.tar"]
    assert wids_dl.fetch(server.url("/b.tar"), str(tmp_path / "b.tar"), validate=wids_dl.check_shard("b"))
    assert (tmp_path / "b.tar").read_bytes() == server.files["/b.tar"]
    streamed, downloaded = server.headers["/a.tar"], server.headers["/b.tar"]
    assert downloaded["User-Agent"] == streamed["User-Agent"] and streamed["User-Agent"].startswith("curl/")
    assert downloaded.keys() == streamed.keys()


def test_a_transient_server_error_is_retried_by_both(tmp_path, server, helpers):
    data = helpers.shard("r", 1)
    server.files["/r1.tar"] = server.files["/r2.tar"] = server.files["/d.json"] = data
    server.failures.update({"/r1.tar": 1, "/r2.tar": 1, "/d.json": 1})
    assert _streamed(server.url("/r1.tar")) == data
    assert wids_dl.fetch(server.url("/r2.tar"), str(tmp_path / "r2.tar"))
    assert (tmp_path / "r2.tar").read_bytes() == data
    assert wids_dl.fetch_bytes(server.url("/d.json")) == data  # descriptors too
    assert server.hit_count("/r1.tar") == server.hit_count("/r2.tar") == server.hit_count("/d.json") == 2


def test_an_http_error_names_the_url_and_status_and_leaves_nothing(tmp_path, server):
    url = server.url("/gone.tar")
    with pytest.raises(wids_dl.DownloadError, match="404") as info:
        wids_dl.fetch(url, str(tmp_path / "gone.tar"))
    assert info.value.url == url and str(info.value).startswith(f"cannot download {url}: curl ")
    assert [p.name for p in tmp_path.iterdir()] == ["gone.tar.lock"]
    with pytest.raises(wids_dl.DownloadError, match="404"):
        wids_dl.fetch_bytes(url)


def test_hf_urls_download_with_the_token_as_streaming_sends_it(tmp_path, server, monkeypatch):
    server.files["/datasets/org/repo/resolve/main/x.tar"] = b"from-hub"
    monkeypatch.setenv("HF_ENDPOINT", server.url(""))
    monkeypatch.setenv("HF_TOKEN", "hf_abc")
    assert wids_dl.fetch("hf://datasets/org/repo/x.tar", str(tmp_path / "x.tar"))
    assert (tmp_path / "x.tar").read_bytes() == b"from-hub"
    assert server.headers["/datasets/org/repo/resolve/main/x.tar"]["Authorization"] == "Bearer hf_abc"


def test_gopen_rewrite_applies_to_ppwids_downloads(tmp_path, server, monkeypatch):
    server.files["/mirror/m.tar"] = b"mirrored"
    monkeypatch.setenv("GOPEN_REWRITE", f"https://origin.invalid/={server.url('/mirror/')}")
    assert wids_dl.fetch("https://origin.invalid/m.tar", str(tmp_path / "m.tar"))
    assert (tmp_path / "m.tar").read_bytes() == b"mirrored"


@pytest.mark.parametrize(
    ("url", "tool", "argv"),
    [
        ("gs://bucket/k.tar", "gsutil", ["cat", "gs://bucket/k.tar"]),
        ("s3://bucket/k.tar", "aws", ["s3", "cp", "s3://bucket/k.tar", "-"]),
        # gopen has no ftp: entry (as webdataset); ppwids reads it with gopen's curl call.
        ("ftp://host/k.tar", "curl", [*G.CURL_OPTIONS, "--", "ftp://host/k.tar"]),
    ],
)
def test_cloud_and_ftp_urls_run_the_programs_streaming_runs(tmp_path, fake_tools, url, tool, argv):
    fake_tools.data.write_bytes(b"payload")
    streamed_url = url.replace("ftp:", "https:")
    assert _streamed(streamed_url) == b"payload"
    assert [a.replace(streamed_url, url) for a in fake_tools.argv(tool)] == argv
    assert wids_dl.fetch(url, str(tmp_path / "k.tar"))
    assert (tmp_path / "k.tar").read_bytes() == b"payload"
    assert fake_tools.argv(tool) == argv
    fake_tools.action("fail")
    with pytest.raises(wids_dl.DownloadError, match="exit status 3"):
        wids_dl.fetch(url, str(tmp_path / "again.tar"))
