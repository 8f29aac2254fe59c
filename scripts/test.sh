#!/usr/bin/env bash
# Runs every check and test: Rust (fmt, clippy, cargo test) and Python (ruff, pytest).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/setup.sh
export PATH="$root/.venv/bin:$PATH"

echo "== cargo fmt / clippy"
# rustfmt and clippy ship with rustup's default profile; a minimal toolchain may lack them.
if cargo fmt --version >/dev/null 2>&1; then
  cargo fmt --all -- --check
  cargo fmt --manifest-path fuzz/Cargo.toml -- --check
else
  echo "warning: rustfmt is not installed; skipping the format check" >&2
fi
if cargo clippy --version >/dev/null 2>&1; then
  cargo clippy --workspace --all-targets -q -- -D warnings
  cargo clippy --manifest-path fuzz/Cargo.toml --no-default-features --all-targets --target-dir target -q -- -D warnings
else
  echo "warning: clippy is not installed; skipping lints" >&2
fi
echo "== cargo test"
cargo test -q
echo "== fuzz corpus replay"
# The fuzz targets over the checked-in seeds (issue 9 reproducers included) as a plain
# test: no cargo-fuzz, libFuzzer or nightly needed. scripts/fuzz.sh does real fuzzing.
cargo test -q --manifest-path fuzz/Cargo.toml --no-default-features --target-dir target
echo "== ruff"
ruff check python tests benches
ruff format --check python tests benches
echo "== mypy (both packages, then README-style user code under --strict)"
mypy
MYPYPATH=python mypy --config-file tests/typing/mypy-user.ini tests/typing/quickstart_user.py
# pyright's PyPI wheel bundles the checker but runs on node; without node it would try to download one.
if command -v node >/dev/null 2>&1; then
  echo "== pyright (user code)"
  pyright tests/typing/quickstart_user.py
else
  echo "warning: node is not installed; skipping pyright (mypy covered the same code)" >&2
fi
echo "== pytest"
python -m pytest -q "$@"
