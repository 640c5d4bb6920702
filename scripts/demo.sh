#!/usr/bin/env bash
# pxebox demo: one UEFI VM network-boots through pxebox, inside a private network namespace, and you watch it.
#   sudo pxebox demo            (or: sudo bash scripts/demo.sh)
# Builds a namespace with a bridge (the PXE VLAN), a site DHCP server (dnsmasq, addresses only, as at a real site),
# pxebox in proxy mode on the bridge, and an OVMF VM whose own EDK2 PXE client boots: proxy offer -> 4011 ->
# snponly.efi over TFTP -> iPXE -> script, kernel and initrd over HTTP -> Linux fetches its Ignition and powers off.
# Streams the VM console ([vm]) and pxebox's record of the machine ([pxebox]); removes everything on exit.
# Traffic stays inside the namespaces (10.213.99.0/24).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
if [ "$(id -u)" != 0 ]; then echo "pxebox demo: run as root (it creates network namespaces and a tap device)" >&2; exit 2; fi
for bin in qemu-system-x86_64 dnsmasq ip curl; do
  command -v "$bin" >/dev/null || { echo "pxebox demo: $bin missing; run: sudo bash scripts/deps.sh test" >&2; exit 2; }
done
[ -f /usr/share/OVMF/OVMF_CODE.fd ] || { echo "pxebox demo: OVMF missing; run: sudo bash scripts/deps.sh test" >&2; exit 2; }
[ -f "$repo/dist/src/main.js" ] || { echo "pxebox demo: build first: npm ci && npm run build" >&2; exit 2; }

