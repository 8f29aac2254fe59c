"""ppwids: indexed, random access to WebDataset shards, for Paddle.

A drop-in for ``ppwids`` from ppwebdataset 0.2.86 (and upstream ``wids``):
``ShardListDataset`` gives ``ds[i]`` over a list of tar shards or a JSON
descriptor, with shard-aware samplers for ``paddle.io.DataLoader``. The shard
index is built by the Rust core (``ppwebdataset._core.ShardIndex``).

The public classes (and the submodules) load on first use, so ``import ppwids``
stays cheap and does not import Paddle; when Paddle is installed they subclass
``paddle.io.Dataset`` / ``paddle.io.Sampler``, otherwise plain stand-ins.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from ppwebdataset._core import __version__

if TYPE_CHECKING:  # checkers see the real classes; at run time they load on first use (below)
    from . import (  # noqa: F401 - submodules, loaded on first use at run time
        wids,
        wids_bench,
        wids_cleanup,
        wids_decode,
        wids_dir,
        wids_dl,
        wids_index,
        wids_lru,
        wids_mmtar,
        wids_specs,
        wids_tar,
    )
    from .wids import ChunkedSampler, DistributedChunkedSampler, ShardedSampler, ShardListDataset

_CLASSES = ("ChunkedSampler", "DistributedChunkedSampler", "ShardedSampler", "ShardListDataset")
_SUBMODULES = (
    "wids",
    "wids_bench",
    "wids_cleanup",
    "wids_decode",
    "wids_dir",
    "wids_dl",
    "wids_index",
    "wids_lru",
    "wids_mmtar",
    "wids_specs",
    "wids_tar",
)

# Static, so that checkers see the public names (a test keeps it equal to _CLASSES).
__all__ = ["ChunkedSampler", "DistributedChunkedSampler", "ShardedSampler", "ShardListDataset", "__version__"]


def __getattr__(name):
    if name in _CLASSES:
        value = getattr(importlib.import_module(".wids", __name__), name)
    elif name in _SUBMODULES:
        value = importlib.import_module(f".{name}", __name__)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_CLASSES) | set(_SUBMODULES))
