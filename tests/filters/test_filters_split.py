"""The split of filters.py into private modules (issue 12): names, homes and pickles stay put.

PRE_SPLIT is dir(ppwebdataset.filters) of the tree before the split (dunders aside), with each
value's ``__module__`` ("module:<name>" for modules, None when it has none).
"""

from __future__ import annotations

import pickle
import types

import numpy as np
import pytest

import ppwebdataset
import ppwebdataset.filters as F
from ppwebdataset import compat, tariterators
from ppwebdataset.handlers import ignore_and_continue, ignore_and_stop
from ppwebdataset.pipeline import DataPipeline
from ppwebdataset.utils import PipelineStage

# fmt: off
PRE_SPLIT = {
    'Cached': 'ppwebdataset.filters',
    'DecodingError': 'ppwebdataset.errors',
    'FilterFunction': 'ppwebdataset.filters',
    'LMDBCached': 'ppwebdataset.filters',
    'PipelineStage': 'ppwebdataset.utils',
    'RestCurried': 'ppwebdataset.filters',
    'Shuffle': 'ppwebdataset.filters',
    'UnsafeOperationError': 'ppwebdataset.errors',
    '_CHUNK': None,
    '_Composed': 'ppwebdataset.filters',
    '_DecodeFactory': 'ppwebdataset.filters',
    '_LMDB_ENVS': None,
    '_NATIVE_ONLY': None,
    '_SCALARS': None,
    '_StageFactory': 'ppwebdataset.filters',
    '_annotate': 'ppwebdataset.filters',
    '_associate': 'ppwebdataset.filters',
    '_batch_len': 'ppwebdataset.filters',
    '_batched': 'ppwebdataset.filters',
    '_check_shapes': 'ppwebdataset.filters',
    '_collate_dicts': 'ppwebdataset.filters',
    '_decode': 'ppwebdataset.filters',
    '_extract_keys': 'ppwebdataset.filters',
    '_field_name': 'ppwebdataset.filters',
    '_handle': 'ppwebdataset.filters',
    '_image_handler': 'ppwebdataset.filters',
    '_info': 'ppwebdataset.filters',
    '_keep': 'ppwebdataset.filters',
    '_listed': 'ppwebdataset.filters',
    '_listify': 'ppwebdataset.filters',
    '_log_keys': 'ppwebdataset.filters',
    '_map': 'ppwebdataset.filters',
    '_map_dict': 'ppwebdataset.filters',
    '_map_tuple': 'ppwebdataset.filters',
    '_next_or_handle': 'ppwebdataset.filters',
    '_random_seed': 'ppwebdataset.filters',
    '_rename': 'ppwebdataset.filters',
    '_rename_keys': 'ppwebdataset.filters',
    '_rsample': 'ppwebdataset.filters',
    '_seed64': 'ppwebdataset.filters',
    '_select': 'ppwebdataset.filters',
    '_settings': 'module:ppwebdataset._settings',
    '_shuffle': 'ppwebdataset.filters',
    '_shuffle_python': 'ppwebdataset.filters',
    '_shuffle_rust': 'ppwebdataset.filters',
    '_tensor_module': 'ppwebdataset.filters',
    '_to_tuple': 'ppwebdataset.filters',
    '_unbatch_dict': 'ppwebdataset.filters',
    '_unbatched': 'ppwebdataset.filters',
    '_unlisted': 'ppwebdataset.filters',
    '_where': 'ppwebdataset.filters',
    '_xdecode': 'ppwebdataset.filters',
    'annotations': '__future__',
    'associate': 'ppwebdataset.filters',
    'batched': 'ppwebdataset.filters',
    'combine_values': 'ppwebdataset.filters',
    'compose': 'ppwebdataset.filters',
    'compose2': 'ppwebdataset.filters',
    'decode': 'ppwebdataset.filters',
    'decode_bin': 'ppwebdataset.filters',
    'decode_pickle': 'ppwebdataset.filters',
    'decode_text': 'ppwebdataset.filters',
    'default_collation_fn': 'ppwebdataset.filters',
    'default_decoders': None,
    'detshuffle': 'ppwebdataset.filters',
    'dict2tuple': 'ppwebdataset.filters',
    'extract_keys': 'ppwebdataset.filters',
    'find_decoder': 'ppwebdataset.filters',
    'fnmatch': 'fnmatch',
    'functools': 'module:functools',
    'getfirst': 'ppwebdataset.filters',
    'identity': 'ppwebdataset.filters',
    'importlib': 'module:importlib',
    'info': 'ppwebdataset.filters',
    'io': 'module:io',
    'itertools': 'module:itertools',
    'listed': 'ppwebdataset.filters',
    'log_keys': 'ppwebdataset.filters',
    'make_seed': 'ppwebdataset.utils',
    'map': 'ppwebdataset.filters',
    'map_dict': 'ppwebdataset.filters',
    'map_tuple': 'ppwebdataset.filters',
    'nested_collation_fn': 'ppwebdataset.filters',
    'np': 'module:numpy',
    'operator': 'module:operator',
    'os': 'module:os',
    'parse_field_spec': 'ppwebdataset.filters',
    'pick': 'ppwebdataset.filters',
    'pickle': 'module:pickle',
    'pipeline': 'ppwebdataset.filters',
    'pipelinefilter': 'ppwebdataset.filters',
    'random': 'module:random',
    're': 'module:re',
    'reduce': '_functools',
    'rename': 'ppwebdataset.filters',
    'rename_keys': 'ppwebdataset.filters',
    'reraise_exception': 'ppwebdataset.handlers',
    'rsample': 'ppwebdataset.filters',
    'select': 'ppwebdataset.filters',
    'shuffle': 'ppwebdataset.filters',
    'slice': 'itertools',
    'sys': 'module:sys',
    'to_tuple': 'ppwebdataset.filters',
    'transform_with': 'ppwebdataset.filters',
    'tuple2dict': 'ppwebdataset.filters',
    'types': 'module:types',
    'unbatched': 'ppwebdataset.filters',
    'unlisted': 'ppwebdataset.filters',
    'utils': 'module:ppwebdataset.utils',
    'xdecode': 'ppwebdataset.filters',
}
# fmt: on
PRE_SPLIT_ALL = [
    "Cached",
    "FilterFunction",
    "LMDBCached",
    "PipelineStage",
    "RestCurried",
    "Shuffle",
    "associate",
    "batched",
    "combine_values",
    "compose",
    "compose2",
    "decode",
    "decode_bin",
    "decode_pickle",
    "decode_text",
    "default_collation_fn",
    "default_decoders",
    "detshuffle",
    "dict2tuple",
    "extract_keys",
    "find_decoder",
    "getfirst",
    "identity",
    "info",
    "listed",
    "log_keys",
    "map",
    "map_dict",
    "map_tuple",
    "nested_collation_fn",
    "parse_field_spec",
    "pick",
    "pipeline",
    "pipelinefilter",
    "rename",
    "rename_keys",
    "reraise_exception",
    "rsample",
    "select",
    "shuffle",
    "slice",
    "to_tuple",
    "transform_with",
    "tuple2dict",
    "unbatched",
    "unlisted",
    "xdecode",
]


