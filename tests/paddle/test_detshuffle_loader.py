"""The webdataset FAQ / timm / LAION-CLAP pattern: ``detshuffle`` before the splitters, 2 DataLoader workers.

Every worker (and rank) must shuffle the shard list the same way, otherwise the
splitters hand some shards to two workers and others to none.
"""

from __future__ import annotations

import numpy as np
import pytest

paddle = pytest.importorskip("paddle")

from shards import make_shards  # noqa: E402

import ppwebdataset as wds  # noqa: E402


def gid(sample):
    # A 0-d array: Paddle's DataLoader drops plain scalar samples when batch_size=None.
    return np.array(int(sample["cls"]), dtype=np.int64)


def read_all(loader):
    return [int(x) for batch in loader for x in np.ravel(batch.numpy())]


@pytest.mark.parametrize("workers", [2, 3])
def test_detshuffle_before_splitters_reads_every_sample_once(tmp_path, workers):
    urls = make_shards(tmp_path, nshards=12, per_shard=5)
    pipeline = wds.DataPipeline(
        wds.SimpleShardList(urls),
        wds.detshuffle(100, seed=1),
        wds.split_by_node,
        wds.split_by_worker,
        wds.tarfile_to_samples(),
        wds.shuffle(10, seed=3),
        wds.map(gid),
    )
    loader = paddle.io.DataLoader(pipeline, batch_size=None, num_workers=workers)
    got = read_all(loader)
    assert sorted(got) == list(range(60))
