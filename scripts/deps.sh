#!/usr/bin/env bash
# Install what pxebox needs on a Debian machine. Run as root.
#   scripts/deps.sh runtime   what the daemon needs to run
#   scripts/deps.sh test      plus what the test suite and benchmarks drive (real clients, QEMU, peers)
# Then `npm ci` for the npm packages (package-lock.json).
set -euo pipefail
what=${1:-runtime}
# tcpdump (ARP capture) and arping (RFC 5227 probe, Habets' arping) serve address tracking, with CAP_NET_RAW only.
runtime=(ca-certificates curl iproute2 libcap2-bin ipxe tcpdump arping)
# Tests talk to real things: tftp clients, dnsmasq as the site DHCP server, QEMU booting OVMF/SeaBIOS+iPXE,
# tcpdump for captures, arping/udhcpc for address tracking, nginx/tftpd-hpa as benchmark peers.
# chromium renders the dashboard for its browser test (driven by playwright-core, no browser download).
# dosfstools and mtools build the EFI system partition of the UEFI install-once and Secure Boot VMs' disks.
testing=(qemu-system-x86 ovmf ipxe-qemu dnsmasq-base busybox-static cpio tftp-hpa atftp isc-dhcp-client
  nginx-light wrk tftpd-hpa chromium util-linux gzip python3 g++ make dosfstools mtools)
pkgs=("${runtime[@]}")
[ "$what" = test ] && pkgs+=("${testing[@]}")

if [ "$(id -u)" != 0 ]; then
  echo "deps: run as root (apt-get install), e.g. sudo $0 $what" >&2
  exit 2
fi
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ! command -v node >/dev/null || [ "$(node -p 'process.versions.node.split(".")[0]')" -lt 20 ]; then
  missing+=(nodejs npm)
fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q -o DPkg::Lock::Timeout=600 >/dev/null
  apt-get install -y -q -o DPkg::Lock::Timeout=600 --no-install-recommends "${missing[@]}" >/dev/null
fi
major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$major" -lt 20 ]; then
  echo "deps: pxebox needs Node.js 20 or newer, this machine has $(node --version); install Node 20 (e.g. from NodeSource) and rerun" >&2
  exit 2
fi
echo "deps: Debian packages ready ($what)"
