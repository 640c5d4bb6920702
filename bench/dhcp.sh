#!/bin/sh
# DHCP bench: pxebox (the real daemon) vs dnsmasq, proxyDHCP and authoritative, 1,000 simulated UEFI PXE clients,
# each server alone in its own network namespace (needs root and dnsmasq). Arguments go to bench/dhcp.ts:
#   [--runs N] [--clients N] [--macs scattered|sequential] [--concurrency N] [--probe-clients N] [--skip-probe] [--only proxy|authoritative] [--etcd] [--warmup N]
set -e
cd "$(dirname "$0")/.."
command -v dnsmasq >/dev/null || { echo "dnsmasq not installed (apt-get install dnsmasq-base)" >&2; exit 1; }
# Other parts of the tree may not type-check yet; tsc still emits, so only insist on our outputs existing.
npx tsc -p tsconfig.json >/dev/null 2>&1 || true
for f in dist/bench/dhcp.js dist/bench/lib/dhcp-clients.js dist/bench/lib/ovmf-packets.js dist/bench/lib/dhcp-servers.js dist/src/main.js dist/test/helpers/pcap.js dist/test/helpers/etcd.js; do
  [ -f "$f" ] || { echo "missing $f: build failed" >&2; exit 1; }
done
exec node dist/bench/dhcp.js "$@"
