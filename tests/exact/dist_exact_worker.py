"""Run by paddle.distributed.launch: exact epochs on two ranks, training a tiny model, saving/resuming state."""

import json
import os
import sys

import paddle
import paddle.distributed as dist

import ppwebdataset as wds

out_dir, mode, k, urls = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4:]
few = [u for u in urls if "few-" in u]  # 3 shards for 2 ranks × 2 workers
urls = [u for u in urls if u not in few]
dist.init_parallel_env()
rank = dist.get_rank()


def loader(urls=urls):
    ds = wds.WebDataset(urls, exact=True, seed=0, shardshuffle=True).shuffle(16)
    ds = ds.to_tuple("__key__", "cls").map_tuple(str, int)
    return wds.WebLoader(ds, batch_size=8, num_workers=2)


def keys_of(batches):
    return [list(keys) for keys, _ in batches]


result = {}
if mode == "run":
    paddle.seed(0)
    model = paddle.DataParallel(paddle.nn.Linear(1, 1))
    opt = paddle.optimizer.SGD(learning_rate=0.01, parameters=model.parameters())
    result["epochs"], result["losses"] = [], []
    train = loader()
    for epoch in range(2):
        train.set_epoch(epoch)
        batches = []
        for keys, cls in train:
            x = cls.astype("float32").reshape([-1, 1]) / 1000.0
            loss = paddle.nn.functional.mse_loss(model(x), 2 * x)
            loss.backward()  # DataParallel all-reduces here: unequal batch counts would hang
            opt.step()
            opt.clear_grad()
            batches.append(list(keys))
            result["losses"].append(float(loss))
        result["epochs"].append(batches)
    result["few"] = keys_of(loader(few))
    again = loader()
    again.set_epoch(0)
    result["again0"] = keys_of(again)
    stopped = loader()
    stopped.set_epoch(0)
    it = iter(stopped)
    result["first_k"] = [list(next(it)[0]) for _ in range(k)]
    with open(os.path.join(out_dir, f"state{rank}.json"), "w") as f:
        json.dump(stopped.state_dict(), f)
else:
    resumed = loader()
    with open(os.path.join(out_dir, f"state{rank}.json")) as f:
        resumed.set_state_dict(json.load(f))
    result["rest"] = keys_of(resumed)
with open(os.path.join(out_dir, f"{mode}{rank}.json"), "w") as f:
    json.dump(result, f)
