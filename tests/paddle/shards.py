"""Small numbered shards: sample ``cls`` is its global id, so coverage is easy to check."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path


def make_shards(root: Path, nshards=6, per_shard=10):
    urls = []
    for s in range(nshards):
        path = root / f"shard-{s:04d}.tar"
        with tarfile.open(path, "w") as tf:
            for i in range(per_shard):
                gid = s * per_shard + i
                for ext, data in (("cls", str(gid).encode()), ("txt", f"text {gid}".encode())):
                    info = tarfile.TarInfo(f"{gid:06d}.{ext}")
                    info.size = len(data)
                    tf.addfile(info, io.BytesIO(data))
        urls.append(str(path))
    return urls
