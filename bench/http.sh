#!/bin/sh
# HTTP boot service bench: pxebox vs nginx (Debian nginx-light) on a 200 MB asset, and /ipxe at 10 and 10,000 groups.
# Needs: curl, nginx (nginx-light), wrk. Runs nginx on a random 127.0.0.1 high port with a temp config; touches no system dirs.
set -eu
cd "$(dirname "$0")/.."
command -v nginx >/dev/null || { echo "nginx not installed (apt-get install nginx-light)" >&2; exit 1; }
command -v curl >/dev/null || { echo "curl not installed" >&2; exit 1; }
command -v wrk >/dev/null || { echo "wrk not installed (apt-get install wrk)" >&2; exit 1; }
# The compiled server, as the daemon runs it: a TypeScript loader in the server would put the compiler in its heap, and
# collecting that heap showed up as a third of the server's CPU samples. The build also builds the sendfile addon.
npm run -s build >/dev/null
exec node dist/bench/http.js "$@"
