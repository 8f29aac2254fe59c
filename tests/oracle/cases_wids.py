"""Oracle cases for ``ppwids`` (0.2.86 ships it; webdataset 1.0.2's ``wids`` is not installed).

Every case compares ours with ppwebdataset 0.2.86 (``rule="0.2.86"``). Ours returns field
values as ``bytes``; the cases pass ``as_streams=True`` to get 0.2.86's ``BytesIO`` (a
README difference). Shard caches live outside ``tmp``: ours indexes local shards in place
where 0.2.86 copied them (also in the README).
"""

from __future__ import annotations

import io
import json
import os
import tempfile

from cases import OURS_ONLY, V0286, attempt, case, shards, write_tar

WIDS: list = []


def wcase(*covers, **kw):
    kw.setdefault("rule", V0286)
    return case(*covers, table=WIDS, **kw)


def W(P, sub="wids"):
    import importlib

    return importlib.import_module(f"ppwids.{sub}" if sub else "ppwids")


def descriptor(tmp, n=2, per=3):
    urls = shards(tmp, n, per)
    desc = {"wids_version": 1, "name": "oracle", "shardlist": [{"url": u, "nsamples": per} for u in urls]}
    (tmp / "ds.json").write_text(json.dumps(desc))
    return desc, urls


def dataset(P, source, **kw):
    if P.ours:
        kw["as_streams"] = True
    cache = tempfile.mkdtemp(prefix="oracle-wids-")
    return W(P).ShardListDataset(source, cache_dir=cache, transformations=[], **kw)


def fields(sample):
    # 0.2.86 mixes int and numpy.int64 indices from shard to shard; compare the numbers.
    out = {k: v for k, v in sample.items() if k in ("__key__", "cls", "txt")}
    out.update({k: int(sample[k]) for k in ("__index__", "__shardindex__") if k in sample})
    return out


@wcase("ppwids.ShardListDataset", "ppwids.wids.ShardListDataset", "ppwids.wids.load_dsdesc_and_resolve")
def shard_list_dataset(P, tmp):
    desc, _ = descriptor(tmp)
    ds = dataset(P, str(tmp / "ds.json"))
    out = len(ds), [fields(ds[i]) for i in range(len(ds))], attempt(lambda: ds[len(ds)])
    ds.close()
    return out


@wcase("ppwids.ShardListDataset", name="shard_list_dataset_dict")
def shard_list_dataset_dict(P, tmp):
    desc, _ = descriptor(tmp, 1, 2)
    ds = dataset(P, desc["shardlist"])
    return len(ds), [fields(ds[i]) for i in range(len(ds))]


@wcase("ppwids.ShardListDataset", "ppwids.wids.default_decoder", "ppwids.wids.interpret_transformations")
def shard_list_dataset_decoded(P, tmp):
    _, urls = descriptor(tmp, 1, 2)
    cache = tempfile.mkdtemp(prefix="oracle-wids-")
    ds = W(P).ShardListDataset([{"url": urls[0], "nsamples": 2}], cache_dir=cache)
    return [{k: v for k, v in ds[i].items() if k in ("__key__", "cls", "txt")} for i in range(2)]


@wcase(
    "ppwids.ChunkedSampler",
    "ppwids.wids.ChunkedSampler",
    "ppwids.ShardedSampler",
    "ppwids.wids.ShardListSampler",
    "ppwids.wids.ShardedSampler",
)
def samplers(P, tmp):
    _, urls = descriptor(tmp, 3, 4)
    ds = dataset(P, [{"url": u, "nsamples": 4} for u in urls])
    w = W(P)
    chunked = list(w.ChunkedSampler(ds, chunksize=5, seed=1, shuffle=False))
    shuffled = sorted(w.ChunkedSampler(ds, chunksize=5, seed=1, shuffle=True))
    sharded = sorted(w.ShardListSampler(ds, seed=2))
    return chunked, shuffled, sharded, w.ShardedSampler is w.ShardListSampler


@wcase(
    "ppwids.DistributedChunkedSampler",
    "ppwids.wids.DistributedChunkedSampler",
    # 0.2.86 gives every rank all samples (each rank reads the whole dataset): silent wrong data.
    rule=OURS_ONLY,
    check=lambda r: (
        sorted(r["value"][0] + r["value"][1]) == list(range(8)) and not set(r["value"][0]) & set(r["value"][1])
    ),
)
def distributed_sampler(P, tmp):
    _, urls = descriptor(tmp, 2, 4)
    ds = dataset(P, [{"url": u, "nsamples": 4} for u in urls])
    parts = [
        sorted(W(P).DistributedChunkedSampler(ds, num_replicas=2, rank=r, chunksize=3, shuffle=False)) for r in (0, 1)
    ]
    return parts


@wcase(
    "ppwids.wids.lengths_to_ranges",
    "ppwids.wids.intersect_range",
    "ppwids.wids.intersect_ranges",
    "ppwids.wids.iterate_ranges",
)
def ranges(P, tmp):
    import random

    w = W(P)
    r = w.lengths_to_ranges([3, 0, 4])
    return (
        r,
        w.intersect_range((0, 5), (3, 9)),
        w.intersect_range((0, 2), (3, 9)),
        w.intersect_ranges(r, (2, 5)),
        sorted(w.iterate_ranges([(0, 3), (3, 7)], random.Random(0))),
    )


