#!/usr/bin/env bash
# A Debian 13 (trixie) minbase root file system with systemd, as a tarball the deploy tests unpack: the guest for
# systemd.test.ts and the base image for container.test.ts. debootstrap takes ~80 s, so the tarball is cached under
# /var/cache/pxebox-test, keyed by suite, package list and date (a new day fetches the archive's current packages).
#   test/deploy/rootfs.sh [SUITE [PACKAGES]]    prints the tarball's path, building it first when needed
# Default: trixie with systemd,systemd-sysv,dbus,ca-certificates,sudo. old-debian.test.ts asks for bookworm.
set -euo pipefail
suite=${1:-trixie}
include=${2:-systemd,systemd-sysv,dbus,ca-certificates,sudo}
mirror=$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -1)
mirror=${mirror:-http://deb.debian.org/debian}
cache=/var/cache/pxebox-test
key=$(printf '%s %s %s' "$suite" "$include" "$mirror" | sha256sum | cut -c1-12)
tarball=$cache/$suite-minbase-$key-$(date -u +%Y%m%d).tar
mkdir -p "$cache"
# Both deploy tests may ask at once (tap runs two files in parallel): one builds, the other waits for it.
exec 9>"$cache/.lock"
flock 9
if [ ! -s "$tarball" ]; then
  work=$(mktemp -d "$cache/build.XXXXXX")
  trap 'rm -rf "$work"' EXIT
  debootstrap --variant=minbase --include="$include" "$suite" "$work/root" "$mirror" >"$work/log" 2>&1 ||
    { tail -n 20 "$work/log" >&2; exit 1; }
  tar -C "$work/root" -cf "$tarball.tmp" .
  mv "$tarball.tmp" "$tarball"
  # Older tarballs (another day, another package list) are stale.
  find "$cache" -maxdepth 1 -name "$suite-minbase-*.tar" ! -path "$tarball" -delete
fi
echo "$tarball"