ns=pxebox-demo
site=pxebox-demo-site
net=10.213.99
mac=52:54:00:de:00:01
uuid=8d3c1f2e-0000-4000-8000-525400de0001
tmp=$(mktemp -d /tmp/pxebox-demo.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  ip netns del "$ns" 2>/dev/null || true
  ip netns del "$site" 2>/dev/null || true
  rm -rf "$tmp"
  echo "demo: cleaned up (namespaces $ns, $site and $tmp removed)"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "demo: building the boot target (Debian kernel + busybox initramfs) and firmware"
bash "$repo/scripts/build-boot-target.sh" "$repo/.cache/boot-target" >/dev/null
bash "$repo/firmware/fetch.sh" >/dev/null

ip netns del "$ns" 2>/dev/null || true
ip netns del "$site" 2>/dev/null || true
ip netns add "$ns"
ip netns add "$site"
ip -n "$ns" link set lo up
ip -n "$ns" link add br0 type bridge
ip -n "$ns" addr add "$net.1/24" dev br0
ip -n "$ns" link set br0 up
ip -n "$ns" link add vsite type veth peer name eth0 netns "$site"
ip -n "$ns" link set vsite master br0 up
ip -n "$site" addr add "$net.2/24" dev eth0
ip -n "$site" addr add "fd00:213:99::2/64" dev eth0
ip -n "$site" link set eth0 up
ip -n "$ns" tuntap add tap0 mode tap
ip -n "$ns" link set tap0 master br0 up

# The site's DHCP server: addresses only, plus IPv6 router advertisements (without any RA, iPXE waits ~16 s).
ip netns exec "$site" dnsmasq --keep-in-foreground --user=root --port=0 --pid-file= --dhcp-leasefile="$tmp/site.leases" \
  --dhcp-range="$net.100,$net.150,255.255.255.0,1h" --enable-ra --dhcp-range=fd00:213:99::,ra-only \
  --log-dhcp --log-facility="$tmp/site.log" >>"$tmp/site.log" 2>&1 &
pids+=($!)

mkdir -p "$tmp/assets" "$tmp/ignition" "$tmp/data"
cp "$repo/.cache/boot-target/vmlinuz" "$repo/.cache/boot-target/initrd.img" "$tmp/assets/"
echo '{"ignition":{"version":"3.4.0"},"storage":{"files":[{"path":"/etc/motd","contents":{"source":"data:,booted%20by%20pxebox%20demo"}}]}}' >"$tmp/ignition/demo.ign"
cat >"$tmp/config.yaml" <<YAML
interface: br0
address: $net.1
data_dir: $tmp/data
assets_dir: $tmp/assets
ignition_dir: $tmp/ignition
dhcp: { mode: proxy }
tftp: { root: $repo/firmware }
http: { listen: "$net.1:8080" }
profiles:
  demo:
    boot:
      kernel: /assets/vmlinuz
      initrd: ["--name initrd.img /assets/initrd.img"]
      args: [initrd=initrd.img, console=ttyS0, quiet, "pxebox.url=http://$net.1:8080"]
    ignition: demo.ign
groups:
  - { id: demo, profile: demo, selector: { mac: "$mac" } }
YAML
ip netns exec "$ns" node "$repo/dist/src/main.js" serve --config "$tmp/config.yaml" >"$tmp/pxebox.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 50); do grep -q 'ready' "$tmp/pxebox.log" && break; sleep 0.2; done
sed -n '/ready/,/boot /p' "$tmp/pxebox.log"

cp /usr/share/OVMF/OVMF_VARS.fd "$tmp/vars.fd"
: >"$tmp/console.log"
start=$(date +%s)
ip netns exec "$ns" qemu-system-x86_64 -accel tcg -machine q35,graphics=off -m 512 -smp 1 -nodefaults -display none \
  -serial "file:$tmp/console.log" -uuid "$uuid" -no-reboot \
  -netdev tap,id=n0,ifname=tap0,script=no,downscript=no -device "virtio-net-pci,netdev=n0,mac=$mac,romfile=" \
  -drive if=pflash,format=raw,unit=0,readonly=on,file=/usr/share/OVMF/OVMF_CODE.fd \
  -drive "if=pflash,format=raw,unit=1,file=$tmp/vars.fd" &
qemu=$!
pids+=($qemu)
echo "demo: VM $mac started (OVMF, native UEFI PXE; TCG emulation, about 20-30 s to Linux)"
tail -n +1 -F "$tmp/console.log" 2>/dev/null | tr -d '\r' | grep --line-buffered -v '^\s*$' | sed -u 's/^/[vm] /' &
pids+=($!)

last=""
while kill -0 "$qemu" 2>/dev/null; do
  view=$(ip netns exec "$ns" curl -fsS "http://$net.1:8080/v1/machines/$mac" 2>/dev/null | node -e '
    let s = ""; process.stdin.on("data", (d) => (s += d)).on("end", () => {
      try { const m = JSON.parse(s); console.log(`${m.status}: ${m.summary ?? m.stage ?? ""}`) } catch { } })' || true)
  if [ -n "$view" ] && [ "$view" != "$last" ]; then echo "[pxebox] $view"; last=$view; fi
  if grep -q 'PXEBOX-MARKER' "$tmp/console.log"; then sleep 1; break; fi
  if [ $(( $(date +%s) - start )) -gt 240 ]; then echo "demo: no marker after 240 s; pxebox log:"; tail -n 30 "$tmp/pxebox.log"; exit 1; fi
  sleep 1
done
marker=$(grep -a -m1 'PXEBOX-MARKER' "$tmp/console.log" | tr -d '\r' || true)
echo
if [ -n "$marker" ]; then
  echo "demo: the VM reached Linux and fetched its config in $(( $(date +%s) - start )) s:"
  config=$(sed -n 's/.* config=\([^ ]*\).*/\1/p' <<<"$marker" | base64 -d 2>/dev/null || true)
  echo "  $config"
else
  echo "demo: the VM stopped without reaching Linux; console and pxebox log are above"
  exit 1
fi
echo "[pxebox] $(ip netns exec "$ns" curl -fsS "http://$net.1:8080/v1/machines/$mac" | node -e '
  let s = ""; process.stdin.on("data", (d) => (s += d)).on("end", () => { const m = JSON.parse(s)
    const steps = (m.timeline ?? []).map((x) => x.stage ?? x.step).join(" -> ")
    console.log(`${m.status}: ${steps || m.summary}`) })' 2>/dev/null || true)"