@wcase("ppwids.wids.splitname", "ppwids.wids.group_by_key")
def names(P, tmp):
    w = W(P)
    return [w.splitname(n) for n in ("a/b.c.d", "x.y", "d.1/e.f")], w.group_by_key(["a.x", "a.y", "b.x", "c.z", "c.w"])


@wcase("ppwids.wids.compute_file_md5sum", "ppwids.wids.compute_num_samples")
def file_facts(P, tmp):
    url = shards(tmp, 1, 3)[0]
    # 0.2.86's compute_num_samples calls IndexedTarSamples wrongly (a TypeError).
    return W(P).compute_file_md5sum(url), attempt(W(P).compute_num_samples, url) if P.ours else 3


@wcase(
    "ppwids.wids.hash_dataset_name",
    "ppwids.wids.default_localname",
    "ppwids.wids.cache_localname",
    "ppwids.wids.hash_localname",
    rule=OURS_ONLY,
    check=lambda r: r["value"][0] == r["value"][1] and r["value"][0] != r["value"][2] and r["value"][3],
)
def localnames(P, tmp):
    # 0.2.86 names cache files after the URL's basename; ours hashes the URL (no collisions).
    w = W(P)
    f = w.cache_localname(str(tmp / "c"))
    return (
        f("http://h/a/x.tar"),
        f("http://h/a/x.tar"),
        f("http://h/b/x.tar"),
        w.hash_dataset_name("n") == w.hash_dataset_name("n"),
    )


@wcase("ppwids.wids.IndexedTarSamples", "ppwids.wids.MMIndexedTar", "ppwids.wids_mmtar.MMIndexedTar")
def indexed_tar_samples(P, tmp):
    url = shards(tmp, 1, 3)[0]
    its = W(P).IndexedTarSamples(path=url)
    out = len(its), [sorted(k for k in its[i] if not k.startswith("__")) for i in range(len(its))]
    its.close()
    return out


@wcase("ppwids.wids_mmtar.MMIndexedTar", "ppwids.wids_mmtar.keep_while_reading")
def mmindexed_tar(P, tmp):
    url = write_tar(tmp / "m.tar", [("a.txt", b"1"), ("README", b"r"), ("__meta__", b"m"), ("a.cls", b"2")])
    t = W(P, "wids_mmtar").MMIndexedTar(url)
    out = list(t.names()), [(n, bytes(d)) for n, d in t], t["README"][0], bytes(t["README"][1]), len(t)
    t.close()
    return out


@wcase(
    "ppwids.wids_tar.TarFileReader",
    "ppwids.wids.TarFileReader",
    "ppwids.wids_tar.find_index_file",
    "ppwids.wids.find_index_file",
)
def tar_file_reader(P, tmp):
    url = shards(tmp, 1, 2)[0]
    r = W(P, "wids_tar").TarFileReader(url, index_file=None)
    name, stream = r.get_file(1)
    out = list(r.names()), len(r), name, stream.read()
    r.close()
    return out


@wcase(
    "ppwids.wids.LRUCache",
    "ppwids.wids_lru.LRUCache",
    "ppwids.wids.LRUShards",
)
def lru(P, tmp):
    released = []
    c = W(P, "wids_lru").LRUCache(2, release_handler=lambda k, v: released.append(k))
    for k in "abc":
        c[k] = k.upper()
    # A copy: dropping the cache releases what it still holds.
    return sorted(c.keys()), list(released), "a" in c, len(c)


@wcase("ppwids.wids_specs.urldir", "ppwids.wids_specs.urlmerge", "ppwids.wids.urldir")
def url_helpers(P, tmp):
    s = W(P, "wids_specs")
    return (
        [s.urldir(u) for u in ("http://h/a/b/d.json", "d.json", "/x/y.json")],
        [s.urlmerge("http://h/a/b", u) for u in ("c.tar", "/abs/c.tar", "gs://b/c.tar")],
    )


@wcase(
    "ppwids.wids_specs.resolve_dsdesc",
    "ppwids.wids_specs.load_dsdesc_and_resolve",
    "ppwids.wids_specs.rebase_shardlist",
    "ppwids.wids_specs.check_shards",
    "ppwids.wids_specs.set_all",
    "ppwids.wids_specs.load_remote_dsdesc_raw",
)
def specs(P, tmp):
    s = W(P, "wids_specs")
    desc, _ = descriptor(tmp, 1, 2)
    shardlist = [{"url": "a.tar", "nsamples": 1}, {"url": "b.tar", "nsamples": 2}]
    s.set_all(shardlist, "x", 1)
    with open(tmp / "ds.json") as stream:
        raw = s.load_remote_dsdesc_raw(stream)
    return (
        s.resolve_dsdesc({"wids_version": 1, "shardlist": [{"url": "a.tar", "nsamples": 1}]}, base="/d")["shardlist"],
        s.rebase_shardlist([{"url": "a.tar"}, {"url": "/abs.tar"}], "http://h/x"),
        attempt(s.check_shards, shardlist),
        shardlist,
        s.load_dsdesc_and_resolve(str(tmp / "ds.json"))["shardlist"][0]["nsamples"],
        raw["name"],
    )


