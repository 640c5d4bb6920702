#!/bin/sh
# Scale bench (issue 16): the catalog at 1k/10k/100k groups (bench/scale-catalog.ts) and, where present, machine
# records at 100k (bench/scale-machines.ts). Needs root (network namespaces). Arguments go to the catalog part.
set -eu
cd "$(dirname "$0")/.."
npm run -s build >/dev/null
node dist/bench/scale-catalog.js "$@"
if [ -f bench/scale-machines.ts ]; then node dist/bench/scale-machines.js; fi
