"""Decoding tiny samples with the default Decoder (no I/O).

100,000 samples shaped like what the tar reader yields: ``__key__``,
``__url__`` and three small fields (``cls``, ``txt``, ``json``), all bytes.
Measures the per-field dispatch cost of ``autodecode.Decoder``.
"""

from __future__ import annotations

import pathlib
import time

NAME = "decode_only"
UNIT = "samples/s"
TARGET = 2.0

NSAMPLES = 100_000


def prepare(data_dir: pathlib.Path) -> None:
    # The samples are built in memory by run().
    pathlib.Path(data_dir).mkdir(parents=True, exist_ok=True)


def run(impl: str, data_dir: pathlib.Path) -> float:
    from ppwebdataset import autodecode

    samples = [
        {
            "__key__": f"{i:08d}",
            "__url__": "shard-000000.tar",
            "cls": str(i % 1000).encode(),
            "txt": b"a short caption of about fifty bytes, more or less",
            "json": b'{"width": 640, "height": 480}',
        }
        for i in range(NSAMPLES)
    ]
    decoder = autodecode.Decoder([])
    start = time.perf_counter()
    for sample in samples:
        decoder(sample)
    elapsed = time.perf_counter() - start
    return NSAMPLES / elapsed
