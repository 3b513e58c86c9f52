#!/usr/bin/env bash
# Benchmarks (never part of npm test): builds, then runs every dist/test/bench/*.bench.js in turn.
# Env: BENCH_SIZE (upload size, default 1GiB, e.g. BENCH_SIZE=256MiB for a quick run),
#      BENCH_RUNS (measurements per server, default 2; the median is printed),
#      BENCH_SCAN_SIZE (file scanned by clamd in scan.bench, default 256MiB, at most 1GiB).
#      BENCH_FILTER (run only the benches whose file name contains it, e.g. BENCH_FILTER=handoff).
#      BENCH_QUICK=1: a CI-sized run (about a minute on 2 cores): smaller sizes and counts in every
#      bench (each bench's header says which), and scan/handoff skipped unless BENCH_FILTER names them.
set -euo pipefail
cd "$(dirname "$0")/.."

npx tsc -p tsconfig.json

if [ "${BENCH_QUICK:-}" = "1" ]; then
  export BENCH_QUEUE_JOBS="${BENCH_QUEUE_JOBS:-2000}" BENCH_RESTORE_JOBS="${BENCH_RESTORE_JOBS:-100000}" BENCH_HASH_SIZE="${BENCH_HASH_SIZE:-64MiB}"
fi

shopt -s nullglob
benches=(dist/test/bench/*.bench.js)
if [ "${#benches[@]}" -eq 0 ]; then
  echo "bench failed: no dist/test/bench/*.bench.js after the build" >&2
  exit 1
fi
for bench in "${benches[@]}"; do
  if [ -n "${BENCH_FILTER:-}" ] && [[ "${bench}" != *"${BENCH_FILTER}"* ]]; then continue; fi
  if [ "${BENCH_QUICK:-}" = "1" ] && [ -z "${BENCH_FILTER:-}" ] && [[ "${bench}" == *scan* || "${bench}" == *handoff* ]]; then continue; fi
  echo "== ${bench}"
  node "${bench}"
done
