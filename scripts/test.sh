#!/usr/bin/env bash
# The one test command (README, .ci/run): installs what the suite needs, builds, runs every test.
# Usage: scripts/test.sh [test-file-filter]   e.g. scripts/test.sh hmac
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/ensure-system-deps.sh

[ -d node_modules ] || npm install --no-audit --no-fund
rm -rf dist
npx tsc -p tsconfig.json

filter="${1:-}"
mapfile -t files < <(find dist/test -name '*.test.js' | sort | grep -- "${filter}" || true)
if [ "${#files[@]}" -eq 0 ]; then
  echo "no test files match '${filter}'" >&2
  exit 1
fi
# Files run two at a time (2-core machine); each test file starts its own servers on free ports.
exec node --test --test-concurrency=2 --test-reporter=spec "${files[@]}"
