"""One process of the resume test: the full pass, or stops after k batches saving the state, or resumes."""

import json
import sys

import ppwebdataset as wds

out, mode, workers, batch, shuffle, epoch, ks, urls = sys.argv[1:8] + [sys.argv[8:]]
workers, batch, shuffle, epoch = int(workers), int(batch), int(shuffle), int(epoch)
ks = [int(k) for k in ks.split(",")]


def loader():
    ds = wds.WebDataset(urls, exact=True, seed=11, shardshuffle=True)
    if shuffle:
        ds = ds.shuffle(shuffle)
    ds = ds.to_tuple("__key__", "cls").map_tuple(str, int)
    return wds.WebLoader(ds, batch_size=batch, num_workers=workers)


def keys(batches):
    return [list(b[0]) for b in batches]


result = {}
if mode == "run":
    full = loader().set_epoch(epoch)
    result["full"] = keys(full)
    result["len"] = len(full)
    result["after"] = full.state_dict()  # a finished pass points at the next epoch
    for k in ks:
        stopped = loader().set_epoch(epoch)
        it = iter(stopped)
        for _ in range(k):
            next(it)
        result[f"state{k}"] = json.loads(json.dumps(stopped.state_dict()))
else:
    states = json.load(open(out + "/run.json"))
    for k in ks:
        resumed = loader()
        resumed.set_state_dict(states[f"state{k}"])
        resumed.set_epoch(epoch)  # the usual epoch loop: setting the state's own epoch keeps the state
        result[f"rest{k}"] = keys(resumed)
        result[f"next{k}"] = keys(resumed)  # the epoch after the resumed one starts from its beginning
    try:
        other = wds.WebLoader(loader().pipeline[0].dataset, batch_size=batch, num_workers=workers + 2)
        other.set_state_dict(states[f"state{ks[0]}"])
    except ValueError as e:
        result["other_workers"] = str(e)
json.dump(result, open(f"{out}/{mode}.json", "w"))
