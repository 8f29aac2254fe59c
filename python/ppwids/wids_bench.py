"""A small benchmark: random access through ``ShardListDataset`` over a descriptor.

Usage: ``python -m ppwids.wids_bench DESCRIPTOR [-n COUNT] [--seed S]``.
"""

from __future__ import annotations

import argparse
import random
import time

from .wids import ShardListDataset


def main_wids(args):
    dataset = ShardListDataset(args.dataset, transformations=[])
    rng = random.Random(args.seed)
    indices = [rng.randrange(len(dataset)) for _ in range(args.count)]
    start = time.perf_counter()
    for i in indices:
        dataset[i]
    elapsed = time.perf_counter() - start
    print(f"{len(dataset)} samples, {args.count} random reads: {args.count / elapsed:.0f} samples/s")
    dataset.close()


def main(argv=None):
    parser = argparse.ArgumentParser(description="random-access benchmark for ppwids")
    parser.add_argument("dataset", help="dataset descriptor (JSON path or URL)")
    parser.add_argument("-n", "--count", type=int, default=10000)
    parser.add_argument("--seed", type=int, default=0)
    main_wids(parser.parse_args(argv))


if __name__ == "__main__":
    main()
