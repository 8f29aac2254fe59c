"""The oracle's table of cases: one call of the public API on generated data per case.

``@case(*covers, rule=...)`` registers ``fn(P, tmp)``; ``covers`` names what it
exercises (``"filters.batched"``, ``"FluidInterface.batched"``, a top-level
``"WebDataset"``), which the coverage test checks against every public name of
both references. ``rule`` says which reference ours must agree with:

- ``"1.0.2"`` (the default): ours follows 1.0.2, which fixed most of 0.2.86's bugs
  (0.2.86 is still run and its agreement reported, see ``test_oracle.py``);
- ``"both"``: the two references agree and so must we;
- ``"0.2.86"``: ours keeps 0.2.86's public contract (user code depends on it), or
  the name only exists there (the Paddle names);
- ``"ours"``: neither reference can run it (the feature is ours, or broken or
  unimportable in both); ``check(value)`` states the expected behaviour instead.

``xfail`` marks a known difference owned by another change (strict: it must
flip when that change lands). Cases only use the standard library, numpy and
PIL to build inputs, so every package sees the same bytes.
"""

from __future__ import annotations

import io
import os
import tarfile
from dataclasses import dataclass, field

import numpy as np

BOTH, V102, V0286, OURS_ONLY = "both", "1.0.2", "0.2.86", "ours"


@dataclass
class Case:
    name: str
    fn: object
    covers: tuple
    rule: str
    xfail: str | None = None
    skip: set = field(default_factory=set)
    check: object = None


CASES: list[Case] = []


def case(*covers, rule=V102, xfail=None, name=None, check=None, table=None):
    """Register ``fn`` in ``table`` (default: ``CASES``)."""
    if (rule == OURS_ONLY) != (check is not None):
        raise ValueError("rule='ours' needs a check, and only it")

    def deco(fn):
        skip = {V0286} if rule == OURS_ONLY else set()
        (CASES if table is None else table).append(Case(name or fn.__name__, fn, covers, rule, xfail, skip, check))
        return fn

    return deco


# -- inputs ---------------------------------------------------------------------------------


def write_tar(path, members, fmt=tarfile.USTAR_FORMAT):
    with tarfile.open(path, "w", format=fmt) as tf:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 0
            tf.addfile(info, io.BytesIO(data))
    return str(path)


def shards(tmp, n=3, per=4, exts=("cls", "txt"), prefix="shard"):
    urls = []
    for s in range(n):
        members = []
        for i in range(per):
            k = f"s{s}_{i:03d}"
            for e in exts:
                members.append(
                    (f"{k}.{e}", {"cls": str(s * per + i), "txt": f"text {s}/{i}"}.get(e, f"{e}{i}").encode())
                )
        urls.append(write_tar(tmp / f"{prefix}-{s:02d}.tar", members))
    return urls


def png(h=3, w=4, mode="RGB"):
    from PIL import Image

    ch = {"RGB": 3, "RGBA": 4, "L": 1}[mode]
    a = (np.arange(h * w * ch) * 7 % 256).astype(np.uint8).reshape(h, w, ch)
    buf = io.BytesIO()
    Image.fromarray(a[:, :, 0] if ch == 1 else a, mode).save(buf, format="png")
    return buf.getvalue()


def image_shard(tmp):
    members = []
    for i in range(3):
        members += [(f"im{i}.png", png()), (f"im{i}.cls", str(i).encode()), (f"im{i}.json", b'{"a": %d}' % i)]
    return write_tar(tmp / "img.tar", members)


def dicts(n=6):
    return [{"__key__": f"k{i}", "png": i, "cls": i % 3, "txt": f"t{i}", "a.JPG": i * 10} for i in range(n)]


def keys(samples):
    return [s["__key__"] for s in samples]


def F(P):
    return P.m("filters")


def attempt(fn, *args, **kw):
    """``fn(*args, **kw)``, or the exception it raised (normalised to its class names; ours
    may raise a subclass of the reference's type): sub-calls compare one by one."""
    try:
        return fn(*args, **kw)
    except Exception as exn:
        return exn


# -- handlers -------------------------------------------------------------------------------


