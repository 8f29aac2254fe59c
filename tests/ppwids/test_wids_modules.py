"""The helper modules user code imports: mmtar/tar readers, specs, LRU, cleanup, downloads, decoding."""

from __future__ import annotations

import gzip
import io
import os
import pickle
import time

import numpy as np
import pytest

from ppwebdataset.errors import UnsafeOperationError
from ppwids.wids_cleanup import keep_most_recent_files
from ppwids.wids_decode import decode_all_gz, default_decoder
from ppwids.wids_dl import download_file_no_log
from ppwids.wids_lru import LRUCache
from ppwids.wids_mmtar import MMIndexedTar
from ppwids.wids_specs import resolve_dsdesc, urldir, urlmerge
from ppwids.wids_tar import TarFileReader, find_index_file


def test_mmindexedtar_lists_every_member_without_shifting(tmp_path, make_tar):
    long = "d" * 150 + "/k.txt"
    path = make_tar(tmp_path / "m.tar", [("a.txt", b"1"), ("a.txt", b"2"), (long, b"L"), ("b.cls", b"3")])
    tar = MMIndexedTar(str(path))
    assert tar.names() == ["a.txt", "a.txt", long, "b.cls"]
    assert len(tar) == 4
    assert tar[1] == ("a.txt", b"2") and tar[2] == (long, b"L") and tar["b.cls"] == ("b.cls", b"3")
    assert tar["a.txt"] == ("a.txt", b"2")  # the later duplicate, as when unpacking
    name, stream = tar.get_file(3)
    assert (name, stream.read()) == ("b.cls", b"3")
    assert list(tar) == [("a.txt", b"1"), ("a.txt", b"2"), (long, b"L"), ("b.cls", b"3")]
    offset = tar.by_index[2][1]
    assert tar.get_at_offset(offset) == (long, b"L")
    tar.close()


def test_tarfilereader_keeps_a_sidecar_that_is_not_pickle(tmp_path, make_tar, members):
    path = make_tar(tmp_path / "t.tar", members(3))
    reader = TarFileReader(str(path))
    assert reader.index_file == find_index_file(str(path)) == str(path) + ".ppwidx"
    assert len(reader) == 6 and reader.get_file(5)[1].read() == b"2"
    reader.close()
    side = (tmp_path / "t.tar.ppwidx").read_bytes()
    assert side.startswith(b"PPWDSIX1")
    with pytest.raises(pickle.UnpicklingError):
        pickle.loads(side)
    again = TarFileReader(str(path))
    assert again.index.from_sidecar and again.names() == reader.names()
    assert find_index_file("/x/s.tar._12_") == "/x/s.tar.ppwidx"


def test_urls_are_merged_like_paths():
    assert urldir("http://h/a/b/d.json") == "http://h/a/b"
    assert urldir("d.json") == ""
    assert urlmerge("http://h/a/b", "c.tar") == "http://h/a/b/c.tar"
    assert urlmerge("http://h/a/b", "../c.tar?x=1") == "http://h/a/c.tar?x=1"
    assert urlmerge("http://h/a", "/abs/c.tar") == "http://h/abs/c.tar"
    assert urlmerge("/data", "gs://bucket/c.tar") == "gs://bucket/c.tar"
    assert urlmerge("", "c.tar") == "c.tar"
    resolved = resolve_dsdesc({"wids_version": 1, "shardlist": [{"url": "a.tar", "nsamples": 1}]}, base="/d")
    assert resolved["shardlist"][0]["url"] == "/d/a.tar"
    with pytest.raises(ValueError, match="no shards"):
        resolve_dsdesc({"wids_version": 1, "shardlist": []})


def test_lru_cache_releases_what_it_drops():
    released = []
    lru = LRUCache(2, release_handler=lambda k, v: released.append(k))
    lru["a"], lru["b"] = 1, 2
    assert lru["a"] == 1  # now most recent
    lru["c"] = 3
    assert released == ["b"] and "b" not in lru and lru["zz"] is None
    del lru["a"]
    lru.clear()
    assert released == ["b", "a", "c"] and len(lru) == 0


def test_cleanup_keeps_the_most_recent_files(tmp_path):
    now = time.time()
    for i in range(5):
        p = tmp_path / f"f{i}.tar"
        p.write_bytes(b"x" * 100)
        os.utime(p, (now - 100 + i, now - 100 + i))
    keep_most_recent_files(str(tmp_path / "*.tar"), maxsize=250)
    assert sorted(os.listdir(tmp_path)) == ["f3.tar", "f4.tar"]
    keep_most_recent_files(str(tmp_path / "*.tar"), maxfiles=1)
    assert os.listdir(tmp_path) == ["f4.tar"]


def test_template_handlers_never_use_a_shell(tmp_path):
    marker = tmp_path / "pwned"
    src = tmp_path / "src.bin"
    src.write_bytes(b"payload")
    handlers = {"posixpath": "cp {url} {local}"}
    download_file_no_log(str(src), str(tmp_path / "out.bin"), handlers=handlers)
    assert (tmp_path / "out.bin").read_bytes() == b"payload"
    hostile = f"{src}; touch {marker}"
    with pytest.raises(OSError):
        download_file_no_log(hostile, str(tmp_path / "out2.bin"), handlers=handlers)
    assert not marker.exists() and not (tmp_path / "out2.bin").exists()


def test_decoders(monkeypatch):
    monkeypatch.delenv("PPWDS_ALLOW_PICKLE", raising=False)
    buf = io.BytesIO()
    np.save(buf, np.arange(3))
    sample = {
        ".txt.gz": gzip.compress(b"hello"),
        ".npy": buf.getvalue(),
        ".cls": io.BytesIO(b"5"),
        "__key__": "k",
    }
    out = default_decoder(sample, format="numpy")
    assert out[".txt.gz"] == "hello" and out[".cls"] == 5 and out[".npy"].tolist() == [0, 1, 2]
    assert isinstance(sample[".cls"], io.BytesIO) and sample[".txt.gz"][:2] == b"\x1f\x8b"  # input untouched
    assert decode_all_gz({".a.gz": gzip.compress(b"z")}) == {".a": b"z"}
    for ext in (".pth", ".pickle", ".pdparams"):
        with pytest.raises(UnsafeOperationError, match="PPWDS_ALLOW_PICKLE"):
            default_decoder({ext: b"\x80\x04N."})
    with pytest.raises(ValueError, match="must start with a dot"):
        default_decoder({"txt": b"x"})
