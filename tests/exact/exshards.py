"""Shards with given sample counts; sample ``cls`` is its global id (keys ``s<shard>-<i>``)."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

UNEVEN = (37, 50, 50, 13, 61, 50, 40)


def make_counts(root: Path, counts=UNEVEN, prefix="part"):
    root.mkdir(parents=True, exist_ok=True)
    urls, gid = [], 0
    for s, n in enumerate(counts):
        path = root / f"{prefix}-{s:04d}.tar"
        with tarfile.open(path, "w") as tf:
            for i in range(n):
                for ext, data in (("cls", str(gid).encode()), ("txt", f"text {gid}".encode())):
                    info = tarfile.TarInfo(f"s{s:02d}-{i:05d}.{ext}")
                    info.size = len(data)
                    tf.addfile(info, io.BytesIO(data))
                gid += 1
        urls.append(str(path))
    return urls
