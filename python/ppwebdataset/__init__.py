"""ppwebdataset: WebDataset for Paddle with a Rust core.

The public names are those of ``ppwebdataset==0.2.86`` (plus webdataset 1.0.2's
additions). They are imported on first use, so ``import ppwebdataset`` (and
``import ppwids``, which loads the native module from here) stays cheap and
does not import Paddle until a pipeline class is needed.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from ._core import __version__

_EXPORTS = {
    "autodecode": [
        "Continue",
        "Decoder",
        "gzfilter",
        "handle_extension",
        "imagehandler",
        "paddle_autdio",
        "paddle_audio",
        "paddle_loads",
        "torch_audio",
        "torch_loads",
        "torch_video",
    ],
    "cache": ["LRUCleanup", "cached_tarfile_samples", "cached_tarfile_to_samples", "pipe_cleaner"],
    "cborsiterators": ["cbors2_to_samples", "cbors_to_samples"],
    "compat": ["FluidInterface", "FluidWrapper", "WebDataset", "WebLoader"],
    "errors": ["DecodingError"],
    "extradatasets": ["MockDataset", "with_epoch", "with_length"],
    "filters": [
        "Cached",
        "LMDBCached",
        "associate",
        "batched",
        "decode",
        "detshuffle",
        "extract_keys",
        "getfirst",
        "info",
        "map",
        "map_dict",
        "map_tuple",
        "pipelinefilter",
        "rename",
        "rename_keys",
        "rsample",
        "select",
        "shuffle",
        "slice",
        "to_tuple",
        "transform_with",
        "unbatched",
        "xdecode",
    ],
    "handlers": [
        "ignore_and_continue",
        "ignore_and_stop",
        "reraise_exception",
        "warn_and_continue",
        "warn_and_stop",
    ],
    "mix": ["RandomMix", "RoundRobin"],
    "pipeline": ["DataPipeline"],
    "shardlists": [
        "MultiShardSample",
        "ResampledShards",
        "SimpleShardList",
        "non_empty",
        "resampled",
        "shardspec",
        "single_node_only",
        "split_by_node",
        "split_by_worker",
    ],
    "tariterators": ["tarfile_samples", "tarfile_to_samples"],
    "utils": ["PipelineStage", "repeatedly"],
    "writer": ["ShardWriter", "TarWriter", "numpy_dumps", "paddle_dumps", "torch_dumps"],
}

_SUBMODULES = [
    "autodecode",
    "cache",
    "cborsiterators",
    "compat",
    "errors",
    "extradatasets",
    "filters",
    "gopen",
    "handlers",
    "mix",
    "paddle",
    "pipeline",
    "shardlists",
    "tariterators",
    "tenbin",
    "utils",
    "writer",
]

if TYPE_CHECKING:  # checkers see the real objects; at run time they load on first use (below)
    from . import (  # noqa: F401 - submodules, loaded on first use at run time
        autodecode,
        cache,
        cborsiterators,
        compat,
        errors,
        extradatasets,
        filters,
        handlers,
        mix,
        paddle,
        pipeline,
        shardlists,
        tariterators,
        tenbin,
        utils,
        writer,
    )
    from .autodecode import (
        Continue,
        Decoder,
        gzfilter,
        handle_extension,
        imagehandler,
        paddle_audio,
        paddle_autdio,
        paddle_loads,
        torch_audio,
        torch_loads,
        torch_video,
    )
    from .cache import (
        LRUCleanup,
        cached_tarfile_samples,
        cached_tarfile_to_samples,
        pipe_cleaner,
    )
    from .cborsiterators import (
        cbors2_to_samples,
        cbors_to_samples,
    )
    from .compat import (
        FluidInterface,
        FluidWrapper,
        WebDataset,
        WebLoader,
    )
    from .errors import (
        DecodingError,
    )
    from .extradatasets import (
        MockDataset,
        with_epoch,
        with_length,
    )
    from .filters import (
        Cached,
        LMDBCached,
        associate,
        batched,
        decode,
        detshuffle,
        extract_keys,
        getfirst,
        info,
        map,
        map_dict,
        map_tuple,
        pipelinefilter,
        rename,
        rename_keys,
        rsample,
        select,
        shuffle,
        slice,
        to_tuple,
        transform_with,
        unbatched,
        xdecode,
    )
    from .handlers import (
        ignore_and_continue,
        ignore_and_stop,
        reraise_exception,
        warn_and_continue,
        warn_and_stop,
    )
    from .mix import (
        RandomMix,
        RoundRobin,
    )
    from .pipeline import (
        DataPipeline,
    )
    from .shardlists import (
        MultiShardSample,
        ResampledShards,
        SimpleShardList,
        non_empty,
        resampled,
        shardspec,
        single_node_only,
        split_by_node,
        split_by_worker,
    )
    from .tariterators import (
        tarfile_samples,
        tarfile_to_samples,
    )
    from .utils import (
        PipelineStage,
        repeatedly,
    )
    from .writer import (
        ShardWriter,
        TarWriter,
        numpy_dumps,
        paddle_dumps,
        torch_dumps,
    )

_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}

# `gopen` at top level is the function (as upstream), not the module.
from .gopen import gopen, gopen_schemes  # noqa: E402, F401


def __getattr__(name):
    module = _WHERE.get(name)
    if module is not None:
        value = getattr(importlib.import_module(f".{module}", __name__), name)
        globals()[name] = value
        return value
    if name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_WHERE) | set(_SUBMODULES))


# Static, so that checkers and editors know the public names (a test keeps it equal to _EXPORTS).
__all__ = [
    "Cached",
    "Continue",
    "DataPipeline",
    "Decoder",
    "DecodingError",
    "FluidInterface",
    "FluidWrapper",
    "LMDBCached",
    "LRUCleanup",
    "MockDataset",
    "MultiShardSample",
    "PipelineStage",
    "RandomMix",
    "ResampledShards",
    "RoundRobin",
    "ShardWriter",
    "SimpleShardList",
    "TarWriter",
    "WebDataset",
    "WebLoader",
    "__version__",
    "associate",
    "batched",
    "cached_tarfile_samples",
    "cached_tarfile_to_samples",
    "cbors2_to_samples",
    "cbors_to_samples",
    "decode",
    "detshuffle",
    "extract_keys",
    "getfirst",
    "gopen",
    "gopen_schemes",
    "gzfilter",
    "handle_extension",
    "ignore_and_continue",
    "ignore_and_stop",
    "imagehandler",
    "info",
    "map",
    "map_dict",
    "map_tuple",
    "non_empty",
    "numpy_dumps",
    "paddle_audio",
    "paddle_autdio",
    "paddle_dumps",
    "paddle_loads",
    "pipe_cleaner",
    "pipelinefilter",
    "rename",
    "rename_keys",
    "repeatedly",
    "reraise_exception",
    "resampled",
    "rsample",
    "select",
    "shardspec",
    "shuffle",
    "single_node_only",
    "slice",
    "split_by_node",
    "split_by_worker",
    "tarfile_samples",
    "tarfile_to_samples",
    "tenbin",
    "to_tuple",
    "torch_audio",
    "torch_dumps",
    "torch_loads",
    "torch_video",
    "transform_with",
    "unbatched",
    "warn_and_continue",
    "warn_and_stop",
    "with_epoch",
    "with_length",
    "xdecode",
]
