#!/usr/bin/env bash
# Fill firmware/ with iPXE from Debian's `ipxe` package and check each file against manifest.json.
# No binaries are committed: this script is how a machine gets them.
#   firmware/fetch.sh                  copy and verify (installs the ipxe package if missing; needs root for that)
#   firmware/fetch.sh --update-manifest  record the installed package's hashes (after a deliberate iPXE upgrade)
# Debian (bookworm) builds iPXE for x86 only: there is no arm64 snponly.efi to copy; ARM64 clients need a file you
# provide under firmware/arm64/.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src=/usr/lib/ipxe
if [ ! -f "$src/undionly.kpxe" ]; then
  echo "firmware: installing Debian's ipxe package" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q -o DPkg::Lock::Timeout=600 ipxe >/dev/null
fi
files=(undionly.kpxe ipxe.efi snponly.efi)
for f in "${files[@]}"; do install -m 0644 "$src/$f" "$here/$f"; done
if [ "${1:-}" = "--update-manifest" ]; then
  version=$(dpkg-query -W -f='${Version}' ipxe)
  node -e '
    const fs = require("fs"), crypto = require("crypto"), dir = process.argv[1], version = process.argv[2]
    const m = JSON.parse(fs.readFileSync(dir + "/manifest.json", "utf8"))
    m.source = `Debian package ipxe ${version}, copied by firmware/fetch.sh`
    for (const f of Object.keys(m.files)) m.files[f].sha256 = crypto.createHash("sha256").update(fs.readFileSync(dir + "/" + f)).digest("hex")
    fs.writeFileSync(dir + "/manifest.json", JSON.stringify(m, null, 2) + "\n")' "$here" "$version"
  echo "firmware: manifest.json updated for ipxe $version"
fi
cd "$here"
status=0
for f in "${files[@]}"; do
  want=$(node -e 'console.log(require("./manifest.json").files[process.argv[1]].sha256)' "$f")
  have=$(sha256sum "$f" | cut -d' ' -f1)
  if [ "$want" = "$have" ]; then echo "firmware: $f ok"; else echo "firmware: $f differs from manifest.json (have $have, want $want): a different ipxe package version? run with --update-manifest if deliberate" >&2; status=1; fi
done
exit $status
