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
    import paddle

    import ppwebdataset as wds

    urls = make_dataset()

    def to_pair(sample):
        return int(sample["cls"]), sample["txt"].decode()

    ds = wds.WebDataset(urls, shardshuffle=False).map(to_pair)
    loader = paddle.io.DataLoader(ds, batch_size=None, num_workers=2)
    t0 = time.perf_counter()
    n = 0
    labels = 0
    for label, _text in loader:
        n += 1
        labels += int(label)
    dt = time.perf_counter() - t0
    print(f"demo: streamed {n} samples from {urls} through paddle.io.DataLoader(num_workers=2) in {dt:.2f}s")


if __name__ == "__main__":
    main()
