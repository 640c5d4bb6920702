/**
 * What `/ipxe` answers an installed machine whose profile has `boot_once: true`: boot the local disk instead of the
 * installer, whatever the firmware's boot order says (the reinstall loop Matchbox, pixiecore and Cobbler users hit
 * when PXE stays first).
 *
 * BIOS: `sanboot --no-describe --drive 0x80` hands the first hard disk's MBR control through INT 13h (the usual
 * iPXE idiom; `--no-describe` keeps iPXE from installing an iBFT/ABFT for a SAN disk that does not exist).
 * UEFI: iPXE cannot boot a local disk itself (Debian's 2019 snponly.efi answers `sanboot --drive 0x80` with "Boot
 * from SAN device 0x80 failed: No such device"), so it ends with a failure status and lets the firmware's boot
 * manager go on to its next boot option, the disk. The status matters: the UEFI Boot Manager chapter says a
 * Boot#### option that returns EFI_SUCCESS stops the walk through BootOrder and brings up the boot manager menu; only
 * an error status moves on to the next Boot####. EDK2's BdsDxe does exactly that (OVMF, measured here: `exit` ->
 * `BdsDxe: starting Boot0000 "UiApp"`, the setup screen, and the machine sits there), and so do Dell PowerEdge and
 * Lenovo ThinkSystem firmware (netboot.xyz issue 1276; warewulf3 PR 106 and Foreman PR 8373 made the same change).
 * `exit 1` makes iPXE return an error instead (`BdsDxe: failed to start Boot0002 "UEFI PXEv4 ...": 0000007F`) and
 * BdsDxe tries the next option. Network options between the one that ran iPXE and the disk (PXEv6, HTTP boot) come
 * first: HTTP boot reaches pxebox and gets this script again, PXEv6 waits out its time-out (about 70 s on OVMF).
 * A BIOS `sanboot` that fails falls through to a plain `exit`, which makes the BIOS try its next boot device
 * (INT 18h); the status means nothing there.
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
    'exit',
    ':local_efi',
    'exit 1',
    '',
  ].join('\n')
}
