#!/usr/bin/env bash
# Install what pxebox needs on a Debian machine. Run as root.
#   scripts/deps.sh build     what building the Debian package needs (scripts/install.sh): Node.js >= 20 with npm
#                             and its headers, and the compiler for the native addon. Without an npm on PATH, npm's
#                             own release (pinned below, checked against its sha512) goes to /usr/local/lib/pxebox-npm
#   scripts/deps.sh runtime   what the daemon needs to run from a checkout (the package depends on the same)
#   scripts/deps.sh test      build and runtime, plus what the test suite and benchmarks drive
# Then `npm ci` for the npm packages (package-lock.json).
# Node.js >= 20 is checked before anything is installed: Debian 13 (trixie) has nodejs 20 in main; Debian 12
# (bookworm) has only 18, and there this script stops and says what to do.
set -euo pipefail
what=${1:-runtime}
# The native addon (native/) is compiled by node-gyp: python3, make, g++.
build=(ca-certificates curl python3 make g++)
# tcpdump (ARP capture) and arping (RFC 5227 probe, Habets' arping) serve address tracking, with CAP_NET_RAW only;
# ipxe, shim-signed and grub-efi-amd64-signed are what firmware/fetch.sh copies.
runtime=(ca-certificates curl iproute2 ipxe tcpdump arping)
# Tests talk to real things: tftp clients, dnsmasq as the site DHCP server, QEMU booting OVMF/SeaBIOS+iPXE,
# tcpdump for captures, arping/udhcpc for address tracking, nginx/tftpd-hpa as benchmark peers.
# chromium renders the dashboard for its browser test (driven by playwright-core, no browser download).
# debootstrap, systemd-container, podman and runc run the deployment tests (test/deploy/).
# dosfstools and mtools build the EFI system partition of the UEFI install-once and Secure Boot VMs' disks.
# etcd-server is the etcd the fleet tests start as a 3-member cluster of their own (test/helpers/etcd.ts; on a
# systemd machine the package also starts a default etcd on 127.0.0.1:2379, which the tests do not use); openssl makes
# the certificates of the etcd TLS test.
testing=(qemu-system-x86 ovmf ipxe-qemu dnsmasq-base busybox-static cpio tftp-hpa atftp isc-dhcp-client
  nginx-light wrk tftpd-hpa chromium util-linux gzip debootstrap systemd-container podman runc iptables dosfstools mtools
  etcd-server openssl)
case "$what" in
  build) pkgs=("${build[@]}") ;;
  runtime) pkgs=("${runtime[@]}") ;;
  test) pkgs=("${build[@]}" "${runtime[@]}" "${testing[@]}") ;;
  *) echo "deps: unknown set \"$what\" (build, runtime or test)" >&2; exit 2 ;;
esac

if [ "$(id -u)" != 0 ]; then
  echo "deps: run as root (apt-get install), e.g. sudo $0 $what" >&2
  exit 2
fi
export DEBIAN_FRONTEND=noninteractive
apt_get() { apt-get -q -o DPkg::Lock::Timeout=600 "$@"; }
apt_get update >/dev/null

# Node.js: the one on PATH, else the nodejs package apt would install. Checked first, so an unsupported release
# gets the message before anything is installed.
major() { sed -E 's/^[0-9]+://; s/^v//; s/[^0-9].*$//' <<<"$1"; }
if command -v node >/dev/null; then
  have=$(node --version)
  found="Node.js $have"
else
  have=$(apt-cache policy nodejs | awk '/Candidate:/ { print $2 }')
  found="the nodejs package ${have:-(none)}"
fi
if [ -z "$have" ] || [ "$have" = "(none)" ] || [ "$(major "$have")" -lt 20 ]; then
  . /etc/os-release 2>/dev/null || true
  cat >&2 <<MSG
deps: pxebox needs Node.js 20 or newer; this machine ($PRETTY_NAME) has $found. Nothing was installed.
  - Debian 13 (trixie) ships nodejs 20 in main: upgrade this machine (or use a Debian 13 one), then rerun; or
  - install Node.js >= 20 from another source first (its nodejs package, e.g. NodeSource's), then rerun; or
  - run pxebox as a container, which brings its own Debian 13 and Node 20 (README.md, "Running as a container").
MSG
  exit 2
fi

# npm for building only (the package itself depends on nodejs alone: node_modules is built into it). Debian's npm
# package is npm 9 split into ~340 node-* packages, most of the time a build on a fresh Debian 13 spent in apt and
# dpkg; npm's own release is one tarball with its dependencies bundled. Pinned and checked against the registry's
# sha512 (its `dist.integrity`), like package-lock.json does for every other package. install.sh puts it on PATH.
npm_version=10.9.2
npm_sha512=iriPEPIkoMYUy3F6f3wwSZAU93E0Eg6cHwIR6jzzOXWSy+SD/rOODEs74cVONHKSx2obXtuUoyidVEhISrisgQ==
npm_dir=/usr/local/lib/pxebox-npm
install_npm() {
  [ "$(node "$npm_dir/npm/bin/npm-cli.js" --version 2>/dev/null)" = "$npm_version" ] && return 0
  local tgz
  tgz=$(mktemp)
  curl -fsSL --retry 3 -o "$tgz" "https://registry.npmjs.org/npm/-/npm-$npm_version.tgz"
  if [ "$(openssl dgst -sha512 -binary "$tgz" | base64 -w0)" != "$npm_sha512" ]; then
    rm -f "$tgz"
    echo "deps: npm-$npm_version.tgz from the registry does not match its pinned sha512; nothing installed" >&2
    exit 1
  fi
  rm -rf "$npm_dir" && mkdir -p "$npm_dir/npm" "$npm_dir/bin"
  tar -xzf "$tgz" -C "$npm_dir/npm" --strip-components=1 --no-same-owner
  rm -f "$tgz"
  # Read the machine's /etc/npmrc (proxy, CA file) as Debian's npm does; this npm would look in /usr/etc/npmrc.
  echo 'globalconfig=/etc/npmrc' >"$npm_dir/npm/npmrc"
  # npm's own bin/npm looks for itself next to the node binary; these run it where it is.
  for cmd in npm npx; do
    printf '#!/bin/sh\nexec node %s/npm/bin/%s-cli.js "$@"\n' "$npm_dir" "$cmd" >"$npm_dir/bin/$cmd"
    chmod 0755 "$npm_dir/bin/$cmd"
  done
  echo "deps: npm $npm_version (the registry's release, sha512 checked) in $npm_dir"
}

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }
missing=()
for p in "${pkgs[@]}"; do installed "$p" || missing+=("$p"); done
command -v node >/dev/null || missing+=(nodejs)
if [ "$what" != runtime ]; then
  # Debian's nodejs has npm and the headers node-gyp compiles against in packages of their own; a nodejs package
  # from elsewhere (NodeSource's) carries both.
  [ -f /usr/include/node/node_api.h ] || missing+=(libnode-dev)
fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "deps: installing ${missing[*]}"
  apt_get install -y --no-install-recommends "${missing[@]}" >/dev/null
fi
if [ "$what" != runtime ] && ! command -v npm >/dev/null; then install_npm; fi
echo "deps: Debian packages ready ($what; Node.js $(node --version))"
