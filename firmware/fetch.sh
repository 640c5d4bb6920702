#!/usr/bin/env bash
# Fill this folder with the boot firmware pxebox serves over TFTP, copied from Debian packages, and write
# manifest.json, which the daemon checks every file against at start (src/firmware.ts).
#   firmware/fetch.sh          copy, verify, write manifest.json (installs a missing package first; root for that)
# No binaries are committed: this script is how a machine gets them. Each file is verified against the installed
# package's own checksum list (/var/lib/dpkg/info/<package>.md5sums), which dpkg wrote from an archive apt had
# verified with Debian's signed Release file. That holds on every release (Debian 12's and 13's iPXE builds differ),
# where hashes pinned in this repository held only on the release they were taken from. manifest.json records each
# file's SHA-256 and the package version it came from.
# Debian builds iPXE for x86 only: there is no arm64 snponly.efi to copy; ARM64 clients need a file you provide
# under firmware/arm64/. Secure Boot's signed shim and GRUB (shim-signed, grub-efi-amd64-signed) exist on amd64 only;
# elsewhere they are skipped.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

# file in this folder | Debian package | path in the package | what it boots
table=(
  "undionly.kpxe|ipxe|/usr/lib/ipxe/undionly.kpxe|x86 BIOS PXE (option 93 = 0)"
  "ipxe.efi|ipxe|/usr/lib/ipxe/ipxe.efi|UEFI x86-64 (option 93 = 7, 9), native NIC drivers"
  "snponly.efi|ipxe|/usr/lib/ipxe/snponly.efi|UEFI x86-64 via the firmware's SNP driver; UEFI HTTP boot"
  "shimx64.efi|shim-signed|/usr/lib/shim/shimx64.efi.signed|UEFI x86-64 Secure Boot: Microsoft-signed shim, loads grubx64.efi"
  "grubx64.efi|grub-efi-amd64-signed|/usr/lib/grub/x86_64-efi-signed/grubnetx64.efi.signed|UEFI x86-64 Secure Boot: Debian-signed network GRUB"
)
required=(ipxe)
optional=()
[ "$(dpkg --print-architecture)" = amd64 ] && optional=(shim-signed grub-efi-amd64-signed)

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }
missing=()
for p in "${required[@]}" "${optional[@]}"; do installed "$p" || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "firmware: installing Debian's ${missing[*]}" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q -o DPkg::Lock::Timeout=600 --no-install-recommends "${missing[@]}" >/dev/null ||
      echo "firmware: could not install ${missing[*]}" >&2
  else
    echo "firmware: ${missing[*]} not installed (run as root to install)" >&2
  fi
fi

status=0
entries=()
for row in "${table[@]}"; do
  IFS='|' read -r file package path purpose <<<"$row"
  if ! installed "$package"; then
    if [[ " ${required[*]} " == *" $package "* ]]; then echo "firmware: $file: package $package is not installed" >&2; status=1; fi
    rm -f "${here:?}/$file"
    continue
  fi
  version=$(dpkg-query -W -f='${Version}' "$package")
  # ipxe.efi is a symlink into /boot on Debian 12; dpkg lists the file where the package ships it.
  real=$(readlink -f "$path")
  # Architecture-specific packages may keep the list as <package>:<arch>.md5sums.
  sums=$(ls "/var/lib/dpkg/info/$package.md5sums" "/var/lib/dpkg/info/$package:"*.md5sums 2>/dev/null | head -1 || true)
  want=$([ -n "$sums" ] && awk -v p="${real#/}" '$2 == p { print $1 }' "$sums" | head -1 || true)
  if [ -z "$want" ]; then echo "firmware: $file: $real is not in package $package's file list" >&2; status=1; continue; fi
  have=$(md5sum "$real" | cut -d' ' -f1)
  if [ "$have" != "$want" ]; then
    echo "firmware: $file: $real differs from what package $package $version installed (md5 $have, dpkg has $want); reinstall it: apt-get install --reinstall $package" >&2
    status=1
    continue
  fi
  install -m 0644 "$real" "$here/$file.tmp"
  mv "$here/$file.tmp" "$here/$file"
  sha=$(sha256sum "$here/$file" | cut -d' ' -f1)
  entries+=("$(printf '    "%s": { "sha256": "%s", "for": "%s", "package": "%s", "version": "%s" }' "$file" "$sha" "$purpose" "$package" "$version")")
  echo "firmware: $file ok ($package $version)"
done
{
  echo '{'
  echo "  \"source\": \"Debian packages on $(. /etc/os-release && echo "$PRETTY_NAME"), verified against dpkg's md5sums by firmware/fetch.sh\","
  echo '  "files": {'
  for i in "${!entries[@]}"; do
    if [ "$i" -lt $((${#entries[@]} - 1)) ]; then echo "${entries[$i]},"; else echo "${entries[$i]}"; fi
  done
  echo '  }'
  echo '}'
} >"$here/manifest.json.tmp"
mv "$here/manifest.json.tmp" "$here/manifest.json"
exit $status
