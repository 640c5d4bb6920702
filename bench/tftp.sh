#!/bin/sh
# TFTP benchmark: pxebox vs tftpd-hpa vs dnsmasq (needs root for network namespaces). Arguments go to bench/tftp.ts.
set -e
cd "$(dirname "$0")/.."
# Other parts of the tree may not type-check yet; tsc still emits, so only insist on our outputs existing.
npx tsc -p tsconfig.json >/dev/null 2>&1 || true
for f in dist/bench/tftp.js dist/bench/tftp-measure.js dist/bench/tftp-serve.js dist/bench/lib/udp-relay.js; do
  [ -f "$f" ] || { echo "missing $f: build failed" >&2; exit 1; }
done
exec node dist/bench/tftp.js "$@"
