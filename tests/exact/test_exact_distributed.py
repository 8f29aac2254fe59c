"""Two real ranks × two workers (paddle.distributed.launch on CPU) with exact epochs over uneven shards."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("paddle")
from exshards import UNEVEN, make_counts  # noqa: E402

HERE = Path(__file__).parent
K = 5


# Paddle's own start-up sometimes aborts a rank under load, right after it joins the TCP
# store and before any of our code runs (seen once in CI: std::terminate, exit -6).
_PADDLE_STARTUP_ABORT = "terminate called without an active exception"


def launch(tmp_path, out, mode, urls):
    for attempt in range(2):
        log = tmp_path / f"log-{mode}-{attempt}"
        cmd = [sys.executable, "-m", "paddle.distributed.launch", "--nproc_per_node", "2", "--devices", ""]
        cmd += ["--log_dir", str(log), str(HERE / "dist_exact_worker.py"), str(out), mode, str(K), *urls]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=280)
        logs = "\n".join(p.read_text(errors="replace")[-3000:] for p in log.glob("*"))
        started = any((out / f"{mode}{r}.json").exists() for r in range(2))
        if proc.returncode == 0 or started or _PADDLE_STARTUP_ABORT not in logs:
            break
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:] + logs
    return [json.loads((out / f"{mode}{r}.json").read_text()) for r in range(2)]


@pytest.mark.timeout(600)
def test_two_ranks_exact_epochs_train_and_resume(tmp_path):
    urls = make_counts(tmp_path / "data", UNEVEN)
    few = make_counts(tmp_path / "data", (5, 9, 2), prefix="few")
    total = sum(UNEVEN)
    out = tmp_path / "out"
    out.mkdir()
    runs = launch(tmp_path, out, "run", urls + few)
    all_keys = {f"s{s:02d}-{i:05d}" for s, n in enumerate(UNEVEN) for i in range(n)}
    for epoch in range(2):
        per_rank = [[k for b in r["epochs"][epoch] for k in b] for r in runs]
        # Same number of steps on both ranks, every sample seen, padding only fills the gap.
        assert len(runs[0]["epochs"][epoch]) == len(runs[1]["epochs"][epoch])
        assert len(per_rank[0]) == len(per_rank[1]) == -(-total // 2)
        assert set(per_rank[0]) | set(per_rank[1]) == all_keys
        assert len(per_rank[0]) + len(per_rank[1]) - total == (-total) % 2
    for r in runs:
        assert r["epochs"][1] != r["epochs"][0]
        assert r["again0"] == r["epochs"][0]
        assert r["first_k"] == r["epochs"][0][:K]
        assert all(loss == loss for loss in r["losses"])  # trained to the end, no NaN
    # Fewer shards (3) than ranks × workers (4): still every sample, equal steps.
    few_keys = [[k for b in r["few"] for k in b] for r in runs]
    assert len(runs[0]["few"]) == len(runs[1]["few"])
    assert sorted(few_keys[0] + few_keys[1]) == sorted(
        f"s{s:02d}-{i:05d}" for s, n in enumerate((5, 9, 2)) for i in range(n)
    )
    rests = launch(tmp_path, out, "resume", urls + few)
    for r, rest in zip(runs, rests, strict=True):
        assert rest["rest"] == r["epochs"][0][K:]