for _h in ["ignore_and_continue", "ignore_and_stop", "warn_and_continue", "warn_and_stop", "reraise_exception"]:

    def _handler_case(P, tmp, _h=_h):
        h = getattr(P.m("handlers"), _h)
        out = list(F(P).map(lambda x: 1 // x, handler=h)(iter([1, 0, 2])))
        return out, h(ValueError("x"))

    case(f"handlers.{_h}", _h, name=f"handler_{_h}", rule=BOTH)(_handler_case)


# -- filters --------------------------------------------------------------------------------


@case("filters.to_tuple", "FluidInterface.to_tuple")
def to_tuple(P, tmp):
    f = F(P)
    return (
        list(f.to_tuple("jpg;png", "cls")(iter(dicts()))),
        list(f.to_tuple("png txt")(iter(dicts()))),
        list(f.to_tuple("png", "nope", missing_is_error=False)(iter(dicts(2)))),
    )


@case("filters.to_tuple")
def to_tuple_missing(P, tmp):
    return list(F(P).to_tuple("jpg")(iter(dicts(2))))


@case("filters.to_tuple", "handlers.ignore_and_stop")
def to_tuple_missing_ignore_and_stop(P, tmp):
    src = dicts(3)
    del src[1]["png"]
    return list(F(P).to_tuple("png", handler=P.wds.ignore_and_stop)(iter(src)))


@case("filters.rename", "FluidInterface.rename")
def rename(P, tmp):
    f = F(P)
    return (
        list(f.rename(image="jpg;png", label="cls")(iter(dicts()))),
        list(f.rename(image="jpg;png", keep=False)(iter(dicts()))),
    )


@case("filters.rename")
def rename_missing(P, tmp):
    return list(F(P).rename(image="jpg")(iter(dicts(2))))


@case("filters.map_dict", "FluidInterface.map_dict")
def map_dict(P, tmp):
    return list(F(P).map_dict(cls=lambda x: x + 100)(iter(dicts())))


@case("filters.map_tuple", "FluidInterface.map_tuple")
def map_tuple(P, tmp):
    return list(F(P).map_tuple(lambda x: -x, None)(iter([(1, 2), (3, 4)])))


@case("filters.map", "FluidInterface.map")
def map_(P, tmp):
    return list(F(P).map(lambda s: {"v": s["png"]})(iter(dicts())))


@case("filters.select", "FluidInterface.select")
def select(P, tmp):
    return keys(F(P).select(lambda s: s["cls"] == 1)(iter(dicts())))


@case("filters.extract_keys", "FluidInterface.extract_keys")
def extract_keys(P, tmp):
    f = F(P)
    return (
        list(f.extract_keys("*.jpg", "*.txt;*png")(iter([{"a.jpg": 1, "png": 2}]))),
        list(f.extract_keys("*.gif", ignore_missing=True)(iter([{"a.jpg": 1}]))),
    )


@case("filters.extract_keys")
def extract_keys_missing(P, tmp):
    return list(F(P).extract_keys("*.gif")(iter([{"a.jpg": 1}])))


@case("filters.rename_keys", "FluidInterface.rename_keys")
def rename_keys(P, tmp):
    f = F(P)
    return (
        list(f.rename_keys(img="*.JPG", keep_unselected=True)(iter(dicts(2)))),
        list(f.rename_keys(("x", "*.JPG"), must_match=False)(iter(dicts(2)))),
    )


@case("filters.slice", "FluidInterface.slice")
def slice_(P, tmp):
    f = F(P)
    return list(f.slice(1, 6, 2)(iter(range(10)))), list(f.slice(3)(iter(range(10))))


@case("filters.batched", "FluidInterface.batched", "filters.default_collation_fn", "filters.combine_values")
def batched(P, tmp):
    f = F(P)
    tuples = [(np.full((2,), i, dtype=np.float32), i, f"s{i}", 0.5 * i) for i in range(5)]
    return (
        list(f.batched(2)(iter(tuples))),
        list(f.batched(2, partial=False)(iter(tuples))),
        list(f.batched(3, collation_fn=None)(iter(range(7)))),
    )


@case("filters.batched", "filters.default_collation_fn")
def batched_dicts(P, tmp):
    return list(F(P).batched(2)(iter([{"a": i, "b": np.zeros(2) + i, "c": f"x{i}"} for i in range(3)])))


@case("filters.default_collation_fn")
def collate_uncombined(P, tmp):
    batches = list(
        F(P).batched(2, collation_fn=lambda b: F(P).default_collation_fn(b, False, False))(iter([(1,), (2,), (3,)]))
    )
    return batches, [type(b).__name__ for b in batches]


@case("filters.combine_values", rule=V102)
def combine_values(P, tmp):
    cv = F(P).combine_values
    return cv([1, 2]), cv([np.zeros(2), np.ones(2)]), cv(["a", "b"]), cv([1.5, 2.5], combine_scalars=False)


@case("filters.tuple2dict", "filters.dict2tuple", rule=V102)
def tuple_dict(P, tmp):
    f = F(P)
    d = f.tuple2dict((1, "a", None))
    return d, f.dict2tuple(d)


@case("filters.unbatched", "FluidInterface.unbatched")
def unbatched(P, tmp):
    f = F(P)
    return list(f.unbatched()(iter([[np.arange(2), ["a", "b"]], [np.arange(1), ["c"]]])))


@case("FluidInterface.listed", "filters.unlisted", "FluidInterface.unlisted")
def listed(P, tmp):
    ds = P.wds.FluidWrapper(P.wds.MockDataset(5, 7)).listed(3)
    batches = list(ds)
    return batches, list(F(P).unlisted()(iter(batches))), list(ds.unlisted())


@case("filters.shuffle", "FluidInterface.shuffle", "filters.pick")
def shuffle(P, tmp):
    import random

    f = F(P)
    out = list(f.shuffle(10, 3, rng=random.Random(9))(iter(range(50))))
    # The order is the implementation's; the multiset and laziness are the contract.
    return sorted(out), len(out), sorted(list(f.shuffle(0)(iter(range(5))))), f.pick([7], random.Random(1))


@case("filters.detshuffle", "FluidInterface.shuffle")
def detshuffle(P, tmp):
    f = F(P)
    d = f.detshuffle(5, seed=3)
    a, b = list(d.run(iter(range(20)))), list(f.detshuffle(5, seed=3).run(iter(range(20))))
    return sorted(a), a == b


@case("filters.rsample", "FluidInterface.rsample")
def rsample(P, tmp):
    f = F(P)
    return list(f.rsample(1.0)(iter(range(5)))), list(f.rsample(0.0)(iter(range(5))))


@case("filters.getfirst")
def getfirst(P, tmp):
    g = F(P).getfirst
    return g({"b": 1}, "a;b"), g({"b": 1}, ["x", "b"]), g({"b": 1}, "z", default=5, missing_is_error=False)


@case("filters.getfirst", name="getfirst_missing")
def getfirst_missing(P, tmp):
    return F(P).getfirst({"b": 1}, "a")


@case("filters.parse_field_spec")
def parse_field_spec(P, tmp):
    return F(P).parse_field_spec("a;b c"), F(P).parse_field_spec(["x;y", "z"])


@case("filters.transform_with")
def transform_with(P, tmp):
    return F(P).transform_with([1, 2, 3], [lambda x: x * 2, None])


@case("filters.transform_with", name="transform_with_too_many")
def transform_with_too_many(P, tmp):
    return F(P).transform_with([1], [None, None])


@case("filters.identity", "utils.identity")
def identity(P, tmp):
    return F(P).identity(3), P.m("utils").identity("x")


@case("filters.compose", "filters.compose2", "filters.pipeline", "filters.pipelinefilter", "compat.pipelinefilter")
def compose(P, tmp):
    f = F(P)
    double = f.pipelinefilter(lambda src, k: (x * k for x in src))
    c = f.compose(double(2), double(3))
    c2 = f.compose2(lambda s: (x + 1 for x in s), lambda s: (x * 10 for x in s))
    return (
        list(c(iter([1, 2]))),
        list(c2(iter([1, 2]))),
        list(f.pipeline(iter([1, 2]), double(5))),
        list(f.pipeline([4])),
    )


@case("filters.FilterFunction", "filters.RestCurried")
def filter_function(P, tmp):
    f = F(P)
    ff = f.FilterFunction(lambda src, k: (x + k for x in src), 5)
    rc = f.RestCurried(lambda src, k: (x - k for x in src))(1)
    return list(ff(iter([1, 2]))), list(rc(iter([1, 2])))


@case("filters.associate")
def associate(P, tmp):
    f = F(P)
    src = [{"__key__": "a"}, {"__key__": "b"}]
    return (
        list(f.associate({"a": {"x": 1}})(iter([dict(s) for s in src]))),
        list(f.associate(lambda k: {"y": k * 2})(iter([dict(s) for s in src]))),
    )


@case("filters.info")
def info(P, tmp):
    buf = io.StringIO()
    out = list(F(P).info(n=2, stream=buf)(iter(dicts(3))))
    return keys(out), len(buf.getvalue()) > 0


@case("filters.log_keys", "FluidInterface.log_keys")
def log_keys(P, tmp):
    out = list(F(P).log_keys(str(tmp / "keys.log"))(iter(dicts(3))))
    return keys(out), (tmp / "keys.log").read_text().count("k")


@case(
    "filters.decode",
    "FluidInterface.decode",
    "filters.default_decoders",
    "filters.decode_text",
    "filters.decode_bin",
    "filters.find_decoder",
)
def filters_decode(P, tmp):
    f = F(P)
    s = {"__key__": "k", "txt": b"hi", "cls": b"3", "json": b'{"a": 1}', "bin": b"\x00"}
    out = list(f.decode()(iter([dict(s)])))
    fd = f.find_decoder(f.default_decoders, "x.txt")
    return out, f.decode_text(io.BytesIO(b"ab")), f.decode_bin(io.BytesIO(b"ab")), fd is not None


def allow_pickle():
    os.environ["PPWDS_ALLOW_PICKLE"] = "1"  # ours refuses by default (a README difference)


@case("filters.decode_pickle")
def decode_pickle(P, tmp):
    import pickle

    allow_pickle()
    return F(P).decode_pickle(io.BytesIO(pickle.dumps([1, 2])))


@case(
    "filters.decode_pickle",
    "autodecode.unpickle_loads",
    rule=OURS_ONLY,
    check=lambda r: r["exc"][0] == "UnsafeOperationError",
)
def pickle_refused_by_default(P, tmp):
    import pickle

    return F(P).decode_pickle(io.BytesIO(pickle.dumps([1, 2])))


@case("filters.xdecode", "FluidInterface.xdecode")
def xdecode(P, tmp):
    f = F(P)
    src = [{"__key__": "k", "a.txt": b"hi", "b.npy": np.arange(3).dumps()}]
    return list(f.xdecode(txt=lambda b: b.read().decode().upper())(iter([dict(s) for s in src])))


@case("FluidInterface", "compat.FluidInterface", "FluidInterface.mcached")
def fluid_interface(P, tmp):
    # User code mixes FluidInterface into its own pipelines.
    class Mine(P.wds.DataPipeline, P.wds.FluidInterface):
        pass

    ds = Mine(lambda: iter([{"__key__": "a", "x": 1}, {"__key__": "b", "x": 2}])).map_dict(x=lambda v: v * 5).mcached()
    return list(ds), list(ds), list(ds.to_tuple("x").batched(2))


@case("FluidInterface.lmdb_cached", "filters.LMDBCached")
def lmdb_cached(P, tmp):
    ds = P.wds.FluidWrapper(P.wds.MockDataset({"__key__": "a", "x": 1}, 2)).lmdb_cached(str(tmp / "db"))
    return list(ds)


@case("filters.Cached")
def cached(P, tmp):
    c = F(P).Cached()
    first = list(c(iter([{"__key__": "a", "x": 1}])))
    second = list(c(iter([{"__key__": "a", "x": 2}])))
    return first, second


# -- utils ----------------------------------------------------------------------------------


def U(P):
    return P.m("utils")


@case("utils.make_seed")
def make_seed(P, tmp):
    ms = U(P).make_seed
    return ms(1, 2) == ms(1, 2), ms(1, 2) == ms(2, 1), 0 <= ms(1, "a") < 2**31 or ms(1, "a") >= 0


@case("utils.is_iterable", "shardlists.is_iterable")
def is_iterable(P, tmp):
    f = U(P).is_iterable
    return [f(x) for x in ([1], "ab", 3, iter([]), {"a": 1}, b"x")]


@case("utils.guess_batchsize")
def guess_batchsize(P, tmp):
    return U(P).guess_batchsize([np.zeros((3, 2)), [1, 2, 3]])


@case("utils.compute_sample_weights")
def compute_sample_weights(P, tmp):
    return U(P).compute_sample_weights([(10, 1.0), (20, 2.0)])


@case("utils.lookup_sym")
def lookup_sym(P, tmp):
    return U(P).lookup_sym("dumps", ["json", "pickle"]).__name__, U(P).lookup_sym("nope", ["json"])


@case("utils.safe_eval")
def safe_eval(P, tmp):
    return U(P).safe_eval("1 + 2"), U(P).safe_eval("[1, 2]")


@case("utils.safe_eval", name="safe_eval_rejects_calls")
def safe_eval_rejects(P, tmp):
    return U(P).safe_eval("__import__('os').getpid()")


@case("utils.fnmatch_with_braces", "utils.glob_with_braces")
def braces_glob(P, tmp):
    for n in ("a1.tar", "a2.tar", "b1.tar"):
        (tmp / n).write_bytes(b"")
    u = U(P)
    return (
        u.fnmatch_with_braces("a1.tar", "{a,b}1.tar"),
        u.fnmatch_with_braces("c1.tar", "{a,b}1.tar"),
        sorted(os.path.basename(p) for p in u.glob_with_braces(str(tmp / "{a,b}1.tar"))),
    )


@case("utils.repeatedly", "utils.repeatedly0")
def utils_repeatedly(P, tmp):
    u = U(P)
    return (
        list(u.repeatedly([1, 2], nepochs=2)),
        list(u.repeatedly([1, 2, 3], nbatches=4)),
        list(u.repeatedly0([1, 2], nepochs=2)),
    )


@case("utils.PipelineStage", "filters.PipelineStage", "extradatasets.PipelineStage", "pipeline.PipelineStage")
def pipeline_stage(P, tmp):
    class Double(U(P).PipelineStage):
        def run(self, src):
            return (x * 2 for x in src)

    return list(P.wds.DataPipeline(lambda: iter([1, 2]), Double()))


@case("utils.obsolete", "utils.deprecated", "utils.ObsoleteException", "cache.obsolete", rule=V102)
def obsolete(P, tmp):
    u = U(P)

    @u.deprecated
    def old():
        return 1

    @u.obsolete
    def older():
        return 2

    try:
        older()
        raised = None
    except Exception as exn:
        raised = type(exn).__name__
    return old(), raised, issubclass(u.ObsoleteException, Exception)


@case("utils.paddle_worker_info", "utils.paddle_worker_seed", rule=V0286)
def paddle_worker_info(P, tmp):
    return U(P).paddle_worker_info(), isinstance(U(P).paddle_worker_seed(), int)


@case("utils.pytorch_worker_info", "utils.pytorch_worker_seed", rule=V102)
def pytorch_worker_info(P, tmp):
    return U(P).pytorch_worker_info(), isinstance(U(P).pytorch_worker_seed(), int)


@case("utils.paddle_worker_info", rule=V0286, name="worker_info_from_env")
def worker_info_env(P, tmp):
    os.environ.update(RANK="1", WORLD_SIZE="4", WORKER="2", NUM_WORKERS="3")
    return U(P).paddle_worker_info()


@case("utils.enforce_security", "gopen.gopen")
def enforce_security(P, tmp):
    # Set explicitly, the switch behaves as 1.0.2's (ours leaves it unset by default: safer defaults).
    (tmp / "f.bin").write_bytes(b"data")
    u, g = U(P), G(P)
    saved = u.enforce_security
    try:
        out = []
        for flag in (True, False):
            u.enforce_security = flag
            out.append(attempt(lambda: g.gopen(str(tmp / "f.bin")).read()))
            out.append(attempt(lambda: g.gopen(f"pipe:cat {tmp / 'f.bin'}").read()))
            out.append(attempt(lambda: g.gopen("file:" + str(tmp / "f.bin")).read()))
        return out
    finally:
        u.enforce_security = saved


# -- shard lists and splitters ---------------------------------------------------------------


def S(P):
    return P.m("shardlists")


@case("shardlists.SimpleShardList", "SimpleShardList")
def simple_shard_list(P, tmp):
    sl = S(P).SimpleShardList("a-{000..003}.tar")
    return list(sl), len(sl), list(S(P).SimpleShardList(["x", "y"]))


@case("shardlists.SimpleShardList", "shardlists.expand_urls")
def brace_ranges(P, tmp):
    return list(S(P).SimpleShardList("s-{0..10}.tar")), S(P).expand_urls("a{1..3}::b{8..11}")


@case("shardlists.SimpleShardList")
def simple_shard_list_seed(P, tmp):
    return sorted(S(P).SimpleShardList([f"u{i}" for i in range(10)], seed=3))


@case("shardlists.ResampledShards", "shardlists.ResampledShardList", "ResampledShards")
def resampled_shards(P, tmp):
    rs = S(P).ResampledShards([f"u{i}" for i in range(5)], nshards=7, seed=1, deterministic=True)
    out = [d["url"] for d in rs]
    return len(out), set(out) <= {f"u{i}" for i in range(5)}, S(P).ResampledShardList is not None


@case("shardlists.ResampledShards", name="resampled_shards_empty")
def resampled_shards_empty(P, tmp):
    return S(P).ResampledShards([])


@case("shardlists.resampled", "shardlists.resampled_")
def resampled(P, tmp):
    out = list(S(P).resampled(n=5)(iter([{"url": "a"}, {"url": "b"}])))
    out2 = list(S(P).resampled_(iter([{"url": "a"}]), n=2))
    return len(out), {d["url"] for d in out} <= {"a", "b"}, out2


@case("shardlists.split_by_node", "shardlists.split_by_worker", "shardlists.single_node_only")
def splitters(P, tmp):
    s = S(P)
    src = [{"url": f"u{i}"} for i in range(6)]
    return list(s.split_by_node(iter(src))), list(s.split_by_worker(iter(src))), list(s.single_node_only(iter(src)))


@case("shardlists.split_by_node", "shardlists.split_by_worker", name="splitters_rank_env")
def splitters_env(P, tmp):
    os.environ.update(RANK="1", WORLD_SIZE="2")
    s = S(P)
    return list(s.split_by_node(iter(range(6))))


@case("shardlists.single_node_only", name="single_node_only_multi")
def single_node_only_multi(P, tmp):
    os.environ.update(RANK="1", WORLD_SIZE="2")
    return list(S(P).single_node_only(iter(range(3))))


@case("shardlists.non_empty")
def non_empty(P, tmp):
    return list(S(P).non_empty(iter([1, 2])))


@case("shardlists.non_empty", name="non_empty_empty")
def non_empty_empty(P, tmp):
    return list(S(P).non_empty(iter([])))


@case("shardlists.expand_urls", "shardlists.expand_source")
def expand(P, tmp):
    s = S(P)
    return s.expand_urls("a{1,2}.tar::b.tar"), s.expand_source("x{0..2}.tar"), s.expand_source(["p", "q"])


@case("shardlists.envlookup", "shardlists.envsubst", "shardlists.expand")
def envsubst(P, tmp):
    os.environ["WDS_ORACLE_X"] = "val"
    s = S(P)
    return s.envsubst("a-${ORACLE_X}-b"), s.expand("p/${ORACLE_X}")


@case("shardlists.envsubst", name="envsubst_missing")
def envsubst_missing(P, tmp):
    return S(P).envsubst("a-${ORACLE_UNSET}-b")


@case("shardlists.without_last_extension", "shardlists.get_pid_from_filename", "shardlists.check_pid_is_running")
def shardlist_helpers(P, tmp):
    s = S(P)
    return (
        s.without_last_extension("a/b.tar._1234_"),
        s.get_pid_from_filename("a/b.tar._1234_"),
        s.check_pid_is_running(os.getpid()),
        s.check_pid_is_running(2**22 + 7),
    )


@case("shardlists.shardspec")
def shardspec(P, tmp):
    urls = shards(tmp, 2, 1)
    return [d["url"] for d in S(P).shardspec(",".join(urls) if False else urls[0])]


@case("shardlists.MultiShardSample", "shardlists.MSSource", rule=V0286)
def multi_shard_sample(P, tmp):
    spec = {"datasets": [{"name": "a", "shards": "u{0..3}.tar", "choose": 2}, {"shards": ["v.tar"], "resample": 3}]}
    out = [d["url"] for d in S(P).MultiShardSample(spec)]
    chosen = set(out) - {"v.tar"}  # which two is random
    return len(out), len(chosen), chosen <= {f"u{i}.tar" for i in range(4)}, out.count("v.tar")


@case("shardlists.DirectoryShardList")
def directory_shard_list(P, tmp):
    d = tmp / "dir"
    d.mkdir()
    for i in range(3):
        (d / f"s{i}.tar").write_bytes(b"x")
    ds = S(P).DirectoryShardList(str(d) + "/", poll=0.01, pattern="*.tar", mode="unlink", timeout=0.2)
    return sorted(os.path.basename(x["url"]).split(".")[0] for x in ds)


# -- datasets and pipelines ------------------------------------------------------------------


def read(ds):
    return [{k: v for k, v in s.items() if k != "__local_path__"} for s in ds]


@case("WebDataset", "compat.WebDataset", "shardlists.IterableDataset", "paddle.IterableDataset")
def webdataset(P, tmp):
    urls = shards(tmp)
    return read(P.wds.WebDataset(urls, shardshuffle=False))


@case("WebDataset")
def webdataset_brace_pattern(P, tmp):
    shards(tmp, 3, 2)
    return read(P.wds.WebDataset(str(tmp / "shard-{00..02}.tar"), shardshuffle=False))


@case("WebDataset", "FluidInterface.decode", "FluidInterface.to_tuple", "FluidInterface.batched")
def webdataset_fluent(P, tmp):
    urls = shards(tmp)
    ds = P.wds.WebDataset(urls, shardshuffle=False).decode().to_tuple("cls", "txt").batched(5)
    return list(ds)


@case("WebDataset", "FluidInterface.shuffle")
def webdataset_shuffled(P, tmp):
    urls = shards(tmp)
    return sorted(keys(P.wds.WebDataset(urls, shardshuffle=10, seed=5).shuffle(20)))


@case("WebDataset", "WebDataset.update_cache_info", "WebDataset.set_epoch")
def webdataset_resampled(P, tmp):
    urls = shards(tmp)
    ds = P.wds.WebDataset(urls, resampled=True, shardshuffle=False).with_epoch(10)
    return len(keys(ds)), len(set(keys(ds))) <= 12


@case("WebDataset", "WebDataset.create_url_iterator", rule=V0286)
def webdataset_yaml_spec(P, tmp):
    urls = shards(tmp, 2, 2)
    (tmp / "spec.yaml").write_text("datasets:\n  - shards:\n" + "".join(f"      - {u}\n" for u in urls))
    return sorted(keys(P.wds.WebDataset(str(tmp / "spec.yaml"), shardshuffle=False)))


@case("WebDataset")
def webdataset_empty_shard(P, tmp):
    url = write_tar(tmp / "e.tar", [])
    return list(P.wds.WebDataset(url, shardshuffle=False))


@case("WebDataset")
def webdataset_missing_file(P, tmp):
    return list(P.wds.WebDataset(str(tmp / "nope.tar"), shardshuffle=False))


@case("WebDataset", "handlers.warn_and_continue")
def webdataset_missing_file_handled(P, tmp):
    urls = shards(tmp, 1, 2) + [str(tmp / "nope.tar")]
    return keys(P.wds.WebDataset(urls, shardshuffle=False, handler=P.wds.warn_and_continue, empty_check=False))


@case("WebDataset")
def webdataset_select_rename_files(P, tmp):
    urls = shards(tmp, 1, 3)
    ds = P.wds.WebDataset(
        urls,
        shardshuffle=False,
        select_files=lambda n: n.endswith(".cls"),
        rename_files=lambda n: n.replace("cls", "lab"),
    )
    return read(ds)


@case("WebDataset")
def webdataset_len(P, tmp):
    return len(P.wds.WebDataset(shards(tmp, 1, 1), shardshuffle=False))


@case("WebDataset", "DataPipeline.with_length")
def webdataset_with_length(P, tmp):
    ds = P.wds.WebDataset(shards(tmp, 1, 2), shardshuffle=False).with_length(9)
    return len(ds), len(list(ds))


@case("WebDataset")
def webdataset_list_iterates(P, tmp):
    # list() asks len() for a size hint: it must not be Paddle's RuntimeError.
    return len(list(P.wds.WebDataset(shards(tmp, 1, 2), shardshuffle=False)))


@case("DataPipeline", "pipeline.DataPipeline", "compat.DataPipeline", "tarfile_to_samples", "SimpleShardList")
def data_pipeline(P, tmp):
    urls = shards(tmp)
    w = P.wds
    ds = w.DataPipeline(w.SimpleShardList(urls), w.split_by_worker, w.tarfile_to_samples(), w.to_tuple("cls", "txt"))
    return list(ds)


@case("DataPipeline", "detshuffle", "split_by_node", "split_by_worker", "shardlists.SimpleShardList")
def data_pipeline_detshuffle(P, tmp):
    urls = shards(tmp, 6, 1)
    w = P.wds
    ds = w.DataPipeline(w.SimpleShardList(urls), w.detshuffle(100, seed=1), w.split_by_node, w.split_by_worker)
    return sorted(os.path.basename(d["url"]) for d in ds)


@case(
    "DataPipeline.compose",
    "DataPipeline.append",
    "DataPipeline.stage",
    "DataPipeline.invoke",
    "DataPipeline.iterator",
    "DataPipeline.iterator1",
    "DataPipeline.close",
)
def data_pipeline_methods(P, tmp):
    w = P.wds
    p = w.DataPipeline(lambda: iter([1, 2, 3]))
    p.append(lambda src: (x * 2 for x in src))
    q = p.compose(lambda src: (x + 1 for x in src))
    out = list(p), list(q), list(p.iterator1()), list(p.iterator()), p.stage(0), list(p.invoke(p.stage(1), iter([5])))
    q.close()
    return out


@case("DataPipeline.repeat", "DataPipeline.with_epoch")
def data_pipeline_repeat(P, tmp):
    w = P.wds

    def src():
        return iter([1, 2, 3])

    return (
        list(w.DataPipeline(src).repeat(2)),
        list(w.DataPipeline(src).with_epoch(5)),
        list(w.DataPipeline(src).repeat(nbatches=4)),
    )


@case("DataPipeline")
def data_pipeline_len(P, tmp):
    return len(P.wds.DataPipeline(lambda: iter([1, 2])))


@case("pipeline.add_length_method")
def add_length_method(P, tmp):
    p = P.wds.DataPipeline(lambda: iter([1, 2]))
    p.size = 4
    return len(P.m("pipeline").add_length_method(p)), list(p)


@case("FluidWrapper", "compat.FluidWrapper")
def fluid_wrapper(P, tmp):
    return list(P.wds.FluidWrapper([{"a": 1}, {"a": 2}]).map_dict(a=lambda x: x * 3).to_tuple("a"))


@case("WebLoader", "compat.WebLoader", "paddle.DataLoader", "pipeline.DataLoader", "compat.DataLoader", rule=V0286)
def web_loader(P, tmp):
    ds = P.wds.WebDataset(shards(tmp, 2, 2), shardshuffle=False).map(lambda s: np.array([int(s["cls"])]))
    return sorted(int(np.asarray(b).ravel()[0]) for b in P.wds.WebLoader(ds, batch_size=None, num_workers=0))


@case("compat.check_empty", rule=V102)
def check_empty(P, tmp):
    return list(P.m("compat").check_empty(iter([1]))), list(P.m("compat").check_empty(iter([])))


@case("MockDataset", "extradatasets.MockDataset")
def mock_dataset(P, tmp):
    ds = P.wds.MockDataset({"a": 1}, 3)
    return list(ds)


@case("MockDataset", name="mock_dataset_len")
def mock_dataset_len(P, tmp):
    return len(P.wds.MockDataset({"a": 1}, 3))


@case("with_length", "extradatasets.with_length")
def with_length(P, tmp):
    ds = P.wds.with_length([1, 2, 3], 7)
    return len(ds)


@case(
    "with_epoch",
    "extradatasets.with_epoch",
    "repeatedly",
    "extradatasets.repeatedly",
    rule=OURS_ONLY,
    check=lambda r: r["value"] == [[1, 2, 3, 1, 2], [1, 2, 1, 2]],
)
def with_epoch(P, tmp):
    # Neither reference's with_epoch/repeatedly has __iter__ (and 1.0.2's loses nepochs).
    return list(P.wds.with_epoch([1, 2, 3], 5)), list(P.wds.repeatedly([1, 2], nepochs=2))


@case("ResampledShards")
def resampled_len(P, tmp):
    return len(P.wds.ResampledShards(["a", "b"]))


@case("RandomMix", "mix.RandomMix", "mix.random_samples", "mix.IterableDataset", "extradatasets.IterableDataset")
def random_mix(P, tmp):
    m = P.m("mix")
    out = list(m.RandomMix([[1, 2, 3], [10, 20]], [1.0, 1.0], longest=True))
    return sorted(out), sorted(m.random_samples([iter([1, 2]), iter([5])], [1, 1], longest=True))


@case("RoundRobin", "mix.RoundRobin", "mix.round_robin_shortest", "mix.round_robin_longest")
def round_robin(P, tmp):
    m = P.m("mix")
    return (
        list(m.RoundRobin([[1, 2, 3], [10, 20]])),
        list(m.RoundRobin([[1, 2, 3], [10, 20]], longest=True)),
        list(m.round_robin_shortest(iter([1, 2]), iter([3]))),
        list(m.round_robin_longest(iter([1, 2]), iter([3]))),
    )


# -- tar iterators --------------------------------------------------------------------------


def T(P):
    return P.m("tariterators")


@case("tariterators.tarfile_samples", "tariterators.tarfile_to_samples", "tariterators.url_opener")
def tarfile_samples(P, tmp):
    urls = shards(tmp, 2, 2)
    src = [{"url": u} for u in urls]
    return read(T(P).tarfile_samples(iter(src))), read(T(P).tarfile_to_samples()(iter([dict(d) for d in src])))


@case("tariterators.tar_file_iterator", "tariterators.meta_prefix", "tariterators.meta_suffix")
def tar_file_iterator(P, tmp):
    url = write_tar(tmp / "m.tar", [("a.txt", b"1"), ("__meta__", b"m"), ("b.cls", b"2")])
    with open(url, "rb") as stream:
        out = list(T(P).tar_file_iterator(stream))
    return out, T(P).meta_prefix, T(P).meta_suffix


@case(
    "tariterators.tar_file_expander",
    "compat.tar_file_expander",
    "cache.tar_file_expander",
    rule=V0286,
)
def tar_file_expander(P, tmp):
    urls = shards(tmp, 2, 1)
    src = T(P).url_opener(iter([{"url": u} for u in urls]))
    return [{k: v for k, v in d.items() if k != "__local_path__"} for d in T(P).tar_file_expander(src)]


@case("tariterators.group_by_keys", "compat.group_by_keys", "cache.group_by_keys", "tariterators.valid_sample")
def group_by_keys(P, tmp):
    files = [
        {"fname": "a.txt", "data": b"1", "__url__": "u"},
        {"fname": "a.cls", "data": b"2", "__url__": "u"},
        {"fname": "b.txt", "data": b"3", "__url__": "u"},
    ]
    out = list(T(P).group_by_keys(iter(files)))
    return out, [T(P).valid_sample(s) for s in out], T(P).valid_sample({}), T(P).valid_sample(None)


@case("tariterators.base_plus_ext")
def base_plus_ext(P, tmp):
    f = T(P).base_plus_ext
    return [f(x) for x in ("a/b.c.d", "abc", "x.y", "d.1/e")]


@case("tariterators.shardlist")
def shardlist(P, tmp):
    return list(T(P).shardlist("a{0..2}"))


@case("tariterators.trace", "tariterators.reraise_exception")
def trace(P, tmp):
    return T(P).trace, T(P).reraise_exception is P.m("handlers").reraise_exception


# -- decoding -------------------------------------------------------------------------------


def A(P):
    return P.m("autodecode")


@case(
    "autodecode.Decoder",
    "autodecode.default_pre_handlers",
    "autodecode.default_post_handlers",
    "autodecode.basichandlers",
)
def decoder_basic(P, tmp):
    d = A(P).Decoder([])
    s = {"__key__": "k", "txt": b"hi", "cls": b"3", "json": b'{"a": [1]}', "index": b"7", "other": b"\x01"}
    return d(dict(s)), A(P).basichandlers(".txt", b"x"), A(P).basichandlers("x.cls", b"5")


@case(
    "autodecode.Decoder",
    "autodecode.imagehandler",
    "autodecode.ImageHandler",
    "autodecode.imagespecs",
    "autodecode.IMAGE_EXTENSIONS",
)
def image_specs(P, tmp):
    ad = A(P)
    specs = ["l8", "rgb8", "rgba8", "l", "rgb", "rgba", "pil", "pilrgb", "pill", "pilrgba"]
    return {s: ad.imagehandler(s)("x.png", png()) for s in specs}, sorted(ad.IMAGE_EXTENSIONS)


def _paddle_shapes(r):
    shapes = {k: v["shape"] for k, v in r["value"]["dict"].items()}
    return all(
        s == ([3, 4] if k in ("paddlel", "paddlel8") else [4 if "rgba" in k else 3, 3, 4]) for k, s in shapes.items()
    )


@case("autodecode.imagehandler", rule=OURS_ONLY, name="paddle_image_specs", check=_paddle_shapes)
def paddle_image_specs(P, tmp):
    ad = A(P)
    specs = [s for s in ad.imagespecs if s.startswith("paddle")]
    return {s: ad.imagehandler(s)("x.png", png()) for s in specs}


@case("autodecode.imagehandler", rule=V102, name="paddlel8_like_torchl8")
def paddlel8_shape(P, tmp):
    # 1.0.2's torchl8 is [H, W]; ours gives the same shape as a Paddle tensor.
    spec = "paddlel8" if P.ours else "l8"
    return list(A(P).imagehandler(spec)("x.png", png()).shape)


@case("autodecode.imagehandler", name="imagehandler_unknown")
def imagehandler_unknown(P, tmp):
    return A(P).imagehandler("nope")


@case("autodecode.handle_extension", "autodecode.call_extension_handler")
def handle_extension(P, tmp):
    h = A(P).handle_extension("a.b", lambda d: d.upper())
    return h("x.a.b", b"q"), h("x.b", b"q"), A(P).call_extension_handler("x.zz", b"q", "zz", lambda d: 1)


@case("autodecode.gzfilter", "autodecode.Continue")
def gzfilter(P, tmp):
    import gzip

    out = A(P).gzfilter("x.txt.gz", gzip.compress(b"hi", mtime=0))
    d = A(P).Decoder([])({"__key__": "k", "txt.gz": gzip.compress(b"hi", mtime=0)})
    return isinstance(out, A(P).Continue), d


@case(
    "autodecode.decoders",
    "autodecode.npy_loads",
    "autodecode.npz_loads",
    "autodecode.tenbin_loads",
    "autodecode.cbor_loads",
    "autodecode.msgpack_loads",
)
def data_loaders(P, tmp):
    ad = A(P)
    buf = io.BytesIO()
    np.save(buf, np.arange(3))
    zbuf = io.BytesIO()
    np.savez(zbuf, a=np.arange(2))
    # ours also decodes .pdparams (Paddle); the upstream extensions must all be there.
    out = {"npy": ad.npy_loads(buf.getvalue()), "decoders": sorted(set(ad.decoders) - {"pdparams"})}
    if hasattr(ad, "npz_loads"):
        out["npz"] = dict(ad.npz_loads(zbuf.getvalue()))
    return out


@case("autodecode.unpickle_loads", "autodecode.DecodingError", "DecodingError", rule=V102)
def unpickle(P, tmp):
    import pickle

    allow_pickle()
    return A(P).Decoder([])({"__key__": "k", "pyd": pickle.dumps(1)})


@case("autodecode.default_decoder", rule=V102)
def default_decoder(P, tmp):
    return A(P).default_decoder({"__key__": "k", "txt": b"hi"}) if hasattr(A(P), "default_decoder") else None


@case(
    "autodecode.torch_loads",
    "autodecode.torch_audio",
    "autodecode.torch_video",
    "autodecode.pytorch_weights_only",
    rule=V102,
)
def torch_decoders(P, tmp):
    allow_pickle()
    return A(P).torch_loads(b"not a torch file")


@case("autodecode.paddle_loads", "autodecode.paddle_autdio", rule=V0286)
def paddle_loads(P, tmp):
    allow_pickle()
    return A(P).paddle_loads(b"not a paddle file")


@case("Decoder", "decode", "autodecode.Decoder")
def decoder_errors(P, tmp):
    d = P.wds.Decoder([lambda k, v: 1 // 0 if k == "cls" else None])
    return d({"__key__": "k", "cls": b"1"})


@case("FluidInterface.decode", "handlers.warn_and_continue")
def decode_handler(P, tmp):
    url = write_tar(tmp / "bad.tar", [("a.png", b"not an image"), ("a.cls", b"1"), ("b.png", png()), ("b.cls", b"2")])
    ds = P.wds.WebDataset(url, shardshuffle=False).decode("rgb8", handler=P.wds.warn_and_continue)
    return read(ds)


@case("WebDataset", "FluidInterface.decode", "FluidInterface.to_tuple")
def decode_images(P, tmp):
    ds = P.wds.WebDataset(image_shard(tmp), shardshuffle=False).decode("rgb").to_tuple("png", "cls", "json")
    return list(ds)


# -- writers --------------------------------------------------------------------------------


def W(P):
    return P.m("writer")


def members(path):
    with tarfile.open(path) as tf:
        return [(m.name, m.mode, m.uname, tf.extractfile(m).read()) for m in tf if m.isfile()]


@case(
    "TarWriter",
    "writer.TarWriter",
    "writer.default_handlers",
    "writer.make_handlers",
    "writer.encode_based_on_extension",
    "writer.encode_based_on_extension1",
)
def tar_writer(P, tmp):
    with P.wds.TarWriter(str(tmp / "o.tar")) as sink:
        sink.write({"__key__": "a", "txt": "hi", "cls": 3, "json": {"x": [1]}, "npy": np.arange(3, dtype=np.int16)})
        sink.write({"__key__": "b", "bin": b"\x00\x01", "txt.gz": "z" * 1001})
    import gzip

    def value(n, d):
        if n.endswith(".npy"):
            return np.load(io.BytesIO(d))
        if n.endswith(".gz"):  # upstream stamps the current time into the gzip header
            return len(d), gzip.decompress(d)
        return d

    return [(n, mode, u, value(n, d)) for n, mode, u, d in members(tmp / "o.tar")]


@case("TarWriter")
def tar_writer_bad_key(P, tmp):
    with P.wds.TarWriter(str(tmp / "o.tar")) as sink:
        sink.write({"txt": "no key"})


@case("TarWriter")
def tar_writer_no_handler(P, tmp):
    with P.wds.TarWriter(str(tmp / "o.tar")) as sink:
        sink.write({"__key__": "a", "weird": object()})


@case("TarWriter", "writer.imageencoder")
def tar_writer_images(P, tmp):
    img = (np.arange(48) % 256).astype(np.uint8).reshape(4, 4, 3)
    with P.wds.TarWriter(str(tmp / "o.tar")) as sink:
        sink.write({"__key__": "a", "png": img, "jpg": img})
    from PIL import Image

    return [(n, np.asarray(Image.open(io.BytesIO(d))).shape) for n, _, _, d in members(tmp / "o.tar")]


@case("ShardWriter", "writer.ShardWriter")
def shard_writer(P, tmp):
    with P.wds.ShardWriter(str(tmp / "out-%03d.tar"), maxcount=2) as sink:
        for i in range(5):
            sink.write({"__key__": f"k{i}", "txt": f"t{i}"})
    return [(f, [m[0] for m in members(tmp / f)]) for f in sorted(os.listdir(tmp))]


@case("ShardWriter", rule=V0286)
def shard_writer_verbose(P, tmp):
    import contextlib

    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        with P.wds.ShardWriter(str(tmp / "v-%03d.tar"), maxcount=1, verbose=1) as sink:
            sink.write({"__key__": "a", "txt": "x"})
    return "# writing" in out.getvalue()


@case("writer.make_encoder", "writer.add_handlers", "writer.bytestr", "writer.gopen")
def writer_helpers(P, tmp):
    w = W(P)
    d = {}
    w.add_handlers(d, "a b", lambda x: b"!")
    enc = w.make_encoder(True)
    return sorted(d), w.bytestr("x"), w.bytestr(b"y"), enc({"__key__": "k", "txt": "t"})


@case("writer.numpy_dumps", "writer.numpy_npz_dumps", "writer.tenbin_dumps", "writer.cbor_dumps", "writer.mp_dumps")
def writer_dumps(P, tmp):
    w = W(P)
    a = np.arange(4, dtype=np.float32)
    npz = np.load(io.BytesIO(w.numpy_npz_dumps({"a": a})))
    return np.load(io.BytesIO(w.numpy_dumps(a))), dict(npz), P.m("tenbin").decode_buffer(w.tenbin_dumps([a]))


@case("writer.torch_dumps", rule=V102)
def torch_dumps(P, tmp):
    return W(P).torch_dumps(np.arange(2))


@case("writer.paddle_dumps", rule=V0286)
def paddle_dumps(P, tmp):
    import paddle

    return len(W(P).paddle_dumps(paddle.to_tensor([1, 2]))) > 0


# -- tenbin ---------------------------------------------------------------------------------


@case(
    "tenbin.encode_buffer",
    "tenbin.decode_buffer",
    "tenbin.encode_list",
    "tenbin.decode_list",
    "tenbin.encode_header",
    "tenbin.decode_header",
    "tenbin.check_acceptable_input_type",
    "tenbin.check_infos",
    "tenbin.bytedata",
    "tenbin.bytelen",
)
def tenbin_buffers(P, tmp):
    tb = P.m("tenbin")
    arrs = [np.arange(6, dtype=np.int16).reshape(2, 3), np.ones(3, dtype=np.float64)]
    buf = tb.encode_buffer(arrs, infos=["a", "b"])
    return (
        tb.decode_buffer(buf, infos=True),
        attempt(tb.decode_buffer, bytes(buf)),
        tb.decode_list(tb.encode_list(arrs)),
        [int(n) for n in tb.decode_header(tb.encode_header(arrs[0], "x"))[0]],
        tb.bytelen(arrs[0]),
        bytes(tb.bytedata(arrs[0])),
        attempt(tb.check_acceptable_input_type, arrs, False),
        attempt(tb.check_infos, arrs, ["a", "b"]),
    )


@case(
    "tenbin.encode_chunks",
    "tenbin.decode_chunks",
    # Both references fail on any input here (bytes lack .nbytes, arrays cannot be assigned).
    rule=OURS_ONLY,
    check=lambda r: r["value"] == [{"bytes": "6162"}, {"bytes": "63"}],
)
def tenbin_chunks(P, tmp):
    tb = P.m("tenbin")
    return tb.decode_chunks(tb.encode_chunks([b"ab", b"c"]))


@case("tenbin.encode_buffer", name="tenbin_rejects_objects")
def tenbin_rejects(P, tmp):
    return P.m("tenbin").encode_buffer([np.array(["a"], dtype=object)])


@case("tenbin.save", "tenbin.load", "tenbin.write", "tenbin.read", "tenbin.write_chunk", "tenbin.read_chunk")
def tenbin_files(P, tmp):
    tb = P.m("tenbin")
    arrs = [np.arange(3, dtype=np.float32)]
    tb.save(str(tmp / "a.ten"), *arrs)
    with open(tmp / "b.ten", "wb") as s:
        tb.write(s, arrs, infos=["i"])
        tb.write_chunk(s, b"tail")
    with open(tmp / "b.ten", "rb") as s:
        back = tb.read(s, n=1, infos=True)
        chunk = tb.read_chunk(s)
    return tb.load(str(tmp / "a.ten")), back, chunk


@case(
    "tenbin.roundup",
    "tenbin.str64",
    "tenbin.unstr64",
    "tenbin.long_to_short",
    "tenbin.short_to_long",
    "tenbin.magic",
    "tenbin.magic_str",
)
def tenbin_helpers(P, tmp):
    tb = P.m("tenbin")
    return (
        tb.roundup(65),
        tb.roundup(3, 8),
        tb.unstr64(tb.str64("abc")),
        tb.long_to_short["float32"],
        tb.short_to_long["i2"],
        tb.magic_str,
    )


# -- gopen ----------------------------------------------------------------------------------


def G(P):
    return P.m("gopen")


@case("gopen", "gopen.gopen", "gopen.gopen_file", "gopen.reader")
def gopen_file(P, tmp):
    (tmp / "f.bin").write_bytes(b"hello")
    with G(P).gopen(str(tmp / "f.bin")) as s:
        a = s.read()
    with G(P).gopen("file:" + str(tmp / "f.bin")) as s:
        b = s.read()
    with G(P).gopen(str(tmp / "w.bin"), "wb") as s:
        s.write(b"w")
    return a, b, (tmp / "w.bin").read_bytes(), G(P).reader(str(tmp / "f.bin")).read()


@case("gopen.gopen")
def gopen_missing(P, tmp):
    return G(P).gopen(str(tmp / "nope"))


@case("gopen.gopen", "gopen.gopen_error")
def gopen_unknown_scheme(P, tmp):
    return G(P).gopen("weird://x/y")


@case("gopen.gopen_pipe", "gopen.Pipe", "gopen.PIPE", xfail=None)
def gopen_pipe(P, tmp):
    (tmp / "f.bin").write_bytes(b"data")
    os.environ["PPWDS_ALLOW_PIPE"] = "1"
    with G(P).gopen(f"pipe:cat {tmp / 'f.bin'}") as s:
        return s.read()


@case("gopen.gopen_pipe", "gopen.Pipe")
def gopen_pipe_default(P, tmp):
    (tmp / "f.bin").write_bytes(b"data")
    with G(P).gopen(f"pipe:cat {tmp / 'f.bin'}") as s:
        return s.read()


@case(
    "gopen.gopen_curl",
    "gopen.gopen_htgs",
    "gopen.gopen_gsutil",
    "gopen.gopen_ais",
    "gopen.gopen_hf",
    "gopen.gopen_schemes",
)
def gopen_schemes(P, tmp):
    # 1.0.2's schemes must all be there (ours adds s3 through the aws CLI).
    return {
        k: k in G(P).gopen_schemes for k in ("ais", "ftps", "gs", "hf", "htgs", "http", "https", "pipe", "scp", "sftp")
    }


@case("gopen.rewrite_url")
def rewrite_url(P, tmp):
    os.environ["GOPEN_REWRITE"] = "http://a/=http://b/"
    return G(P).rewrite_url("http://a/x.tar"), G(P).rewrite_url("http://c/x.tar")


@case("gopen.set_options", "gopen.info")
def set_options(P, tmp):
    (tmp / "f").write_bytes(b"x")
    s = G(P).gopen(str(tmp / "f"))
    r = G(P).set_options(s, timeout=3)
    s.close()
    return r, isinstance(G(P).info, dict)


# -- cache ----------------------------------------------------------------------------------


def C(P):
    return P.m("cache")


@case("cache.url_to_cache_name", "cache.islocal")
def url_to_cache_name(P, tmp):
    c = C(P)
    urls = ["http://h/a/b/s-1.tar", "/x/y.tar", "s3://b/k.tar", "pipe:curl -s http://h/x.tar", "gs://b/d/e.tar"]
    return (
        [c.url_to_cache_name(u) for u in urls],
        [c.url_to_cache_name(u, 1) for u in urls],
        [c.islocal(u) for u in urls],
    )


@case("cache.pipe_cleaner")
def pipe_cleaner(P, tmp):
    os.environ["ALLOW_OBSOLETE"] = "1"  # obsolete upstream; ours uses it without the switch
    return P.m("cache").pipe_cleaner("pipe:curl -s -L http://h/x.tar"), P.m("cache").pipe_cleaner("/a/b.tar")


@case("cache.url_to_cache_name", name="url_to_cache_name_bytes")
def url_to_cache_name_bytes(P, tmp):
    return C(P).url_to_cache_name(b"http://h/x.tar")


@case("cache.check_tar_format", "cache.get_filetype", "cache.magic_filetype")
def check_tar_format(P, tmp):
    url = shards(tmp, 1, 1)[0]
    (tmp / "junk").write_bytes(b"hello" * 200)
    return C(P).check_tar_format(url), C(P).check_tar_format(str(tmp / "junk"))


@case("cache.download", "cache.verbose_cache", "cache.default_cache_dir", "cache.default_cache_size")
def download(P, tmp):
    (tmp / "src.tar").write_bytes(b"abc")
    C(P).download(str(tmp / "src.tar"), str(tmp / "dst.tar"))
    return (tmp / "dst.tar").read_bytes()


@case("cache.StreamingOpen")
def streaming_open(P, tmp):
    urls = shards(tmp, 2, 1)
    return [(os.path.basename(d["url"]), d["stream"].read(3)) for d in C(P).StreamingOpen()(iter(urls))]


@case("cache.FileCache")
def file_cache_local(P, tmp):
    urls = shards(tmp, 2, 1)
    fc = C(P).FileCache(str(tmp / "cache"))
    return [(os.path.basename(d["url"]), d["stream"].read(3)) for d in fc(iter(urls))]


@case("cache.LRUCleanup")
def lru_cleanup(P, tmp):
    d = tmp / "c"
    d.mkdir()
    for i in range(4):
        (d / f"f{i}").write_bytes(b"x" * 100)
        os.utime(d / f"f{i}", (i, i))
    C(P).LRUCleanup(str(d), 250, interval=None).cleanup()
    return sorted(os.listdir(d))


@case(
    "cache.cached_url_opener",
    "cache.cached_tarfile_samples",
    "cache.cached_tarfile_to_samples",
    "cache.reraise_exception",
    rule=V0286,
)
def cached_obsolete(P, tmp):
    return list(C(P).cached_tarfile_samples(iter([{"url": shards(tmp, 1, 1)[0]}]), cache_dir=str(tmp / "c")))


# -- cbors ----------------------------------------------------------------------------------


@case(
    "cborsiterators.cbors_samples",
    "cborsiterators.cbors_to_samples",
    "cborsiterators.cbor_iterator",
    "cborsiterators.cbors2_samples",
    "cborsiterators.cbors2_to_samples",
    "cborsiterators.cbor2_iterator",
    "cborsiterators.url_opener",
    "cborsiterators.reraise_exception",
    # 0.2.86 needs the unmaintained `cbor` package to import the module; 1.0.2 dropped it.
    rule=OURS_ONLY,
    check=lambda r: [s["dict"]["__key__"] for s in r["value"]] == ["k0", "k1", "k2"],
)
def cbors(P, tmp):
    import cbor2

    with open(tmp / "a.cbors", "wb") as s:
        for i in range(3):
            cbor2.dump({"__key__": f"k{i}", "cls": i}, s)
    cb = P.m("cborsiterators")
    return list(cb.cbors2_samples(iter([{"url": str(tmp / "a.cbors")}])))
