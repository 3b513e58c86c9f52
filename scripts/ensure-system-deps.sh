#!/usr/bin/env bash
# Installs the Debian packages the test suite runs for real (as root), or names the command to run.
# apt-get update runs only when something is missing.
set -euo pipefail
wanted=(
  # XMPP end to end (test/e2e/xmpp-*): Prosody 0.12 with mod_http_upload_external, LuaSec for
  # its TLS, and two real XEP-0363 clients (go-sendxmpp; slixmpp, whose upload needs aiohttp).
  prosody prosody-modules lua-sec go-sendxmpp python3-slixmpp python3-aiohttp
  # Browser end to end (test/e2e/browser-*): Debian's Chromium, driven by playwright-core.
  chromium
  # Self-signed certificates for the test Prosody; the README recipes' HMAC signing.
  openssl
  # Redis for the readiness check and cluster mode (test/helpers/ops.ts startRedis).
  redis-server
  # A second stock tus client (test/e2e/tus-clients.test.ts), run with Debian's python3.
  python3-tuspy
  # S3 (test/helpers/rgw.ts): a throw-away Ceph cluster (mon, memstore OSD) with RadosGW;
  # ceph-common has ceph, ceph-authtool and radosgw-admin, ceph-base has monmaptool.
  ceph-mon ceph-osd radosgw ceph-common ceph-base
  # clamd for malware scanning (test/helpers/clamd.ts startClamd; the tests write their own signatures).
  clamav-daemon
  # mount/umount of the small tmpfs the storage-pressure tests fill (test/helpers/tmpfs.ts).
  mount
  # Reverse proxies in front of the RUFH door (test/e2e/rufh-proxies.test.ts): what each does
  # with our 104 interim response, started on loopback ports with generated configs.
  nginx caddy haproxy
)
need=()
for pkg in "${wanted[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || need+=("$pkg")
done
[ "${#need[@]}" -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "missing system packages: ${need[*]}; run: sudo apt-get update && sudo apt-get install -y --no-install-recommends ${need[*]}" >&2
  exit 1
fi
echo "installing system packages: ${need[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
