"""Every ```python block of README.md runs as written, in order, on generated data.

The blocks run one after the other in one namespace (as a reader would paste them), in
a fresh interpreter whose working directory is a temp dir holding the files the README
names (``data/shard-000000.tar`` ... ``data/shard-000099.tar`` with ``.jpg``/``.cls``
samples and ``data/shardindex.json``). Blocks added later are picked up automatically.

A block may leave a placeholder to the reader (``items`` in the writer example); such a
block gets a prelude from ``PRELUDES``, keyed by a snippet of the block. Preludes only
define placeholders; every block still runs, and a prelude whose block is gone fails.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"

PRELUDES = {
    # The writer example iterates a user's (image, label) pairs.
    "enumerate(items)": "import numpy as np\nitems = [(np.full((16, 16, 3), i, np.uint8), i % 10) for i in range(25)]",
}

RUNNER = r"""
import json, sys, traceback
blocks = json.load(open(sys.argv[1]))
ns = {"__name__": "__readme__"}
for block in blocks:
    try:
        exec(compile(block["prelude"], f"<prelude for README.md line {block['line']}>", "exec"), ns)
        exec(compile(block["code"], f"README.md line {block['line']}", "exec"), ns)
    except BaseException:
        traceback.print_exc()
        print(f"README block at line {block['line']} failed", file=sys.stderr)
        sys.exit(1)
    print(f"@@readme-ok {block['line']}", flush=True)
"""


def python_blocks(text):
    """``(line, code)`` of each fenced python block."""
    blocks = []
    for m in re.finditer(r"^```python[ \t]*\n(.*?)^```[ \t]*$", text, re.S | re.M):
        blocks.append((text.count("\n", 0, m.start()) + 2, m.group(1)))
    return blocks


def make_data(root: Path):
    import ppwebdataset as wds

    data = root / "data"
    data.mkdir()
    rng = np.random.default_rng(0)
    paths = []
    for s in range(100):
        path = data / f"shard-{s:06d}.tar"
        with wds.TarWriter(str(path)) as sink:
            for i in range(2):
                image = rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)
                sink.write({"__key__": f"{s:06d}_{i}", "jpg": image, "cls": (s + i) % 10})
        paths.append(str(path))
    env = dict(os.environ, PYTHONPATH=str(ROOT / "python"))
    subprocess.run(
        [sys.executable, "-m", "ppwids.wids_index", "create", *paths, "-o", str(data / "shardindex.json")],
        cwd=root,
        env=env,
        check=True,
        capture_output=True,
    )


def test_every_readme_python_block_runs(tmp_path):
    blocks = python_blocks(README.read_text())
    assert blocks, "README.md has no python blocks"
    unused = [m for m in PRELUDES if not any(m in code for _, code in blocks)]
    assert not unused, f"preludes for blocks no longer in the README: {unused}"
    work = tmp_path / "work"
    work.mkdir()
    make_data(work)
    spec = [
        {"line": line, "code": code, "prelude": "\n".join(p for m, p in PRELUDES.items() if m in code)}
        for line, code in blocks
    ]
    (tmp_path / "blocks.json").write_text(json.dumps(spec))
    env = dict(os.environ, PYTHONPATH=str(ROOT / "python"), PYTHONWARNINGS="ignore")
    proc = subprocess.run(
        [sys.executable, "-c", RUNNER, str(tmp_path / "blocks.json")],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    done = [int(x.split()[1]) for x in proc.stdout.splitlines() if x.startswith("@@readme-ok ")]
    assert done == [line for line, _ in blocks]


def test_block_extraction():
    text = "a\n```python\nx = 1\n```\n```bash\nls\n```\n```python\ny = 2\n```\n"
    assert python_blocks(text) == [(3, "x = 1\n"), (9, "y = 2\n")]


@pytest.mark.parametrize("marker", sorted(PRELUDES))
def test_preludes_only_define_placeholders(marker):
    # A prelude must not import ppwebdataset/ppwids or build pipelines: the block itself does that.
    assert "ppwebdataset" not in PRELUDES[marker] and "ppwids" not in PRELUDES[marker]
