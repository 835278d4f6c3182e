#!/usr/bin/env bash
# Coverage-guided fuzzing (libFuzzer via cargo-fuzz, on the stable toolchain): each target in
# turn, seeded with the fixtures and real pastes, RUNS executions each (default 10 000 000).
# Not part of `make test`: `make fuzz-cargo`. Prints libFuzzer's closing stats per target; the
# whole of libFuzzer's output is kept in fuzz/target/<target>.log (progress while it runs).
# Inputs up to 16 KiB: every seed whole (the largest is 14.5 KB), four times the 4 KiB cap on a
# signal's message, ten times the longest real paste.
set -euo pipefail
cd "$(dirname "$0")"
RUNS=${RUNS:-10000000}
command -v cargo-fuzz >/dev/null || cargo install --locked cargo-fuzz
export RUSTC_BOOTSTRAP=1   # cargo-fuzz passes -Z flags; the stable compiler takes them so
for target in scan scan_log; do
  corpus=$(mktemp -d)
  cp ../tests/fixtures/signals/* ../tests/fixtures/pastes/*.txt ../examples/*/* "$corpus"/ 2>/dev/null || true
  mkdir -p target
  cargo fuzz run --sanitizer none --release "$target" "$corpus" -- \
    -runs="$RUNS" -max_len=16384 -timeout=10 -print_final_stats=1 2>&1 |
    tee "target/$target.log" | tail -n 25
  rm -rf "$corpus"
done
