#!/usr/bin/env bash
# Usage: scripts/fuzz.sh [SECONDS_PER_TARGET (default 60)] [TARGET...]
# Runs each cargo-fuzz target of fuzz/ for a bounded time, one after the other, with debug
# assertions (overflow checks) on. Works on the stable toolchain: RUSTC_BOOTSTRAP=1 unlocks
# the nightly-only sanitizer flags cargo-fuzz passes. Needs `cargo install cargo-fuzz`.
# Inputs found go to fuzz/work/<target> (the checked-in fuzz/corpus/<target> is only read),
# crashes to fuzz/artifacts/<target>; each run's log ends with libFuzzer's final stats.
# No sanitizer: the core is safe Rust (AddressSanitizer only slowed it ~10x); panics and
# overflows are what the targets catch. Set FUZZ_SANITIZER=address to use it anyway.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
secs="${1:-60}"
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(tar_reader group index_build sidecar_decode)
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "cargo-fuzz is not installed (cargo install cargo-fuzz); the corpus replay runs in scripts/test.sh" >&2
  exit 1
fi
export RUSTC_BOOTSTRAP=1
san="${FUZZ_SANITIZER:-none}"
cargo fuzz build -a -O -s "$san"
status=0
for t in "${targets[@]}"; do
  mkdir -p "fuzz/work/$t"
  echo "== fuzz $t for ${secs}s"
  if ! cargo fuzz run -a -O -s "$san" "$t" "fuzz/work/$t" "fuzz/corpus/$t" -- \
    -max_total_time="$secs" -timeout=20 -rss_limit_mb=2048 -print_final_stats=1 \
    >"fuzz/work/$t.log" 2>&1; then
    status=1
    echo "!! $t failed; see fuzz/work/$t.log and fuzz/artifacts/$t" >&2
  fi
  grep -E "stat::number_of_executed_units|Done [0-9]+ runs" "fuzz/work/$t.log" || tail -5 "fuzz/work/$t.log"
done
exit $status
