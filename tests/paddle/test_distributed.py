"""Two real ranks (paddle.distributed.launch on CPU) read disjoint shards that cover the dataset."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("paddle")
from shards import make_shards  # noqa: E402

HERE = Path(__file__).parent


@pytest.mark.timeout(300)
@pytest.mark.parametrize("init", ["init", "env"])
def test_two_ranks_disjoint_cover(tmp_path, init):
    urls = make_shards(tmp_path, nshards=6, per_shard=10)
    out = tmp_path / "out"
    out.mkdir()
    cmd = [
        sys.executable,
        "-m",
        "paddle.distributed.launch",
        "--nproc_per_node",
        "2",
        "--devices",
        "",
        "--log_dir",
        str(tmp_path / "log"),
        str(HERE / "dist_worker.py"),
        str(out),
        init,
        *urls,
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=240)
    logs = "\n".join(p.read_text(errors="replace")[-2000:] for p in (tmp_path / "log").glob("*"))
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:] + logs
    r0 = json.loads((out / "rank0.json").read_text())
    r1 = json.loads((out / "rank1.json").read_text())
    assert r0 and r1
    assert not set(r0) & set(r1)
    assert sorted(r0 + r1) == list(range(60))
    assert sorted(r0) == [i for s in (0, 2, 4) for i in range(s * 10, s * 10 + 10)]
