#!/bin/sh
# HTTP boot service bench: pxebox vs nginx (Debian nginx-light) on a 200 MB asset, and /ipxe at 10 and 10,000 groups.
# Needs: curl, nginx (nginx-light). Runs nginx on a random 127.0.0.1 high port with a temp config; touches no system dirs.
set -eu
cd "$(dirname "$0")/.."
command -v nginx >/dev/null || { echo "nginx not installed (apt-get install nginx-light)" >&2; exit 1; }
command -v curl >/dev/null || { echo "curl not installed" >&2; exit 1; }
# Transpile-only TypeScript loader (the one tap uses): no type checking at bench time.
export TS_NODE_TRANSPILE_ONLY=1
exec node --import @isaacs/ts-node-temp-fork-for-pr-2009/import bench/http.ts "$@"