def test_every_pre_split_name_is_still_there_with_its_module():
    problems = []
    for name, module in PRE_SPLIT.items():
        if not hasattr(F, name):
            problems.append(f"{name}: missing")
            continue
        value = getattr(F, name)
        now = (
            ("module:" + value.__name__) if isinstance(value, types.ModuleType) else getattr(value, "__module__", None)
        )
        if now != module:
            problems.append(f"{name}: __module__ {now!r}, was {module!r}")
    assert not problems, problems
    assert sorted(F.__all__) == PRE_SPLIT_ALL
    assert F.__getattr__("autodecode").__name__ == "ppwebdataset.autodecode"
    # Moved names are the same objects the package exports.
    for name in ("batched", "shuffle", "detshuffle", "Cached", "LMDBCached", "pipelinefilter", "getfirst"):
        assert getattr(F, name) is getattr(ppwebdataset, name), name


def test_moved_names_keep_their_public_home():
    # __module__ is what repr() of classes and pickle's by-reference lookup use.
    assert repr(F.Shuffle).startswith("<class 'ppwebdataset.filters.Shuffle'")
    assert F.batched.__module__ == F._batched.__module__ == "ppwebdataset.filters"
    assert str(F.batched(3)).startswith("<_batched (3,)")


def test_everything_defined_in_the_private_modules_is_exported_from_filters():
    # A class or function added to a private module but not re-exported would pickle under
    # the private module's name, which a tree without the split cannot load.
    from ppwebdataset import _cachestages, _collate, _curry, _handling, _shuffles

    for module in (_cachestages, _collate, _curry, _handling, _shuffles):
        for name, value in vars(module).items():
            if getattr(value, "__module__", None) == module.__name__:
                raise AssertionError(f"{module.__name__}.{name} is not re-exported by ppwebdataset.filters")
            if getattr(value, "__module__", None) == "ppwebdataset.filters":
                assert getattr(F, name) is value, name


