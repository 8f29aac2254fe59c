"""cache: StreamingOpen, FileCache (atomic, locked, LRU), file types, names, obsolete API."""

from __future__ import annotations

import bz2
import gc
import gzip
import io
import os
import subprocess
import sys
import tarfile
import threading
import time
import warnings

import pytest

import ppwebdataset as wds
from ppwebdataset import _download
from ppwebdataset import cache as C
from ppwebdataset.handlers import ignore_and_continue, ignore_and_stop
from ppwebdataset.utils import ObsoleteException


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    for name in ("WDS_CACHE", "WDS_CACHE_SIZE", "WDS_VERBOSE_CACHE", "ALLOW_OBSOLETE", "GOPEN_VERBOSE"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def no_subprocess(monkeypatch):
    """Fail the test if anything starts a process (the type checks must not run ``file``)."""

    def refuse(*args, **kw):
        raise AssertionError(f"unexpected subprocess: {args}")

    monkeypatch.setattr(subprocess, "Popen", refuse)
    monkeypatch.setattr(os, "system", refuse)
    monkeypatch.setattr(os, "popen", refuse)


def internal_files(folder):
    return sorted(p.name for p in folder.rglob("*") if p.name.startswith(".ppwds-tmp-"))


def entries(folder):
    return sorted(p.name for p in folder.rglob("*") if p.is_file() and not p.name.startswith(".ppwds-"))


def drain(items):
    """Read every yielded stream fully and close it; returns [(url, data, local_path)]."""
    out = []
    for item in items:
        with item["stream"] as s:
            out.append((item["url"], s.read(), item.get("local_path")))
    return out


# ---------------------------------------------------------------------------
# File types by magic bytes
# ---------------------------------------------------------------------------


def test_check_tar_format_by_magic(tmp_path, helpers, no_subprocess):
    tar = helpers.make_tar({"a.txt": b"x"})
    gnu = helpers.make_tar({"a.txt": b"x"}, fmt=tarfile.GNU_FORMAT)
    pax = helpers.make_tar({"a" * 150 + ".txt": b"x"}, fmt=tarfile.PAX_FORMAT)
    # A v7 header: no magic, but a valid checksum.
    v7 = bytearray(tar[:512])
    v7[257:265] = b"\0" * 8
    v7[148:156] = b" " * 8
    v7[148:156] = b"%06o\0 " % sum(v7)
    cases = {
        "ustar": (tar, True, "POSIX tar archive"),
        "gnu": (gnu, True, "POSIX tar archive (GNU)"),
        "pax": (pax, True, "POSIX tar archive"),
        "v7": (bytes(v7) + tar[512:], True, "tar archive (V7)"),
        "empty-tar": (b"\0" * 10240, True, "tar archive (empty)"),
        "gz": (gzip.compress(tar), True, "gzip compressed data"),
        "bz2": (bz2.compress(tar), True, "bzip2 compressed data"),
        "html": (b"<html>404 not found</html>" * 40, False, "data"),
        "empty": (b"", False, "empty"),
    }
    for name, (data, ok, kind) in cases.items():
        p = tmp_path / f"{name}'; touch PWNED #"
        p.write_bytes(data)
        assert C.check_tar_format(str(p)) is ok, name
        assert C.magic_filetype(str(p)) == f"{p}: {kind}"
        assert C.get_filetype(str(p)) == f"{p}: {kind}"
    assert not (tmp_path / "PWNED").exists()
    with pytest.raises(FileNotFoundError):
        C.get_filetype(str(tmp_path / "missing"))


# ---------------------------------------------------------------------------
# Names
# ---------------------------------------------------------------------------


def test_cache_file_names_are_collision_free_and_readable():
    a = C._cache_file_name("https://h/a/shard-000.tar")
    b = C._cache_file_name("https://h/b/shard-000.tar")
    c = C._cache_file_name("https://h/a/shard-000.tar?x=1")
    assert len({a, b, c}) == 3
    assert all(n.endswith("-shard-000.tar") for n in (a, b, c))
    assert a == C._cache_file_name("https://h/a/shard-000.tar")
    assert C._cache_file_name("https://h/a/shard-000.tar", ndir=1).endswith("-a-shard-000.tar")
    weird = C._cache_file_name('s3://b/x/it\'s a "tar";rm -rf.tar')
    assert "/" not in weird and "'" not in weird and '"' not in weird and ";" not in weird and " " not in weird
    assert C._cache_file_name("https://h/").endswith("-data")
    with pytest.raises(TypeError):
        C._cache_file_name(b"https://h/x")


def test_url_to_cache_name_keeps_upstream_results():
    # webdataset 1.0.2's public function: the basename (plus ndir parents); other schemes quoted.
    assert C.url_to_cache_name("https://h/a/shard-000.tar") == "shard-000.tar"
    assert C.url_to_cache_name("https://h/a/shard-000.tar", ndir=1) == "a/shard-000.tar"
    assert C.url_to_cache_name("/data/x/y.tar") == "y.tar"
    assert C.url_to_cache_name("pipe:curl -s http://h/x.tar") == "pipe%3Acurl%20-s%20http%3A%2F%2Fh%2Fx.tar"
    with pytest.raises(AssertionError):
        C.url_to_cache_name(b"https://h/x")


def test_default_cache_names_do_not_collide(tmp_path):
    fc = C.FileCache(str(tmp_path))
    assert fc.cache_path("https://h/a/x.tar") != fc.cache_path("https://h/b/x.tar")
    assert C.FileCache(str(tmp_path), url_to_name=C.url_to_cache_name).url_to_name is C._cache_file_name


def test_pipe_cleaner_does_not_raise():
    assert wds.pipe_cleaner is C.pipe_cleaner
    assert C.pipe_cleaner("pipe:curl -s -L 'https://h/a b.tar' | cat") == "https://h/a b.tar"
    assert C.pipe_cleaner("pipe:aws s3 cp s3://bkt/k.tar -") == "s3://bkt/k.tar"
    assert C.pipe_cleaner("pipe:cat local.tar") == "pipe:cat local.tar"
    assert C.pipe_cleaner("https://h/x.tar") == "https://h/x.tar"
    assert C.pipe_cleaner("pipe:echo 'unbalanced") == "pipe:echo 'unbalanced"


def test_islocal():
    assert C.islocal("a/b.tar") and C.islocal("/x") and C.islocal("file:///x")
    assert not C.islocal("http://h/x") and not C.islocal("s3://b/k")


# ---------------------------------------------------------------------------
# StreamingOpen
# ---------------------------------------------------------------------------


def test_streaming_open_local_and_remote(tmp_path, server):
    p = tmp_path / "a#1.tar"
    p.write_bytes(b"local")
    server.files["/r.tar"] = b"remote"
    items = list(
        C.StreamingOpen()(
            [dict(url=str(p), extra=1), "file://" + str(p).replace("#", "%23"), dict(url=server.url("/r.tar"))]
        )
    )
    assert items[0]["local_path"] == str(p) and items[0]["extra"] == 1
    assert items[1]["local_path"] == str(p)
    assert "local_path" not in items[2]
    assert [it["stream"].read() for it in items] == [b"local", b"local", b"remote"]
    for it in items:
        it["stream"].close()


def test_streaming_open_handler(tmp_path):
    good = tmp_path / "g.tar"
    good.write_bytes(b"g")
    urls = [str(tmp_path / "missing.tar"), str(good)]
    with pytest.raises(FileNotFoundError):
        list(C.StreamingOpen()(urls))
    assert [d for _, d, _ in drain(C.StreamingOpen(handler=ignore_and_continue)(urls))] == [b"g"]
    assert drain(C.StreamingOpen(handler=ignore_and_stop)(urls)) == []


# ---------------------------------------------------------------------------
# FileCache
# ---------------------------------------------------------------------------


def test_file_cache_downloads_once_and_yields_each_shard_once(tmp_path, server, helpers):
    shards = {f"/data/{d}/shard-000.tar": helpers.shard(d, 3) for d in ("a", "b")}
    server.files.update(shards)
    urls = [server.url(p) for p in shards]
    cache_dir = tmp_path / "cache"
    fc = C.FileCache(str(cache_dir))
    for _ in range(2):
        got = drain(fc(dict(url=u) for u in urls))
        # Once per URL (ppwebdataset 0.2.86 yielded each shard 10 times).
        assert [u for u, _, _ in got] == urls
        assert [d for _, d, _ in got] == list(shards.values())
        for _, _, lp in got:
            assert os.path.dirname(lp) == str(cache_dir)
    assert all(server.hit_count(p) == 1 for p in shards)
    # Same basename, different directories: two distinct entries.
    names = entries(cache_dir)
    assert len(names) == 2 and all(n.endswith("-shard-000.tar") for n in names)
    assert internal_files(cache_dir) == []


def test_file_cache_stream_is_a_plain_binary_file(tmp_path, server, helpers):
    server.files["/x.tar"] = helpers.shard("x", 1)
    (item,) = list(C.FileCache(str(tmp_path))([server.url("/x.tar")]))
    with item["stream"] as s:
        assert isinstance(s, io.BufferedReader)
        assert s.name == item["local_path"]


def test_file_cache_never_caches_local_paths(tmp_path, helpers):
    src = tmp_path / "local.tar"
    src.write_bytes(helpers.shard("l", 2))
    cache_dir = tmp_path / "cache"
    got = drain(C.FileCache(str(cache_dir))([str(src), "file://" + str(src)]))
    assert [lp for _, _, lp in got] == [str(src), str(src)]
    assert not cache_dir.exists() or list(cache_dir.iterdir()) == []


def test_file_cache_honours_url_to_name(tmp_path, server, helpers):
    server.files["/d/x.tar"] = helpers.shard("x", 1)
    fc = C.FileCache(str(tmp_path), url_to_name=lambda u: "mine-" + u.rsplit("/", 1)[-1])
    (got,) = drain(fc([server.url("/d/x.tar")]))
    assert got[2] == str(tmp_path / "mine-x.tar")
    fc_sub = C.FileCache(str(tmp_path), url_to_name=lambda u: "sub/dir/" + u.rsplit("/", 1)[-1])
    (got_sub,) = drain(fc_sub([server.url("/d/x.tar")]))
    assert got_sub[2] == str(tmp_path / "sub" / "dir" / "x.tar")
    # pipe_cleaner (WebDataset's default) returns a URL: it is turned into a hashed name.
    fc2 = C.FileCache(str(tmp_path / "c2"), url_to_name=C.pipe_cleaner)
    (got2,) = drain(fc2([server.url("/d/x.tar")]))
    assert os.path.basename(got2[2]) == C._cache_file_name(server.url("/d/x.tar"))


def test_file_cache_rejects_escaping_names(tmp_path, server, helpers):
    server.files["/x.tar"] = helpers.shard("x", 1)
    for bad in ("../escape.tar", "/abs.tar", "", "a//b"):
        fc = C.FileCache(str(tmp_path / "c"), url_to_name=lambda u, bad=bad: bad)
        with pytest.raises(ValueError, match="bad cache name"):
            list(fc([server.url("/x.tar")]))
    assert not (tmp_path / "escape.tar").exists()


def test_failed_download_leaves_nothing(tmp_path, server):
    cache_dir = tmp_path / "cache"
    url = server.url("/nope.tar")
    with pytest.raises(OSError, match="404") as info:
        list(C.FileCache(str(cache_dir))([url]))
    assert url in str(info.value)
    assert list(cache_dir.iterdir()) == [] or all(p.name.startswith(".ppwds-lock-") for p in cache_dir.iterdir())


def test_invalid_download_is_rejected_before_entering_the_cache(tmp_path, server):
    server.files["/page.tar"] = b"<html>login required</html>"
    cache_dir = tmp_path / "cache"
    url = server.url("/page.tar")
    with pytest.raises(ValueError, match="not a tar archive") as info:
        list(C.FileCache(str(cache_dir))([url]))
    assert url in str(info.value) and "login required" in str(info.value)
    assert entries(cache_dir) == [] and internal_files(cache_dir) == []
    # validator=None accepts anything.
    (got,) = drain(C.FileCache(str(cache_dir), validator=None)([url]))
    assert got[1] == b"<html>login required</html>"


def test_retry_backoff_on_continue_and_no_sleep_on_stop(tmp_path, server, helpers, monkeypatch):
    sleeps = []
    monkeypatch.setattr(C, "_sleep", sleeps.append)
    server.files["/ok.tar"] = helpers.shard("ok", 1)
    bad, ok = server.url("/bad.tar"), server.url("/ok.tar")
    seen = []

    def keep_going(exn):
        seen.append(exn)
        return True

    got = drain(C.FileCache(str(tmp_path / "c1"), handler=keep_going)([bad, ok]))
    assert [u for u, _, _ in got] == [ok]
    assert len(seen) == 5 and server.hit_count("/bad.tar") == 5
    assert sleeps == [0.1, 0.2, 0.4, 0.8]  # short, growing, none after the last attempt

    sleeps.clear()
    stopped = []

    def stop(exn):
        stopped.append(exn)
        return False

    assert drain(C.FileCache(str(tmp_path / "c2"), handler=stop)([bad, ok])) == []
    assert len(stopped) == 1 and sleeps == []
    assert server.hit_count("/ok.tar") == 1  # the stage ended before the next URL

    sleeps.clear()
    with pytest.raises(OSError):
        list(C.FileCache(str(tmp_path / "c3"))([bad, ok]))
    assert sleeps == []


def test_verbose_cache_env(tmp_path, server, helpers, monkeypatch, capfd):
    server.files["/v.tar"] = helpers.shard("v", 1)
    monkeypatch.setenv("WDS_VERBOSE_CACHE", "1")
    drain(C.FileCache(str(tmp_path))([server.url("/v.tar")]))
    assert f"downloading {server.url('/v.tar')}" in capfd.readouterr().err


def test_replacing_the_gopen_function_changes_how_the_cache_opens(tmp_path, helpers, monkeypatch):
    data = helpers.shard("m", 2)
    opened = []

    def fake_gopen(url, mode="rb", bufsize=8192, **kw):
        opened.append(url)
        return io.BytesIO(data)

    monkeypatch.setattr(C.gopen, "gopen", fake_gopen)
    (got,) = drain(C.FileCache(str(tmp_path))(["custom://bucket/m.tar"]))
    assert got[1] == data and opened == ["custom://bucket/m.tar"]
    (got,) = drain(C.StreamingOpen()(["custom://bucket/m.tar"]))
    assert got[1] == data


# ---------------------------------------------------------------------------
# Eviction
# ---------------------------------------------------------------------------


def set_used(path, when):
    os.utime(path, (when, when))


def test_lru_evicts_least_recently_used_not_oldest(tmp_path, server, helpers):
    for name in "abc":
        server.files[f"/{name}.tar"] = helpers.make_tar({f"{name}.bin": b"z" * 10_000})
    size = len(server.files["/a.tar"])
    cache_dir = tmp_path / "cache"
    fc = C.FileCache(str(cache_dir), cache_size=2 * size + 100, cache_cleanup_interval=0)
    drain(fc([server.url("/a.tar"), server.url("/b.tar")]))
    now = time.time()
    set_used(fc.cache_path(server.url("/a.tar")), now - 200)  # a is older ...
    set_used(fc.cache_path(server.url("/b.tar")), now - 100)
    drain(fc([server.url("/a.tar")]))  # ... but used again (touched), so b is now the LRU
    assert server.hit_count("/a.tar") == 1
    drain(fc([server.url("/c.tar")]))
    assert os.path.exists(fc.cache_path(server.url("/a.tar")))
    assert not os.path.exists(fc.cache_path(server.url("/b.tar")))
    assert os.path.exists(fc.cache_path(server.url("/c.tar")))
    assert sum(p.stat().st_size for p in cache_dir.iterdir()) <= 2 * size + 100


def test_lru_never_evicts_the_file_being_yielded(tmp_path, server, helpers):
    for name in "ab":
        server.files[f"/{name}.tar"] = helpers.make_tar({f"{name}.bin": b"y" * 20_000})
    fc = C.FileCache(str(tmp_path), cache_size=1000, cache_cleanup_interval=0)  # smaller than one shard
    it = fc([server.url("/a.tar"), server.url("/b.tar")])
    first = next(it)
    # Another cleanup (e.g. by another stage in this process) while the consumer reads.
    assert C.LRUCleanup(str(tmp_path), 1000, interval=0).cleanup() == []
    assert os.path.exists(first["local_path"])
    data = first["stream"].read()
    first["stream"].close()
    assert data == server.files["/a.tar"]
    second = next(it)
    second["stream"].close()
    assert not os.path.exists(first["local_path"])  # released once the consumer moved on
    assert os.path.exists(second["local_path"])
    it.close()


def test_lru_cleanup_standalone_and_stale_temps(tmp_path):
    now = time.time()
    for i, name in enumerate(["old", "mid", "new"]):
        p = tmp_path / name
        p.write_bytes(b"x" * 1000)
        set_used(p, now - 300 + i * 100)
    stale = tmp_path / ".ppwds-tmp-1-2-dead"
    stale.write_bytes(b"t" * 10)
    set_used(stale, now - C.STALE_TEMP_SECONDS - 10)
    active = tmp_path / ".ppwds-tmp-3-4-live"
    active.write_bytes(b"t" * 10)
    removed = C.LRUCleanup(str(tmp_path), cache_size=2100, interval=0).cleanup()
    assert sorted(os.path.basename(p) for p in removed) == sorted(["old", stale.name])
    assert active.exists() and (tmp_path / "mid").exists() and (tmp_path / "new").exists()
    # The interval limits how often the directory is scanned.
    cleaner = C.LRUCleanup(str(tmp_path), cache_size=0, interval=3600)
    cleaner.last_run = time.time()
    assert cleaner.cleanup() == []
    assert C.LRUCleanup(None).cleanup() == []


def test_lru_custom_keyfn(tmp_path):
    for name in ("a", "b"):
        (tmp_path / name).write_bytes(b"x" * 100)
    removed = C.LRUCleanup(str(tmp_path), 150, keyfn=lambda p: -ord(os.path.basename(p)), interval=0).cleanup()
    assert [os.path.basename(p) for p in removed] == ["b"]


# ---------------------------------------------------------------------------
# Concurrency
# ---------------------------------------------------------------------------

CHILD = """
import sys
from ppwebdataset.cache import FileCache
path = FileCache(sys.argv[1]).get_file(sys.argv[2])
print(path)
"""


def test_concurrent_processes_download_once(tmp_path, server, helpers):
    server.files["/shared.tar"] = helpers.shard("s", 50, size=2000)
    server.delay = 0.5  # keep the first download in flight while the others arrive
    url = server.url("/shared.tar")
    cache_dir = tmp_path / "cache"
    procs = [
        subprocess.Popen([sys.executable, "-c", CHILD, str(cache_dir), url], stdout=subprocess.PIPE, text=True)
        for _ in range(4)
    ]
    outs = []
    for p in procs:
        out, _ = p.communicate(timeout=120)
        assert p.returncode == 0
        outs.append(out.strip())
    assert len(set(outs)) == 1
    assert server.hit_count("/shared.tar") == 1
    with open(outs[0], "rb") as f:
        assert f.read() == server.files["/shared.tar"]
    assert internal_files(cache_dir) == []


def test_concurrent_threads_download_once(tmp_path, server, helpers):
    server.files["/t.tar"] = helpers.shard("t", 10)
    server.delay = 0.2
    url = server.url("/t.tar")
    results, errors = [], []

    def work():
        try:
            results.append(C.FileCache(str(tmp_path)).get_file(url))
        except Exception as exn:  # pragma: no cover - reported below
            errors.append(exn)

    threads = [threading.Thread(target=work) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == [] and len(set(results)) == 1 and len(results) == 6
    assert server.hit_count("/t.tar") == 1


def test_download_temp_names_are_unique_and_cleaned(tmp_path, server, monkeypatch):
    server.files["/d.bin"] = b"abc"
    dest = tmp_path / "out" / "d.bin"
    C.download(server.url("/d.bin"), str(dest))
    assert dest.read_bytes() == b"abc"
    names = {C._temp_file(str(tmp_path))[1] for _ in range(20)}
    assert len(names) == 20
    assert all(f".ppwds-tmp-{_download._HOST}-{os.getpid()}-{threading.get_ident()}-" in n for n in names)
    with pytest.raises(OSError):
        C.download(server.url("/missing"), str(tmp_path / "out" / "m.bin"))
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["d.bin"]


# ---------------------------------------------------------------------------
# Settings helpers for WebDataset
# ---------------------------------------------------------------------------


def test_resolve_cache_settings(tmp_path, monkeypatch):
    assert C.resolve_cache_settings(None, -1) == (None, -1)
    assert C.resolve_cache_settings(str(tmp_path), 5) == (str(tmp_path), 5)
    with pytest.raises(ValueError, match="does not exist"):
        C.resolve_cache_settings(str(tmp_path / "nope"), -1)
    monkeypatch.setenv("WDS_CACHE", str(tmp_path))
    monkeypatch.setenv("WDS_CACHE_SIZE", "1e9")
    assert C.resolve_cache_settings(None, -1) == (str(tmp_path), 1_000_000_000)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("WDS_CACHE", "~")
    assert C.resolve_cache_settings(None, -1)[0] == str(tmp_path)
    monkeypatch.setenv("WDS_CACHE_SIZE", "lots")
    with pytest.raises(ValueError, match="WDS_CACHE_SIZE"):
        C.resolve_cache_settings(None, -1)


def test_make_opener(tmp_path):
    assert isinstance(C.make_opener(None, -1), C.StreamingOpen)
    assert isinstance(C.make_opener(str(tmp_path), 0), C.StreamingOpen)
    fc = C.make_opener(str(tmp_path), 1000)
    assert isinstance(fc, C.FileCache) and fc.cleaner is not None
    assert C.make_opener(str(tmp_path), -1).cleaner is None


def test_file_cache_default_dir_from_env(tmp_path, monkeypatch):
    monkeypatch.setenv("WDS_CACHE", str(tmp_path))
    assert C.FileCache().cache_dir == str(tmp_path)


def test_webdataset_with_cache_yields_each_sample_once(tmp_path, server, helpers):
    server.files["/w.tar"] = helpers.shard("w", 3)
    cache_dir = tmp_path / "cache"
    cache_dir.mkdir()
    ds = wds.WebDataset(server.url("/w.tar"), cache_dir=str(cache_dir), shardshuffle=False)
    keys = [s["__key__"] for s in ds]
    assert keys == ["w000", "w001", "w002"]  # 0.2.86 gave 9 (P3)
    assert [s["__key__"] for s in ds] == keys
    assert server.hit_count("/w.tar") == 1


# ---------------------------------------------------------------------------
# Obsolete API
# ---------------------------------------------------------------------------


def test_obsolete_functions_raise_unless_allowed(tmp_path):
    with pytest.raises(ObsoleteException, match="ALLOW_OBSOLETE=1"):
        C.cached_url_opener([dict(url="x")])
    with pytest.raises(ObsoleteException):
        C.cached_tarfile_samples([dict(url="x")])
    stage = wds.cached_tarfile_to_samples(cache_dir=str(tmp_path))
    with pytest.raises(ObsoleteException):
        stage([dict(url="x")])


def test_obsolete_functions_work_when_allowed(tmp_path, server, helpers, monkeypatch):
    monkeypatch.setenv("ALLOW_OBSOLETE", "1")
    server.files["/o.tar"] = helpers.shard("o", 2)
    local = tmp_path / "l.tar"
    local.write_bytes(helpers.shard("l", 1))
    cache_dir = tmp_path / "cache"
    samples = [dict(url=server.url("/o.tar"), extra="kept"), dict(url=str(local))]
    got = list(C.cached_url_opener(samples, cache_dir=str(cache_dir)))
    assert got[0]["extra"] == "kept" and got[0]["local_path"].startswith(str(cache_dir))
    assert got[0]["stream"].read() == server.files["/o.tar"]
    assert got[1]["local_path"] == str(local)
    for g in got:
        g["stream"].close()
    keys = [s["__key__"] for s in C.cached_tarfile_samples([dict(url=server.url("/o.tar"))], cache_dir=str(cache_dir))]
    assert keys == ["o000", "o001"]
    stage = wds.cached_tarfile_to_samples(cache_dir=str(cache_dir))
    assert [s["__key__"] for s in stage([dict(url=str(local))])] == ["l000"]
    assert server.hit_count("/o.tar") == 1


def test_obsolete_opener_handler_gets_url(tmp_path, monkeypatch):
    monkeypatch.setenv("ALLOW_OBSOLETE", "1")
    seen = []
    missing = str(tmp_path / "missing.tar")
    out = list(C.cached_url_opener([dict(url=missing)], handler=lambda e: seen.append(e) or True))
    assert out == [] and seen[0].args[-1] == missing


# ---------------------------------------------------------------------------
# No leaks
# ---------------------------------------------------------------------------


def test_pipeline_through_cache_stopped_early_leaks_nothing(tmp_path, server, helpers):
    from ppwebdataset.tariterators import tarfile_samples

    for name in "ab":
        server.files[f"/{name}.tar"] = helpers.shard(name, 20)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        it = tarfile_samples(C.FileCache(str(tmp_path))([server.url("/a.tar"), server.url("/b.tar")]))
        assert next(it)["__key__"] == "a000"
        it.close()
        del it
        gc.collect()
        it = tarfile_samples(C.StreamingOpen()([server.url("/a.tar"), server.url("/b.tar")]))
        assert len(list(it)) == 40
        del it
        gc.collect()
    assert [w for w in record if issubclass(w.category, ResourceWarning)] == []
    assert C._busy_paths() == set()
