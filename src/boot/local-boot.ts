/**
 * What `/ipxe` answers an installed machine whose profile has `boot_once: true`: boot the local disk instead of the
 * installer, whatever the firmware's boot order says (the reinstall loop Matchbox, pixiecore and Cobbler users hit
 * when PXE stays first).
 *
 * BIOS: `sanboot --no-describe --drive 0x80` hands the first hard disk's MBR control through INT 13h (the usual
 * iPXE idiom; `--no-describe` keeps iPXE from installing an iBFT/ABFT for a SAN disk that does not exist).
 * UEFI: iPXE cannot boot a local disk itself (no `--drive` there); `exit` returns to the firmware's boot manager,
 * which tries the next boot option, the disk. A BIOS `sanboot` that fails falls through to `exit` too, which makes
 * the BIOS try its next boot device (INT 18h).
 */

/** The iPXE script; `mac` and `installedAt` only go into comments and the echo line (both are pxebox's own values). */
export function localBootScript(mac: string, profile: string, installedAt: string): string {
  return [
    '#!ipxe',
    `# pxebox: ${mac} reported installed at ${installedAt}; profile "${profile}" has boot_once: true.`,
    `# To install again: POST /v1/machines/${mac}/rearm`,
    `echo pxebox: ${mac} is installed, booting from local disk`,
    'iseq ${platform} efi && goto local_efi ||',
    'sanboot --no-describe --drive 0x80 ||',
    ':local_efi',
    'exit',
    '',
  ].join('\n')
}
