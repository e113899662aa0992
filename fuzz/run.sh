#!/usr/bin/env bash
# Run every cargo-fuzz target for a bounded time and summarise.
#
#   bash fuzz/run.sh                 # 60 s per target
#   SECONDS_PER_TARGET=1800 bash fuzz/run.sh parse_number text_scan
#
# Needs a nightly toolchain (`rustup toolchain install nightly`) and
# `cargo install cargo-fuzz`. Seeds in fuzz/seeds/<target>/ start each corpus
# (fuzz/corpus/, not committed); crashes land in fuzz/artifacts/<target>/ and the
# script exits 1. Every crash found so far is a regression test in the core
# (`cargo test fuzz_regressions`).
#
# The readers run under AddressSanitizer (they hold the crate's unsafe code: mmap,
# SIMD); the selector differential runs without a sanitizer for throughput (it is safe
# code doing 8 MiB histogram passes). Limits: 10 s per input, 2 GiB RSS.
set -uo pipefail
cd "$(dirname "$0")/.."
secs=${SECONDS_PER_TARGET:-60}
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(parse_number text_scan npy_scan state_bytes selector loss_f32)
status=0
summary=""
for t in "${targets[@]}"; do
  san=address
  [ "$t" = selector ] && san=none
  mkdir -p "fuzz/corpus/$t"
  cp -n fuzz/seeds/"$t"/* "fuzz/corpus/$t/" 2>/dev/null || true
  log="fuzz/artifacts/$t.log"
  mkdir -p fuzz/artifacts
  cargo +nightly fuzz run -O -s "$san" "$t" -- -max_total_time="$secs" \
    -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 >"$log" 2>&1
  rc=$?
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
  line="$t: ${runs:-?} executions in ${secs} s, exit $rc"
  if [ $rc -ne 0 ]; then
    status=1
    line="$line  <-- finding, see $log and fuzz/artifacts/$t/"
  fi
  echo "$line"
  summary="$summary$line"$'\n'
done
printf '%s' "$summary" >fuzz/artifacts/summary.txt
exit $status