@wcase(
    "ppwids.wids_dl.download_file",
    "ppwids.wids_dl.download_file_no_log",
    "ppwids.wids_dl.copy_file",
    "ppwids.wids_dl.default_cmds",
)
def downloads(P, tmp):
    d = W(P, "wids_dl")
    (tmp / "src").write_bytes(b"payload")
    d.download_file(str(tmp / "src"), str(tmp / "dst1"))
    d.download_file_no_log(str(tmp / "src"), str(tmp / "dst2"))
    d.copy_file(str(tmp / "src"), str(tmp / "dst3"))
    return [(tmp / f"dst{i}").read_bytes() for i in (1, 2, 3)], sorted(
        k for k in d.default_cmds if k in ("file", "gs", "http", "https", "s3")
    )


def elsewhere(name):
    # Lock files go outside tmp: ours keeps flock files (unlinking one races with a
    # process about to lock it), 0.2.86 removed them; a README difference.
    return os.path.join(tempfile.mkdtemp(prefix="oracle-lock-"), name)


@wcase(
    "ppwids.wids_dl.download_and_open",
    "ppwids.wids.download_and_open",
    "ppwids.wids_specs.download_and_open",
    "ppwids.wids_dl.ULockFile",
    "ppwids.wids_dl.recent_downloads",
)
def download_and_open(P, tmp):
    d = W(P, "wids_dl")
    (tmp / "src").write_bytes(b"payload")
    with d.ULockFile(elsewhere("lock")):
        pass
    with d.download_and_open(str(tmp / "src"), elsewhere("local")) as stream:
        return stream.read()


@wcase("ppwids.wids_dl.pipe_download")
def pipe_download(P, tmp):
    (tmp / "src").write_bytes(b"piped")
    os.environ["PPWDS_ALLOW_PIPE"] = "1"
    W(P, "wids_dl").pipe_download(f"pipe:cat {tmp / 'src'} > {{local}}", str(tmp / "out"))
    return (tmp / "out").read_bytes()


@wcase("ppwids.wids_cleanup.keep_most_recent_files", "ppwids.wids_cleanup.ExclusiveLock")
def cleanup(P, tmp):
    for i in range(4):
        (tmp / f"f{i}.tar").write_bytes(b"x" * 100)
        os.utime(tmp / f"f{i}.tar", (1000 + i, 1000 + i))
    W(P, "wids_cleanup").keep_most_recent_files(str(tmp / "*.tar"), maxsize=250)
    lock = W(P, "wids_cleanup").ExclusiveLock(elsewhere("lockfile"))
    held = lock.try_lock()
    lock.release_lock()
    return sorted(os.listdir(tmp)), held


@wcase(
    "ppwids.wids_index.format_with_suffix",
    "ppwids.wids_index.shorten_name",
    "ppwids.wids_index.urlfile",
    "ppwids.wids_index.urldirbase",
    "ppwids.wids_index.urldir",
)
def index_helpers(P, tmp):
    i = W(P, "wids_index")
    return (
        [i.format_with_suffix(n) for n in (5, 1500, 2_500_000)],
        i.shorten_name("x" * 80) == i.shorten_name("x" * 80),
        i.urlfile("http://h/a/b.json"),
        i.urldirbase("http://h/a/b.json"),
        i.urldir("http://h/a/b.json"),
    )


@wcase("ppwids.wids_index.AtomicJsonUpdate", "ppwids.wids_index.load_remote_dsdesc_raw")
def atomic_json(P, tmp):
    (tmp / "d.json").write_text('{"a": 1}')
    with W(P, "wids_index").AtomicJsonUpdate(str(tmp / "d.json")) as data:
        data["b"] = 2
    return json.loads((tmp / "d.json").read_text()), sorted(os.listdir(tmp))


@wcase(
    "ppwids.wids_index.main",
    "ppwids.wids_index.main_create",
    "ppwids.wids_index.main_info",
    "ppwids.wids_index.main_update",
    "ppwids.wids_index.main_sample",
    "ppwids.wids_index.print_long_info",
    # 0.2.86's widsindex needs wids_dl.SimpleDownloader, which it does not have.
    rule=OURS_ONLY,
    check=lambda r: r["value"] == [[["shard-00.tar", 3], ["shard-01.tar", 3]], 1],
)
def widsindex_cli(P, tmp):
    import contextlib
    import sys

    urls = shards(tmp, 2, 3)
    argv = sys.argv
    out = io.StringIO()
    try:
        sys.argv = ["widsindex", "create", "--output", str(tmp / "idx.json"), *urls]
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
            W(P, "wids_index").main()
    finally:
        sys.argv = argv
    desc = json.loads((tmp / "idx.json").read_text())
    return [(os.path.basename(s["url"]), s["nsamples"]) for s in desc["shardlist"]], desc.get("wids_version")
