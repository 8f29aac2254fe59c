"""Writing many tiny samples (an int label and a 50-byte text) with ShardWriter.

Measures the per-sample cost of the writer: encoding, member headers and
stream writes. Each run writes into a fresh temporary folder under data_dir.
"""

from __future__ import annotations

import pathlib
import shutil
import tempfile
import time

NAME = "write_tiny"
UNIT = "samples/s"
TARGET = 10.0

NSAMPLES = 100_000
TEXT = "x" * 50


def prepare(data_dir: pathlib.Path) -> None:
    # Nothing to read: the samples are generated in memory by run().
    pathlib.Path(data_dir).mkdir(parents=True, exist_ok=True)


def run(impl: str, data_dir: pathlib.Path) -> float:
    import ppwebdataset as wds

    data_dir = pathlib.Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    out = pathlib.Path(tempfile.mkdtemp(prefix=f"write_tiny_{impl}_", dir=data_dir))
    try:
        samples = [{"__key__": f"{i:08d}", "cls": i, "txt": TEXT} for i in range(NSAMPLES)]
        pattern = str(out / "shard-%06d.tar")
        start = time.perf_counter()
        # verbose=0: the reference prints a line per shard on stdout otherwise.
        with wds.ShardWriter(pattern, maxcount=50_000, verbose=0) as sink:
            for sample in samples:
                sink.write(sample)
        elapsed = time.perf_counter() - start
        written = sorted(out.glob("shard-*.tar"))
        if len(written) != 2 or any(p.stat().st_size == 0 for p in written):
            raise RuntimeError(f"unexpected output: {written}")
        return NSAMPLES / elapsed
    finally:
        shutil.rmtree(out, ignore_errors=True)
