#!/usr/bin/env bash
# Install and start pxebox on its default config (config/config.yaml). Run as root from the repository:
#   sudo bash scripts/install.sh
# - Debian packages and npm packages, build to dist/, iPXE firmware from Debian (firmware/fetch.sh)
# - with systemd: copies the app to /opt/pxebox, installs systemd/pxebox.service (user pxebox, capabilities, not root)
# - without systemd (containers, CI): starts `pxebox serve` in the background, log in /var/log/pxebox.log
# Either way it waits until the HTTP service answers and prints its URL.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
bash scripts/deps.sh runtime
npm ci --no-audit --no-fund --loglevel=error
npm run -s build
chmod +x dist/src/main.js
bash firmware/fetch.sh
mkdir -p assets

http_port() { node -e '
  const { loadConfig } = await import(process.argv[1] + "/dist/src/config/load.js")
  const c = loadConfig(process.argv[2]); console.log(c.http.listen.split(":").pop())' --input-type=module "$1" "$2"; }

wait_http() {
  local port=$1
  for _ in $(seq 1 50); do
    if curl -fsS -o /dev/null "http://127.0.0.1:$port/" 2>/dev/null; then return 0; fi
    sleep 0.2
  done
  return 1
}

if [ -d /run/systemd/system ]; then
  app=/opt/pxebox
  mkdir -p "$app"
  cp -a package.json package-lock.json dist native node_modules firmware assets config systemd "$app"/
  id pxebox >/dev/null 2>&1 || useradd --system --home-dir /var/lib/pxebox --shell /usr/sbin/nologin pxebox
  ln -sf "$app/dist/src/main.js" /usr/local/bin/pxebox
  install -m 0644 systemd/pxebox.service /etc/systemd/system/pxebox.service
  systemctl daemon-reload
  systemctl enable --now pxebox.service
  systemctl restart pxebox.service
  port=$(http_port "$app" "$app/config/config.yaml")
  wait_http "$port" || { journalctl -u pxebox --no-pager -n 50; exit 1; }
  echo "pxebox is running under systemd (systemctl status pxebox); HTTP on port $port"
else
  ln -sf "$repo/dist/src/main.js" /usr/local/bin/pxebox
  if [ -f /run/pxebox.pid ] && kill -0 "$(cat /run/pxebox.pid)" 2>/dev/null; then kill "$(cat /run/pxebox.pid)"; sleep 1; fi
  nohup node "$repo/dist/src/main.js" serve --config "$repo/config/config.yaml" >>/var/log/pxebox.log 2>&1 &
  echo $! >/run/pxebox.pid
  port=$(http_port "$repo" "$repo/config/config.yaml")
  wait_http "$port" || { tail -n 50 /var/log/pxebox.log; exit 1; }
  echo "pxebox is running (pid $(cat /run/pxebox.pid), no systemd here; log /var/log/pxebox.log; stop: kill \$(cat /run/pxebox.pid)); HTTP on port $port"
fi
