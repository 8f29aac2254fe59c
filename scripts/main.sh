#!/usr/bin/env bash
# The main job: build (release), generate a small dataset, stream it through a
# Paddle pipeline, and print the throughput table next to ppwebdataset==0.2.86.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/setup.sh
export PATH="$root/.venv/bin:$PATH"
python benches/demo.py
python benches/run.py "$@"
