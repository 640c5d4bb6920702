#!/bin/sh
# Abuse soak bench (issue 13): pxebox under every flood at once while one valid PXE client boots again and again, in
# network namespaces of its own (needs root and python3). Arguments go to bench/abuse.ts, e.g.:
#   bench/abuse.sh                      10 minutes, proxy mode, every flood
#   bench/abuse.sh --duration 60        a quick run
#   bench/abuse.sh --without port0      every flood but the one that kills today's main at once
#   bench/abuse.sh --mode authoritative
set -eu
cd "$(dirname "$0")/.."
command -v python3 >/dev/null || { echo "python3 not installed (the port 0 flood needs a raw socket)" >&2; exit 1; }
# The compiled server, as the daemon runs it (never the TypeScript loader: its compiler would sit in pxebox's heap and
# in the RSS this bench measures). The build also builds the native addon.
npm run -s build >/dev/null
# One TFTP-holding socket per request, up to 520 per attacker address.
ulimit -n 16384 2>/dev/null || true
# The namespaces are named after this shell, so the trap can remove them (and stop what runs in them, by PID) even
# when the node process was killed before its own cleanup.
tag="pxab$(( $$ % 10000 ))"
cleanup() {
  for ns in "${tag}s" "${tag}a" "${tag}b" "${tag}c"; do
    pids=$(ip netns pids "$ns" 2>/dev/null || true)
    [ -n "$pids" ] && kill -9 $pids 2>/dev/null || true
    ip netns del "$ns" 2>/dev/null || true
  done
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
node dist/bench/abuse.js --tag "$tag" "$@"
