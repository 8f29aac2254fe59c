"""The main job's demo: make a small sharded dataset and stream it through paddle.io.DataLoader."""

from __future__ import annotations

import io
import tarfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / ".bench" / "demo"


def make_dataset(nshards=4, per_shard=2500):
    DATA.mkdir(parents=True, exist_ok=True)
    for s in range(nshards):
        path = DATA / f"demo-{s:06d}.tar"
        if path.exists():
            continue
        tmp = path.with_suffix(".tmp")
        with tarfile.open(tmp, "w") as tf:
            for i in range(per_shard):
                key = f"{s:02d}{i:06d}"
                for ext, data in (("cls", str(i % 10).encode()), ("txt", f"sample {key}".encode())):
                    info = tarfile.TarInfo(f"{key}.{ext}")
                    info.size = len(data)
                    tf.addfile(info, io.BytesIO(data))
        tmp.rename(path)
    return str(DATA / f"demo-{{000000..{nshards - 1:06d}}}.tar")


def main():
    import numpy as np
    import paddle

    import ppwebdataset as wds

    urls = make_dataset()
    ds = (
        wds.WebDataset(urls, shardshuffle=4, seed=0)
        .shuffle(1000)
        .decode()
        .to_tuple("cls", "txt")
        .map_tuple(lambda c: np.int64(c), lambda t: np.int64(len(t)))
        .batched(64)
    )
    loader = paddle.io.DataLoader(ds, batch_size=None, num_workers=2)
    t0 = time.perf_counter()
    n = 0
    label_sum = 0
    chars = 0
    for labels, lengths in loader:
        chars += int(lengths.sum())
        n += labels.shape[0]
        label_sum += int(labels.sum())
    dt = time.perf_counter() - t0
    print(
        f"demo: {n} samples in {dt:.2f}s from {urls} through "
        f".shuffle(1000).decode().to_tuple().batched(64) and paddle.io.DataLoader(num_workers=2); "
        f"label sum {label_sum}, text bytes {chars}"
    )
    if n != 10000:
        raise SystemExit(f"demo: expected 10000 samples, got {n}")


if __name__ == "__main__":
    main()
