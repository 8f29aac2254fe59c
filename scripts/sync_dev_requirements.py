"""Write scripts/requirements-dev.txt from pyproject.toml's `test` extra (the one list of dev deps).

    python scripts/sync_dev_requirements.py          # rewrite the file
    python scripts/sync_dev_requirements.py --check  # exit 1 if it is out of date

The file exists so that scripts/setup.sh can install the tools before the package (whose
build needs the Rust toolchain) is built; edit the list in pyproject.toml, not here.
"""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET = ROOT / "scripts" / "requirements-dev.txt"
HEADER = "# Generated from pyproject.toml [project.optional-dependencies] test by scripts/sync_dev_requirements.py.\n"


def render() -> str:
    with open(ROOT / "pyproject.toml", "rb") as f:
        deps = tomllib.load(f)["project"]["optional-dependencies"]["test"]
    return HEADER + "".join(f"{d}\n" for d in deps)


def main(argv: list[str]) -> int:
    text = render()
    if "--check" in argv:
        if TARGET.read_text() != text:
            print(f"{TARGET} is out of date: run python scripts/sync_dev_requirements.py", file=sys.stderr)
            return 1
        return 0
    TARGET.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
