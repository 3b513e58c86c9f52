#!/usr/bin/env bash
# Installs the Debian packages the test suite runs for real (as root), or names the command to run.
set -euo pipefail
need=()
# (nothing yet: the suite needs no system service today; redis-server joins when cluster mode lands)
[ "${#need[@]}" -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "missing system packages: ${need[*]}; run: sudo apt-get update && sudo apt-get install -y ${need[*]}" >&2
  exit 1
fi
echo "installing system packages: ${need[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
