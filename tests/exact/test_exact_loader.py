"""WebLoader over an exact dataset: state to JSON, a new process resumes the remaining batches exactly."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("paddle")
from exshards import UNEVEN, make_counts  # noqa: E402

import ppwebdataset as wds  # noqa: E402
from ppwebdataset.exact import exact_stage  # noqa: E402

HERE = Path(__file__).parent


def run(out, mode, workers, batch, shuffle, epoch, ks, urls):
    cmd = [sys.executable, str(HERE / "loader_worker.py"), str(out), mode, str(workers), str(batch), str(shuffle)]
    cmd += [str(epoch), ",".join(map(str, ks)), *urls]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads((out / f"{mode}.json").read_text())


@pytest.mark.timeout(600)
@pytest.mark.parametrize(("workers", "batch", "shuffle", "epoch"), [(2, 5, 7, 0), (3, 8, 0, 1), (0, 16, 30, 2)])
def test_resume_in_a_new_process_continues_exactly(tmp_path, workers, batch, shuffle, epoch):
    urls = make_counts(tmp_path / "data", UNEVEN)
    out = tmp_path / "out"
    out.mkdir()
    ks = [1, 2, 7, 12]
    first = run(out, "run", workers, batch, shuffle, epoch, ks, urls)
    full = first["full"]
    assert sorted(k for b in full for k in b) == sorted(
        f"s{s:02d}-{i:05d}" for s, n in enumerate(UNEVEN) for i in range(n)
    )
    assert first["len"] == len(full)
    assert first["after"]["epoch"] == epoch + 1 and first["after"]["batches"] == 0
    ks = [k for k in ks if k < len(full)]
    second = run(out, "resume", workers, batch, shuffle, epoch, ks, urls)
    for k in ks:
        assert first[f"state{k}"]["batches"] == k and first[f"state{k}"]["epoch"] == epoch
        assert second[f"rest{k}"] == full[k:]
        assert second[f"next{k}"] != full and len(second[f"next{k}"]) == len(full)
    assert "num_workers" in second["other_workers"]


@pytest.mark.timeout(300)
def test_plain_paddle_dataloader_is_balanced_and_deterministic(tmp_path):
    import paddle

    urls = make_counts(tmp_path / "data", UNEVEN)
    ds = wds.WebDataset(urls, exact=True, seed=0, shardshuffle=True).to_tuple("__key__", "cls").map_tuple(str, int)

    def epoch(e):
        ds.set_epoch(e)  # workers get a copy of the dataset: the epoch is set in the main process
        return [k for b, _ in paddle.io.DataLoader(ds, batch_size=10, num_workers=2) for k in b]

    a, b = epoch(0), epoch(0)
    assert a == b and len(a) == len(set(a)) == sum(UNEVEN)
    assert epoch(1) != a
    # WebLoader delivers worker batches in Paddle's own round-robin order.
    web = wds.WebLoader(ds, batch_size=10, num_workers=2).set_epoch(0)
    assert [k for b, _ in web for k in b] == a


def test_state_dict_needs_an_exact_dataset(tmp_path):
    urls = make_counts(tmp_path / "data", (3,))
    with pytest.raises(TypeError, match="exact=True"):
        wds.WebLoader(wds.WebDataset(urls, shardshuffle=False), batch_size=2).state_dict()
    ds = wds.WebDataset(urls, exact=True).map(lambda s: s["__key__"])
    loader = wds.WebLoader(ds, batch_size=2)
    ds.set_epoch(3)  # the epoch lives in the dataset: either object can set it
    assert loader.state_dict()["epoch"] == 3
    loader.set_epoch(5)
    assert loader.state_dict()["epoch"] == 5 and exact_stage(ds).epoch == 5
    with pytest.raises(ValueError, match="batch_size"):
        loader.set_state_dict(dict(loader.state_dict(), batch_size=4))
    assert json.loads(json.dumps(loader.state_dict()))["positions"] == [0]
