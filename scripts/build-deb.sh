#!/usr/bin/env bash
# Build the Debian package pxebox_<version>_<arch>.deb from this checkout with dpkg-deb, after `npm ci` and
# `npm run build` (scripts/install.sh runs all three). Prints the package's path.
#   scripts/build-deb.sh [OUTDIR]     default OUTDIR: the repository root
# The package holds the compiled daemon, the native addon, the dashboard files and production node_modules only,
# under /usr/lib/pxebox; /usr/bin/pxebox; the systemd unit; /etc/pxebox/config.yaml as a conffile (an upgrade never
# overwrites it); the README under /usr/share/doc/pxebox. Boot firmware is not in it: postinst copies it from the
# ipxe, shim-signed and grub-efi-amd64-signed packages it depends on (firmware/fetch.sh), and again whenever those
# change (dpkg triggers).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
out=${1:-$repo}
[ -f dist/src/main.js ] || { echo "build-deb: dist/ is missing: npm ci && npm run build first" >&2; exit 2; }
[ -f native/build/Release/pxebox_native.node ] || { echo "build-deb: the native addon is not built: npm run build first" >&2; exit 2; }

arch=$(dpkg --print-architecture)
version=$(node -p 'require("./package.json").version')
# A checkout with git history gets its commit time in the version, so installing a newer commit is an upgrade.
if git -C "$repo" rev-parse --git-dir >/dev/null 2>&1; then
  version="$version+git$(git -C "$repo" log -1 --format=%cd --date=format-local:%Y%m%d%H%M%S).$(git -C "$repo" rev-parse --short HEAD)"
fi
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
app=$stage/usr/lib/pxebox

install -d "$app/native/build/Release" "$app/src" "$app/scripts" "$app/firmware" "$stage/DEBIAN" "$stage/usr/bin" \
  "$stage/etc/pxebox" "$stage/usr/lib/systemd/system" "$stage/usr/share/doc/pxebox"
cp package.json package-lock.json "$app/"
cp -r dist/src "$app/dist-src.tmp" && install -d "$app/dist" && mv "$app/dist-src.tmp" "$app/dist/src"
find "$app/dist" -name '*.map' -delete
install -m 0644 native/build/Release/pxebox_native.node "$app/native/build/Release/"
cp -r src/ui "$app/src/ui"
install -m 0755 scripts/demo.sh "$app/scripts/demo.sh"
install -m 0755 firmware/fetch.sh "$app/firmware/fetch.sh"
# Production dependencies only: a copy of node_modules pruned by npm against package-lock.json (no network).
cp -a node_modules "$app/node_modules"
(cd "$app" && npm prune --omit=dev --no-audit --no-fund --loglevel=error >/dev/null)
rm -rf "$app/node_modules/.cache"
bash scripts/slim-node-modules.sh "$app/node_modules"

install -m 0755 debian/pxebox "$stage/usr/bin/pxebox"
install -m 0644 debian/config.yaml "$stage/etc/pxebox/config.yaml"
install -m 0644 systemd/pxebox.service "$stage/usr/lib/systemd/system/pxebox.service"
install -m 0644 README.md config/config.example.yaml "$stage/usr/share/doc/pxebox/"
install -m 0644 debian/conffiles debian/triggers "$stage/DEBIAN/"
install -m 0755 debian/postinst debian/prerm debian/postrm "$stage/DEBIAN/"

arch_depends=''
[ "$arch" = amd64 ] && arch_depends=', shim-signed, grub-efi-amd64-signed'
size=$(du -sk --exclude=DEBIAN "$stage" | cut -f1)
sed -e "s/@VERSION@/$version/" -e "s/@ARCH@/$arch/" -e "s/@ARCH_DEPENDS@/$arch_depends/" -e "s/@SIZE@/$size/" \
  debian/control.in >"$stage/DEBIAN/control"
deb=$out/pxebox_${version}_$arch.deb
dpkg-deb --root-owner-group -Zgzip --build "$stage" "$deb" >/dev/null
echo "$deb"
