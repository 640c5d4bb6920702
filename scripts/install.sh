#!/usr/bin/env bash
# Build pxebox's Debian package from this checkout and install it with apt, which pulls its dependencies. Run as
# root from the repository:
#   sudo bash scripts/install.sh
# - Node.js >= 20 is checked first (scripts/deps.sh): on an older Debian it says what to do and installs nothing
# - the build tools (scripts/deps.sh build), npm packages, dist/ and the native addon, then
#   pxebox_<version>_<arch>.deb (scripts/build-deb.sh), installed with `apt-get install ./pxebox_...deb`
# - with systemd the package's postinst enables and starts the pxebox service; without systemd (containers, CI) this
#   script starts `pxebox serve` in the background (pid in /run/pxebox.pid, log in /var/log/pxebox.log)
# Either way it waits until the HTTP service answers and prints its URL. The service reads /etc/pxebox/config.yaml,
# which upgrades never overwrite.
set -euo pipefail
cd "$(dirname "$0")/.."
config=/etc/pxebox/config.yaml
bash scripts/deps.sh build
# Without an npm of the machine's own, deps.sh installed npm's release there (no Debian npm: ~340 packages).
command -v npm >/dev/null || PATH=/usr/local/lib/pxebox-npm/bin:$PATH
# Debian's nodejs has no bundled headers: node-gyp compiles the addon against libnode-dev's (it cannot download them).
[ -f /usr/include/node/node_api.h ] && export npm_config_nodedir=/usr
# better-sqlite3 (the store, src/store/sqlite.ts) compiles its SQLite here like native/: no prebuilt download from GitHub.
export npm_config_build_from_source=better-sqlite3
npm ci --no-audit --no-fund --loglevel=error
npm run -s build
deb=$(bash scripts/build-deb.sh)
echo "install: built $deb"
# --reinstall: installing the same version again (a rerun) still replaces the files; config.yaml stays as edited.
DEBIAN_FRONTEND=noninteractive apt-get install -y -q -o DPkg::Lock::Timeout=600 --reinstall "$deb" >/dev/null
# Earlier versions of this script installed to /opt/pxebox with a unit in /etc/systemd/system (which would override
# the package's) and a /usr/local/bin/pxebox link (which would shadow /usr/bin/pxebox).
if grep -qs /opt/pxebox /etc/systemd/system/pxebox.service; then
  rm -f /etc/systemd/system/pxebox.service
  [ -d /run/systemd/system ] && systemctl daemon-reload && systemctl restart pxebox.service
fi
[[ "$(readlink /usr/local/bin/pxebox 2>/dev/null)" == */dist/src/main.js ]] && rm -f /usr/local/bin/pxebox

http_port() { /usr/bin/pxebox validate --config "$config" >/dev/null && node -e '
  const { loadConfig } = await import("/usr/lib/pxebox/dist/src/config/load.js")
  const c = loadConfig(process.argv[1]); console.log(c.http.listen.split(":").pop())' --input-type=module "$config"; }

wait_http() {
  local port=$1
  for _ in $(seq 1 100); do
    if curl -fsS -o /dev/null "http://127.0.0.1:$port/" 2>/dev/null; then return 0; fi
    sleep 0.2
  done
  return 1
}

port=$(http_port)
if [ -d /run/systemd/system ]; then
  wait_http "$port" || { journalctl -u pxebox --no-pager -n 50; exit 1; }
  echo "pxebox is running under systemd (systemctl status pxebox; config $config); HTTP on port $port"
else
  if [ -f /run/pxebox.pid ] && kill -0 "$(cat /run/pxebox.pid)" 2>/dev/null; then
    pid=$(cat /run/pxebox.pid)
    kill "$pid"
    for _ in $(seq 1 25); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
  fi
  nohup /usr/bin/pxebox serve --config "$config" >>/var/log/pxebox.log 2>&1 &
  echo $! >/run/pxebox.pid
  wait_http "$port" || { tail -n 50 /var/log/pxebox.log; exit 1; }
  echo "pxebox is running (pid $(cat /run/pxebox.pid), no systemd here; config $config; log /var/log/pxebox.log; stop: kill \$(cat /run/pxebox.pid)); HTTP on port $port"
fi
