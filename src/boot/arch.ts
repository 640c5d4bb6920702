/**
 * Client architecture: RFC 4578 option 93 values (IANA "Processor Architecture Types") mapped to the arch label
 * used everywhere in pxebox (the same names as iPXE's `${buildarch}`), so a group selector `arch: x86_64` matches
 * whether the machine was seen by DHCP or by the HTTP side.
 */

/** The arch label values (iPXE `${buildarch}` names). */
export type ArchLabel = 'i386' | 'x86_64' | 'arm32' | 'arm64'

/** How a client boots: BIOS PXE, UEFI PXE (TFTP) or UEFI HTTP boot (option 60 `HTTPClient`). */
export type FirmwareKind = 'bios' | 'efi' | 'efi-http'

/** What pxebox knows about one option 93 value. */
export interface ArchInfo {
  code: number
  label: ArchLabel
  firmware: FirmwareKind
  /** The IANA name, for logs. */
  name: string
}

/** The option 93 values pxebox serves. Any other value is "unknown architecture" and is ignored. */
export const ARCHITECTURES: readonly ArchInfo[] = Object.freeze([
  { code: 0, label: 'i386', firmware: 'bios', name: 'x86 BIOS' },
  { code: 6, label: 'i386', firmware: 'efi', name: 'x86 UEFI' },
  { code: 7, label: 'x86_64', firmware: 'efi', name: 'x64 UEFI' },
  // 9 was assigned to EFI Byte Code but x64 firmware (some HP, older EDK2) sends it for x64; RFC 4578 errata 4441.
  { code: 9, label: 'x86_64', firmware: 'efi', name: 'x64 UEFI (EBC code point)' },
  { code: 10, label: 'arm32', firmware: 'efi', name: 'ARM 32-bit UEFI' },
  { code: 11, label: 'arm64', firmware: 'efi', name: 'ARM 64-bit UEFI' },
  { code: 15, label: 'i386', firmware: 'efi-http', name: 'x86 UEFI HTTP' },
  { code: 16, label: 'x86_64', firmware: 'efi-http', name: 'x64 UEFI HTTP' },
  { code: 18, label: 'arm32', firmware: 'efi-http', name: 'ARM 32-bit UEFI HTTP' },
  { code: 19, label: 'arm64', firmware: 'efi-http', name: 'ARM 64-bit UEFI HTTP' },
])

/** Facts about an option 93 value, or undefined when pxebox does not serve it. */
export function archInfo(code: number): ArchInfo | undefined {
  return ARCHITECTURES.find((a) => a.code === code)
}

/** The arch label for an option 93 value (`i386` for 0, 6, 15; `x86_64` for 7, 9, 16; ...), or undefined. */
export function archLabel(code: number): ArchLabel | undefined {
  return archInfo(code)?.label
}
