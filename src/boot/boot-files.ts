/**
 * The first-stage boot file per client architecture, as data (pxe-protocol.md "Boot file by client"). Paths are
 * relative to the TFTP root (the firmware folder); for UEFI HTTP boot the same path is appended to the firmware URL.
 */
import { archInfo } from './arch.js'
import type { Loader } from '../catalog/model-schema.js'

/** Option 93 value -> first-stage iPXE binary. */
export const BOOT_FILES: Readonly<Record<number, string>> = Object.freeze({
  0: 'undionly.kpxe', // BIOS: iPXE on top of the ROM's UNDI driver
  6: 'i386/ipxe.efi',
  // snponly.efi drives the NIC through the firmware's own SNP driver: it works on every NIC the firmware can PXE
  // boot from, and under OVMF it starts in 0.2 s where ipxe.efi spends 4.5 s probing its native drivers (measured
  // with bench/vm-boot.sh). Groups can still choose ipxe.efi with `boot_file`.
  7: 'snponly.efi',
  9: 'snponly.efi',
  10: 'arm32/snp.efi',
  11: 'arm64/snponly.efi',
  15: 'i386/ipxe.efi',
  16: 'snponly.efi',
  18: 'arm32/snp.efi',
  19: 'arm64/snponly.efi',
})

/**
 * The Secure Boot chain's first stage (issue 19, `loader: shim-grub`): Debian's Microsoft-signed shim
 * (shim-signed, shimx64.efi.signed). Shim loads `grubx64.efi` from the same TFTP directory (its DEFAULT_LOADER).
 */
export const SHIM_BOOT_FILE = 'shimx64.efi'
/** Debian's signed network GRUB (grub-efi-amd64-signed, grubnetx64.efi.signed), under the name shim asks for. */
export const GRUB_BOOT_FILE = 'grubx64.efi'

/** Option 93 values that get shim with `loader: shim-grub`: x64 UEFI PXE only (Debian signs shim for x64; GRUB has no HTTP). */
const SHIM_GRUB_ARCHES: ReadonlySet<number> = new Set([7, 9])

/**
 * The boot file for `arch`, with a group's override applied. The override (config `boot_file`, e.g. `snponly.efi`
 * for NICs that fail with iPXE's native drivers) only applies to UEFI clients: a BIOS ROM cannot run an EFI binary,
 * and undionly.kpxe is already the "use the firmware's driver" choice there. `loader: shim-grub` replaces both for
 * x64 UEFI PXE: that group's machines may have Secure Boot on, and no iPXE binary pxebox has is signed.
 */
export function bootFileForArch(arch: number, override?: string, loader: Loader = 'ipxe'): string | undefined {
  const info = archInfo(arch)
  if (info === undefined) return undefined
  if (loader === 'shim-grub' && SHIM_GRUB_ARCHES.has(arch)) return SHIM_BOOT_FILE
  if (override !== undefined && override !== '' && info.firmware !== 'bios') return override
  return BOOT_FILES[arch]
}
