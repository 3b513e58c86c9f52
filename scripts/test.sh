#!/usr/bin/env bash
# The one test command (README, .ci/run): installs what the suite needs, builds, runs every test.
# Usage: scripts/test.sh [filter]   runs only test files whose path contains the filter, e.g. "e2e/tus"
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/ensure-system-deps.sh

[ -d node_modules ] || npm install --no-audit --no-fund
rm -rf dist
npx tsc -p tsconfig.json

filter="${1:-}"
mapfile -t files < <(find dist/test -name '*.test.js' | sort | grep -F -- "${filter}" || true)
if [ "${#files[@]}" -eq 0 ]; then
  echo "no test files match '${filter}'" >&2
  exit 1
fi

mkdir -p test-artifacts
tap=test-artifacts/results.tap
# Two files at a time (2-core machine); each test file starts its own servers on free ports.
# Test helpers call the AWS SDK themselves (RadosGW set-up): keep its Node-version notice out of
# the output, as the server does (src/storage/s3-client.ts).
export AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED=true
set +e
node --test --test-concurrency=2 \
  --test-reporter=spec --test-reporter-destination=stdout \
  --test-reporter=tap --test-reporter-destination="$tap" \
  "${files[@]}"
status=$?
set -e
pass=$(grep -E '^# pass ' "$tap" | tail -1 | awk '{print $3}')
fail=$(grep -E '^# fail ' "$tap" | tail -1 | awk '{print $3}')
skip=$(grep -E '^# skipped ' "$tap" | tail -1 | awk '{print $3}')
echo "${pass:-0} passed, ${fail:-0} failed, ${skip:-0} skipped"
exit "$status"
