#!/usr/bin/env bash
# Drop what a compiled npm dependency needs only to build from production node_modules (the .deb, the container):
# better-sqlite3 keeps lib/ and build/Release/better_sqlite3.node; its SQLite sources (deps/, ~10 MB) and object
# files (build/, ~17 MB) go.
#   bash scripts/slim-node-modules.sh NODE_MODULES_DIR
set -euo pipefail
dir=${1:?usage: slim-node-modules.sh NODE_MODULES_DIR}
b=$dir/better-sqlite3
[ -f "$b/build/Release/better_sqlite3.node" ] || { echo "slim-node-modules: $b/build/Release/better_sqlite3.node is missing (npm ci did not build it)" >&2; exit 2; }
tmp=$(mktemp)
cp "$b/build/Release/better_sqlite3.node" "$tmp"
rm -rf "$b/build" "$b/deps" "$b/src"
install -D -m 0644 "$tmp" "$b/build/Release/better_sqlite3.node"
rm -f "$tmp"
