#!/usr/bin/env bash
# Runs every check and test: Rust (fmt, clippy, cargo test) and Python (ruff, pytest).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/setup.sh
export PATH="$root/.venv/bin:$PATH"

echo "== cargo fmt / clippy"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -q -- -D warnings
echo "== cargo test"
cargo test -q
echo "== ruff"
ruff check python tests benches
ruff format --check python tests benches
echo "== pytest"
python -m pytest -q "$@"
