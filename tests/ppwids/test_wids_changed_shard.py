"""A shard that changes on disk while ppwids has it open gives an exception, never a signal.

Each case runs in a child process: a SIGBUS there fails the test instead of killing pytest.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

CHILD = textwrap.dedent(
    """
    import json, os, sys
    import ppwids
    from ppwebdataset.errors import ShardError

    path, cut, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    if mode == "dataset":
        ds = ppwids.ShardListDataset([{"url": path, "nsamples": 4}], transformations=[])
        read = ds.__getitem__
    else:
        from ppwebdataset._core import ShardIndex
        idx = ShardIndex(path)
        read = lambda i: idx.get_sample(i, views=(mode == "views"))
    first = read(0)
    os.truncate(path, cut)
    out = {"first": len(first[".bin"])}
    try:
        read(3)
        out["error"] = None
    except ShardError as e:
        out.update(error=type(e).__name__, url=e.url, member=e.member, offset=e.offset, msg=str(e))
    print(json.dumps(out))
    """
)


def _run(path, cut, mode):
    env = dict(os.environ, PYTHONPATH=str(ROOT / "python"))
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(path), str(cut), mode], env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode != -signal.SIGBUS, "the reader died of SIGBUS"
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_truncated_while_open_raises_a_shard_error(tmp_path, make_tar):
    payload = [(f"k{i}.bin", bytes([i]) * 9000) for i in range(4)]
    path = make_tar(tmp_path / "t.tar", payload)
    for mode in ("dataset", "index", "views"):
        p = tmp_path / f"{mode}.tar"
        p.write_bytes(path.read_bytes())
        got = _run(p, 4096, mode)
        assert got["first"] == 9000
        assert got["error"] == "TruncatedShardError", got
        assert (got["url"], got["member"]) == (str(p), "k3.bin")
        assert got["offset"] == 3 * (512 + 9216) + 512
        assert "changed on disk" in got["msg"]
