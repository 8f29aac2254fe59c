#!/usr/bin/env bash
# Idempotent set-up: a project venv with every Python dependency, the native
# module built in release mode, and ppwebdataset==0.2.86 in a side folder
# (it installs the same import names as ours, so it never shares a path).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
PY="${PYTHON:-python3.11}"
command -v "$PY" >/dev/null 2>&1 || PY=python3

if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
export VIRTUAL_ENV="$root/.venv"
export PATH="$VIRTUAL_ENV/bin:$PATH"

stamp=.venv/.deps-stamp
want="$(cat scripts/requirements-dev.txt pyproject.toml | sha256sum | cut -c1-16)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  python -m pip install -q --upgrade pip
  python -m pip install -q -r scripts/requirements-dev.txt
  echo "$want" > "$stamp"
fi

ref=.ref/ppwebdataset-0.2.86
if [ ! -f "$ref/ppwebdataset/__init__.py" ]; then
  rm -rf "$ref"
  python -m pip install -q --no-deps --target "$ref" ppwebdataset==0.2.86 braceexpand
fi

# Release build of the extension into the venv (editable: python/ is on sys.path).
maturin develop --release -q >/dev/null
