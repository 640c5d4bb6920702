/**
 * The first-stage boot file per client architecture, as data (pxe-protocol.md "Boot file by client"). Paths are
 * relative to the TFTP root (the firmware folder); for UEFI HTTP boot the same path is appended to the firmware URL.
 */
import { archInfo } from './arch.js'

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
 * The boot file for `arch`, with a group's override applied. The override (config `boot_file`, e.g. `snponly.efi`
 * for NICs that fail with iPXE's native drivers) only applies to UEFI clients: a BIOS ROM cannot run an EFI binary,
 * and undionly.kpxe is already the "use the firmware's driver" choice there.
 */
export function bootFileForArch(arch: number, override?: string): string | undefined {
  const info = archInfo(arch)
  if (info === undefined) return undefined
  if (override !== undefined && override !== '' && info.firmware !== 'bios') return override
  return BOOT_FILES[arch]
}
