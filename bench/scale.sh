#!/bin/sh
# Scale bench (issue 16): the catalog at 1k/10k/100k groups (bench/scale-catalog.ts) and, where present, machine
# records at 100k (bench/scale-machines.ts). Needs root (network namespaces). Arguments go to the catalog part, but
# --no-machines, which skips the machine records part (a catalog-only before/after run).
set -eu
cd "$(dirname "$0")/.."
machines=yes
for a in "$@"; do
  shift
  if [ "$a" = "--no-machines" ]; then machines=no; else set -- "$@" "$a"; fi
done
npm run -s build >/dev/null
node dist/bench/scale-catalog.js "$@"
if [ "$machines" = yes ] && [ -f bench/scale-machines.ts ]; then node dist/bench/scale-machines.js; fi