def key_of(sample):
    return {"__key__": sample["__key__"], "cls": sample["cls"] * 2}


def samples(n=40):
    return [{"__key__": f"k{i:03d}", "__url__": "s.tar", "cls": i} for i in range(n)]


STAGES = [
    F.shuffle(8, seed=3),
    F.detshuffle(8, seed=5),
    F.map(key_of),
    F.to_tuple("__key__", "cls"),
    F.Cached(),
    F.batched(4),
    F.listed(3),
    F.select(bool),
]


def run(stage, data):
    return stage.run(data) if isinstance(stage, PipelineStage) else stage(data)


def plain(value):
    # Batches hold arrays: compare their contents.
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


@pytest.mark.parametrize("stage", STAGES, ids=[f"{i}-{type(s).__name__}" for i, s in enumerate(STAGES)])
def test_moved_stages_pickle_by_their_filters_name(stage):
    data = pickle.dumps(stage)
    # The pickle names ppwebdataset.filters, never a private module: pickles written before
    # the split load now, and ones written now load in a tree without the split.
    assert b"ppwebdataset._" not in data
    again = pickle.loads(data)
    assert type(again) is type(stage)
    first = plain(list(run(stage, iter(samples()))))
    assert len(first) > 5
    assert plain(list(run(again, iter(samples())))) == first


def source():
    return iter(samples(50))


def test_a_pipeline_of_moved_stages_round_trips():
    def build():
        return DataPipeline(
            source,
            F.shuffle(10, seed=1),
            F.map(key_of),
            F.detshuffle(6, seed=2),
            F.to_tuple("__key__", "cls"),
            F.batched(7, partial=False),
            F.unbatched(),
            F.Cached(),
        )

    pipe = build()
    data = pickle.dumps(pipe)
    assert b"ppwebdataset._" not in data
    again = pickle.loads(data)
    expected = list(build())
    assert len(expected) == 49
    assert list(again) == expected
    # A pickle taken after a pass carries the state (pass counters, cache) along.
    after = pickle.loads(pickle.dumps(again))
    assert list(after) == list(again)


def boom_on_2(sample):
    if sample["cls"] == 2:
        raise ValueError("boom")
    return sample


CALLING_STAGES = {
    "map": lambda handler: F.map(boom_on_2, handler=handler),
    "map_dict": lambda handler: F.map_dict(cls=lambda v: boom_on_2({"cls": v})["cls"], handler=handler),
}


