"""``widsindex``: create, update and inspect dataset descriptors (``shardindex.json``).

    widsindex create shard-{000..009}.tar -o data.json -n mydata
    widsindex update data.json --rebase
    widsindex info data.json
    widsindex sample data.json 17 --raw

The files written are ``wids_version: 1`` descriptors that upstream wids reads too.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
from urllib.parse import urlparse, urlunparse

from ppwebdataset._progress import Progress
from ppwebdataset.cli import add_common, run_main
from ppwebdataset.gopen import local_path
from ppwebdataset.utils import braceexpand

from .wids_dl import download_file
from .wids_specs import load_remote_dsdesc_raw, urldir


def format_with_suffix(num):
    """``1234567`` → ``"1.2M"``."""
    suffixes = ["", "k", "M", "G", "T", "E"]
    i = 0
    while num >= 1000 and i < len(suffixes) - 1:
        num /= 1000.0
        i += 1
    return f"{num:.1f}{suffixes[i]}"


def _write_json_atomic(filename, data):
    tmp = f"{filename}.tmp-{os.getpid()}"
    with open(tmp, "w") as f:
        json.dump(data, f, indent=2)
        f.write("\n")
    os.replace(tmp, filename)


class AtomicJsonUpdate:
    """``with AtomicJsonUpdate(path) as data: ...`` edits a JSON file in place; the old
    version is kept as ``path.bak`` and nothing changes if the block raises."""

    def __init__(self, filename):
        self.filename = filename
        self.backup_filename = filename + ".bak"
        self.data = None

    def __enter__(self):
        with open(self.filename) as f:
            self.data = json.load(f)
        return self.data

    def __exit__(self, exc_type, exc_value, traceback):
        if exc_type is None:
            tmp = f"{self.filename}.tmp-{os.getpid()}"
            with open(tmp, "w") as f:
                json.dump(self.data, f, indent=2)
                f.write("\n")
            if os.path.exists(self.filename):
                os.replace(self.filename, self.backup_filename)
            os.replace(tmp, self.filename)


def urlfile(url):
    """The file part of a URL."""
    return os.path.basename(urlparse(url).path)


def urldirbase(url):
    """The directory of a URL as an absolute URL (local paths become ``file://`` URLs)."""
    parsed = urlparse(url)
    scheme = parsed.scheme or "file"
    path = os.path.abspath(parsed.path) if scheme == "file" and not parsed.netloc else parsed.path
    return urlunparse((scheme, parsed.netloc, os.path.dirname(path), "", "", ""))


def shorten_name(s):
    """A dataset name from a file name: its alphanumeric words, numbers and repeats dropped."""
    found = set()
    result = []
    for word in re.split(r"[^a-zA-Z0-9_]+", s):
        if re.match(r"^[0-9]*$", word) or word in found:
            continue
        result.append(word)
        found.add(word)
    return "-".join(result)


def describe_shard(url, tmpdir):
    """``{url, md5sum, nsamples, filesize}`` for one shard (remote ones are downloaded to ``tmpdir``)."""
    from .wids import compute_file_md5sum, compute_num_samples, url_hash

    path = None if url.startswith("pipe:") else local_path(url)
    if path is None:
        path = os.path.join(tmpdir, f"{url_hash(url)}.tar")
        download_file(url, path)
    try:
        return dict(
            url=url,
            md5sum=compute_file_md5sum(path),
            nsamples=compute_num_samples(path),
            filesize=os.stat(path).st_size,
        )
    finally:
        if path.startswith(tmpdir):
            os.unlink(path)


def main_create(args):
    """Creates a descriptor for a list of shards."""
    output = args.output or "shardindex.json"
    files = args.files
    if len(files) == 1 and files[0] == "-":
        files = [line.strip() for line in sys.stdin if line.strip()]
    fnames = [f for pattern in files for f in braceexpand(pattern)]
    name = args.name
    if name is None:
        name = shorten_name(os.path.splitext(fnames[0])[0])
        print("setting name to", name, file=sys.stderr)
    shards = []
    with tempfile.TemporaryDirectory(prefix="widsindex-") as tmpdir, Progress(len(fnames), "create") as bar:
        for fname in fnames:
            if not bar.enabled:
                print(fname, file=sys.stderr)
            shards.append(describe_shard(fname, tmpdir))
            bar.update()
    shards.sort(key=lambda x: x["url"])
    result = dict(__kind__="wids-shard-index-v1", wids_version=1, shardlist=shards)
    if name != "":
        result["name"] = name
    if args.base is not None:
        result["base"] = args.base
    if args.info is not None:
        with open(args.info) as f:
            result["info"] = f.read()
    _write_json_atomic(output, result)
    return 0


def main_update(args):
    """Edits an existing descriptor."""
    with AtomicJsonUpdate(args.filename) as data:
        if args.name != "":
            data["name"] = args.name
        if args.keep:
            data["keep"] = True
        if args.nokeep:
            data["keep"] = False
        if args.info != "":
            data["info"] = args.info
        if args.base != "":
            data["base"] = args.base
        if args.rebase:
            bases = {urldirbase(shard["url"]) for shard in data["shardlist"]}
            if len(bases) != 1:
                raise SystemExit(f"cannot rebase: the shards are in {len(bases)} different directories")
            base = bases.pop()
            print(f"rebasing to {base}", file=sys.stderr)
            data["base"] = base
        if args.dir != "" or args.nodir or args.rebase:
            shardlist = data["shardlist"]
            for shard in shardlist:
                file = urlfile(shard["url"])
                shard["url"] = file if args.nodir else os.path.join(args.dir, file)
            data["shardlist"] = sorted(shardlist, key=lambda x: x["url"])
        if "name" not in data:
            data["name"] = os.path.splitext(os.path.basename(urlparse(args.filename).path))[0]
    return 0


def _total(data, key):
    return sum(shard.get(key, 0) for shard in data["shardlist"])


def print_long_info(data, filename):
    shards = data.get("shardlist", [])
    print("            name:", data.get("name"))
    print("            info:", data.get("info"))
    print("            base:", data.get("base"), f"(assumed: {urldir(filename)})")
    total_size = _total(data, "filesize")
    total_samples = _total(data, "nsamples")
    print("      total size:", format_with_suffix(total_size))
    print("   total samples:", format_with_suffix(total_samples))
    if total_samples and shards:
        print(" avg sample size:", format_with_suffix(int(total_size / total_samples)))
        print("  avg shard size:", format_with_suffix(int(total_size / len(shards))))
    if shards:
        print("     first shard:", shards[0]["url"])
        print("      last shard:", shards[-1]["url"])
    if data.get("datasets"):
        print("        datasets:")
        for dataset in data["datasets"]:
            print("    dataset name:", dataset.get("name"))
            print("     dataset url:", dataset.get("source_url", len(dataset.get("shardlist", []))))


def main_info(args):
    """Prints a summary of descriptors."""
    if args.table:
        print("file\tname\tnbytes\tnsamples\tbase\tlast\tdatasets")
    for filename in args.filenames:
        data = load_remote_dsdesc_raw(filename)
        if args.table:
            shards = data.get("shardlist", [])
            print(
                filename,
                data.get("name"),
                _total(data, "filesize"),
                _total(data, "nsamples"),
                data.get("base"),
                shards[-1]["url"] if shards else None,
                len(data.get("datasets", [])),
                sep="\t",
            )
        else:
            print("filename:", filename)
            print_long_info(data, filename)
            print()
    return 0


def main_sample(args):
    """Prints (or with ``--cat`` writes raw) one sample of a dataset."""
    from .wids import ShardListDataset

    raw = args.raw or args.cat is not None
    ds = ShardListDataset(args.filename, transformations=[] if raw else "PIL")
    print("dataset size:", len(ds), file=sys.stderr)
    sample = ds[args.index]
    if args.cat is not None:
        sys.stdout.buffer.write(sample[args.cat])
        sys.stdout.flush()
        return 0
    if args.python:
        print(repr(sample))
        return 0
    width = max(len(k) for k in sample)
    for k, v in sorted(sample.items()):
        print(k.ljust(width), repr(v)[: max(1, args.width - width - 1)])
    ds.close()
    return 0


def add_create_arguments(p):
    """The arguments of ``widsindex create`` (also used by ``ppwebdataset index``)."""
    p.add_argument("files", nargs="+", help="shard paths or URLs (brace patterns allowed; '-' reads stdin)")
    p.add_argument("--output", "-o", help="output file (default shardindex.json)")
    p.add_argument("--name", "-n", default=None, help="dataset name")
    p.add_argument("--info", "-i", default=None, help="file whose text becomes the dataset description")
    p.add_argument("--base", "-b", default=None, help="base URL for the shards")


def build_parser():
    parser = argparse.ArgumentParser(prog="widsindex", description="Create and inspect wids dataset descriptors.")
    add_common(parser, "widsindex")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("create", help="create a descriptor for a list of shards")
    add_common(p, "widsindex create")
    add_create_arguments(p)

    p = sub.add_parser("update", help="update an existing descriptor")
    add_common(p, "widsindex update")
    p.add_argument("filename")
    p.add_argument("-n", "--name", default="", help="set the dataset name")
    p.add_argument("-k", "--keep", action="store_true", help="set the keep flag")
    p.add_argument("-K", "--nokeep", action="store_true", help="clear the keep flag")
    p.add_argument("-i", "--info", default="", help="set the dataset info")
    p.add_argument("-D", "--nodir", action="store_true", help="remove the directory from the URLs")
    p.add_argument("-d", "--dir", default="", help="set the directory of the URLs")
    p.add_argument("-b", "--base", default="", help="set the base")
    p.add_argument("-B", "--rebase", action="store_true", help="move the common directory of the URLs into base")

    p = sub.add_parser("info", help="show a summary of descriptors")
    add_common(p, "widsindex info")
    p.add_argument("filenames", nargs="*")
    p.add_argument("-t", "--table", action="store_true", help="one tab-separated line per descriptor")

    p = sub.add_parser("sample", help="show one sample")
    add_common(p, "widsindex sample")
    p.add_argument("filename")
    p.add_argument("index", type=int, nargs="?", default=0)
    p.add_argument("-p", "--python", action="store_true", help="print the sample's repr")
    p.add_argument("-r", "--raw", action="store_true", help="do not decode the fields")
    p.add_argument("-c", "--cat", default=None, help="write the raw bytes of this field to stdout")
    p.add_argument("-w", "--width", type=int, default=250, help="output line width")
    return parser


def main(argv=None):
    """Entry point of the ``widsindex`` command: errors are one line (``--debug`` for the traceback)."""

    def inner(argv):
        args = build_parser().parse_args(argv)
        handler = {"create": main_create, "update": main_update, "info": main_info, "sample": main_sample}
        return handler[args.command](args)

    return run_main(inner, argv, "widsindex")


if __name__ == "__main__":
    sys.exit(main())
