#!/usr/bin/env bash
# VM boot comparison (pxebox vs the dnsmasq reference): see bench/vm-boot.ts. Needs root, QEMU, OVMF, dnsmasq.
#   bench/vm-boot.sh --backends dnsmasq,pxebox --kinds uefi-pxe,bios-ipxe --runs 3
# pxebox runs from dist/: build first (npx tsc -p .).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
exec node --import=@tapjs/typescript/import bench/vm-boot.ts "$@"