@pytest.mark.parametrize("name", sorted(CALLING_STAGES))
def test_per_sample_handler_rule(name):
    # True skips the sample, False ends the stream, a raise propagates; the error names the stage and sample.
    make = CALLING_STAGES[name]
    seen = []
    out = list(make(lambda exn: seen.append(exn) or True)(iter(samples(5))))
    assert [s["cls"] for s in out] == [0, 1, 3, 4]
    assert len(seen) == 1 and str(seen[0]) == f"boom [in {name}, sample __key__='k002', __url__='s.tar']"
    assert [s["cls"] for s in make(ignore_and_stop)(iter(samples(5)))] == [0, 1]
    assert len(list(make(ignore_and_continue)(iter(samples(5))))) == 4
    with pytest.raises(ValueError, match=rf"^boom \[in {name}, sample __key__='k002'"):
        list(make(F.reraise_exception)(iter(samples(5))))

    def refuse(exn):
        raise RuntimeError("refused") from exn

    with pytest.raises(RuntimeError, match="refused"):
        list(make(refuse)(iter(samples(5))))


def test_per_sample_handler_rule_in_the_other_stages():
    bad = [{"__key__": "a", "cls": 1}, {"__key__": "b", "__url__": "u.tar"}, {"__key__": "c", "cls": 3}]
    for name, stage, src, kept in (
        ("rename", lambda h: F.rename(c="cls", handler=h), bad, 2),
        ("to_tuple", lambda h: F.to_tuple("cls", handler=h), bad, 2),
        ("map_tuple", lambda h: F.map_tuple(str, handler=h), [(1,), {"__key__": "x"}, (3,)], 2),
        ("decode", lambda h: F.decode(handler=h), [{"__key__": "a"}, (1, 2), {"__key__": "c"}], 2),
    ):
        seen = []
        assert len(list(stage(lambda exn, seen=seen: seen.append(exn) or True)(iter(src)))) == kept, name
        assert len(seen) == 1, name
        assert len(list(stage(ignore_and_stop)(iter(src)))) == 1, name
    with pytest.raises(ValueError, match=r"\[in to_tuple, sample __key__='b', __url__='u.tar'\]$"):
        list(F.to_tuple("cls")(iter(bad)))
    with pytest.raises(
        TypeError, match=r"map_tuple expects tuple samples, got dict \[in map_tuple, sample __key__='x'\]"
    ):
        list(F.map_tuple(str)(iter([{"__key__": "x"}])))


def test_fluid_decode_is_filters_decode():
    pipe = compat.FluidWrapper([{"__key__": "a", "cls": b"3", "txt": b"hi"}]).decode()
    stage = pipe.pipeline[-1]
    assert isinstance(stage, F.FilterFunction) and stage.f is F._decode
    assert list(pipe) == [{"__key__": "a", "cls": 3, "txt": "hi"}]
    assert repr(pipe).endswith("1: decode(),\n)")
    pipe = compat.FluidWrapper([{"__key__": "a", "txt": b"hi"}]).decode("rgb8", only=["txt"], partial=True)
    stage = pipe.pipeline[-1]
    assert (stage.args, stage.kw) == (("rgb8",), {"only": ["txt"], "partial": True, "handler": F.reraise_exception})
    # A bad image spec still fails at the call, not when a worker first iterates.
    with pytest.raises(ValueError, match="imagespec"):
        compat.FluidWrapper([]).decode("no-such-spec")
    with pytest.raises(TypeError, match="native=True"):
        compat.FluidWrapper([]).decode("rgb8", resize=(4, 4))


def test_shard_samples_lives_next_to_tarfile_samples():
    assert compat.ShardSamples is tariterators.ShardSamples
    assert tariterators.ShardSamples.__module__ == "ppwebdataset.tariterators"


def test_shard_samples_stop_skips_the_empty_check(tmp_path):
    bad = tmp_path / "bad.tar"
    bad.write_bytes(b"not a tar file" * 100)
    # A handler that stops ends the epoch quietly; one that goes on reaches the empty check.
    assert list(ppwebdataset.WebDataset([str(bad)], shardshuffle=False, handler=ignore_and_stop)) == []
    with pytest.raises(ValueError, match="No samples found"):
        list(ppwebdataset.WebDataset([str(bad)], shardshuffle=False, handler=ignore_and_continue))
    stage = tariterators.ShardSamples(handler=ignore_and_stop)
    assert list(stage([{"url": str(bad)}])) == []
