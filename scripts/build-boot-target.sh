#!/usr/bin/env bash
# Build the e2e boot target: a Debian kernel (vmlinuz) and a tiny busybox initramfs (initrd.img) whose /init prints a
# PXEBOX-MARKER line with the machine's MAC and the config it fetched from pxebox, then powers off.
# (scripts/boot-target/init explains the boot-side steps.)
#
# Usage: scripts/build-boot-target.sh [OUTDIR]        (default: <repo>/.cache/boot-target, git-ignored)
# Output: OUTDIR/vmlinuz, OUTDIR/initrd.img, OUTDIR/manifest.txt (what went in).
#
# Only Debian's own archive is used (apt-get download): the tests must not depend on third-party downloads, and the
# kernel is the one Debian machines really run. Nothing is installed on the host: the packages are unpacked with
# dpkg-deb -x into a temporary directory.
# Idempotent: if the outputs exist and were built from the same package versions and the same boot-target files,
# it does nothing (and needs no network). Needs: apt-get, dpkg-deb, cpio, gzip, flock.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out=${1:-$repo/.cache/boot-target}
src=$repo/scripts/boot-target

# The modules virtio-net needs, in dependency order: Debian's kernels build them as modules and we insmod them
# without modules.dep (measured order, docs/vm-boot.md). Keep in sync with the loop in scripts/boot-target/init.
modules=(virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci failover net_failover virtio_net)

for tool in apt-get apt-cache dpkg-deb cpio gzip sha256sum flock; do
  command -v "$tool" >/dev/null || { echo "build-boot-target: $tool not found" >&2; exit 1; }
done

# The cloud flavour is about half the size of the generic one and has everything a VM needs; the metapackage names
# the current ABI's image package (linux-image-<abi>-cloud-amd64), which is what we download.
# Test files run in parallel and each makes sure the target exists: one builder at a time, the others wait and then
# find it up to date.
mkdir -p "$out"
exec 9>"$out/.lock"
flock 9

meta=${PXEBOX_KERNEL_META:-linux-image-cloud-amd64}
kpkg=$(apt-cache depends --important "$meta" 2>/dev/null | awk '$1 == "Depends:" { print $2; exit }')
if [ -z "$kpkg" ]; then
  echo "build-boot-target: cannot resolve $meta (run apt-get update?)" >&2
  exit 1
fi
kver=$(apt-cache policy "$kpkg" | awk '$1 == "Candidate:" { print $2 }')
bbver=$(apt-cache policy busybox-static | awk '$1 == "Candidate:" { print $2 }')
srchash=$(cat "$src/init" "$src/udhcpc.script" "${BASH_SOURCE[0]}" | sha256sum | cut -d' ' -f1)
stamp="kernel=$kpkg $kver busybox-static=$bbver boot-target=$srchash"

if [ -f "$out/vmlinuz" ] && [ -f "$out/initrd.img" ] && [ "$(head -1 "$out/manifest.txt" 2>/dev/null)" = "$stamp" ]; then
  echo "build-boot-target: up to date in $out"
  exit 0
fi

mkdir -p "$out/debs"
work=$(mktemp -d "${TMPDIR:-/tmp}/pxebox-boot-target.XXXXXX")
trap 'rm -rf "$work"' EXIT

# Cache the .debs next to the output (file names carry the version without its epoch, or with ':' as %3a) so a rebuild after editing /init needs no network.
# APT::Sandbox::User=root: apt's _apt user cannot write into a root-owned cache dir (it would only warn).
fetch() { # fetch PKG VERSION -> path of the .deb
  local deb
  deb=$(ls "$out/debs/$1"_*.deb 2>/dev/null | grep -F "${2#*:}_" | head -1 || true)
  if [ -z "$deb" ]; then
    (cd "$out/debs" && apt-get download -q -o APT::Sandbox::User=root "$1=$2" >&2)
    deb=$(ls "$out/debs/$1"_*.deb | grep -F "${2#*:}_" | head -1)
  fi
  echo "$deb"
}
kdeb=$(fetch "$kpkg" "$kver")
bbdeb=$(fetch busybox-static "$bbver")

dpkg-deb -x "$kdeb" "$work/kernel"
dpkg-deb -x "$bbdeb" "$work/busybox"
vmlinuz=$(ls "$work"/kernel/boot/vmlinuz-* | head -1)
moddir=$(ls -d "$work"/kernel/lib/modules/* | head -1)

# The initramfs tree: busybox (static, so no libc needed), /init, the udhcpc hook and the virtio modules, flat in
# /lib/modules so /init can insmod them by name.
root=$work/root
mkdir -p "$root"/{bin,dev,proc,sys,run,etc,lib/modules}
install -m 0755 "$work/busybox/bin/busybox" "$root/bin/busybox"
install -m 0755 "$src/init" "$root/init"
install -m 0755 "$src/udhcpc.script" "$root/etc/udhcpc.script"
for m in "${modules[@]}"; do
  f=$(find "$moddir/kernel" -name "$m.ko*" | head -1)
  [ -n "$f" ] || { echo "build-boot-target: module $m not in $kpkg" >&2; exit 1; }
  case "$f" in
    *.ko) cp "$f" "$root/lib/modules/$m.ko" ;;
    *.ko.xz) xz -dc "$f" >"$root/lib/modules/$m.ko" ;;
    *.ko.zst) zstd -qdc "$f" >"$root/lib/modules/$m.ko" ;;
    *) echo "build-boot-target: unknown module format $f" >&2; exit 1 ;;
  esac
done
# The kernel opens /dev/console before running /init (before devtmpfs is mounted): without this node the early
# serial output of /init would be lost.
if [ "$(id -u)" = 0 ]; then mknod -m 600 "$root/dev/console" c 5 1; fi

# cpio newc + gzip: the format the kernel unpacks; --reproducible and fixed owners keep the image stable.
(cd "$root" && find . -print0 | LC_ALL=C sort -z | cpio --null --create --format=newc --owner=0:0 --reproducible --quiet) \
  | gzip -9n >"$work/initrd.img"

install -m 0644 "$vmlinuz" "$out/vmlinuz.new" && mv -f "$out/vmlinuz.new" "$out/vmlinuz"
install -m 0644 "$work/initrd.img" "$out/initrd.img.new" && mv -f "$out/initrd.img.new" "$out/initrd.img"
{
  echo "$stamp"
  echo "vmlinuz: $(basename "$vmlinuz") $(stat -c %s "$out/vmlinuz") bytes"
  echo "initrd.img: $(stat -c %s "$out/initrd.img") bytes, modules: ${modules[*]}"
} >"$out/manifest.txt"
echo "build-boot-target: built $out ($(basename "$vmlinuz"), initrd $(stat -c %s "$out/initrd.img") bytes)"
