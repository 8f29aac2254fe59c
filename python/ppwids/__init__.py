"""ppwids: indexed, random access to WebDataset shards, for Paddle.

A drop-in for ``ppwids`` from ppwebdataset 0.2.86 (and upstream ``wids``):
``ShardListDataset`` gives ``ds[i]`` over a list of tar shards or a JSON
descriptor, with shard-aware samplers for ``paddle.io.DataLoader``. The shard
index is built by the Rust core (``ppwebdataset._core.ShardIndex``).
Paddle is optional: without it the classes use plain stand-in base classes.
"""

from ppwebdataset._core import __version__

from .wids import ChunkedSampler, DistributedChunkedSampler, ShardedSampler, ShardListDataset

__all__ = ["ChunkedSampler", "DistributedChunkedSampler", "ShardedSampler", "ShardListDataset", "__version__"]
