"""Run by paddle.distributed.launch: each rank records the sample ids it read."""

import json
import os
import sys

import ppwebdataset as wds

out_dir, init, urls = sys.argv[1], sys.argv[2] == "init", sys.argv[3:]
if init:
    import paddle.distributed as dist

    dist.init_parallel_env()
rank = int(os.environ["PADDLE_TRAINER_ID"])
ds = wds.WebDataset(urls, shardshuffle=False, nodesplitter=wds.split_by_node)
ids = [int(s["cls"]) for s in ds]
with open(os.path.join(out_dir, f"rank{rank}.json"), "w") as f:
    json.dump(ids, f)
