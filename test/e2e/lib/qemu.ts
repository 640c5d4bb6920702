/**
 * Real firmware under QEMU (TCG): the command lines for each boot path and the PXEBOX-MARKER the boot target prints.
 *
 * Facts measured on these machines are in /work/shared/docs/vm-boot.md (no KVM, OVMF pflash, romfile=, fw_cfg).
 */
import { closeSync, copyFileSync, existsSync, openSync, truncateSync, writeSync } from 'node:fs'
import { join } from 'node:path'

/**
 * Boot paths the harness can exercise.
 * - `uefi-pxe`: OVMF's own EDK2 PXE client (what most server firmware ships): `romfile=` empties the NIC's option ROM.
 * - `bios-ipxe`: SeaBIOS + QEMU's iPXE option ROM for virtio-net (ipxe-qemu's efi-virtio.rom, legacy part).
 * - `uefi-ipxe`: OVMF + the same iPXE ROM's EFI driver (iPXE runs as a UEFI driver, no EDK2 PXE).
 * - `uefi-http`: OVMF's UEFI HTTP boot client; fw_cfg switches off PXEv4/v6 so HTTP boot runs first instead of after
 *   about 2 minutes of PXE time-outs.
 */
export type VmKind = 'uefi-pxe' | 'bios-ipxe' | 'uefi-ipxe' | 'uefi-http'

/** All kinds, for tables of tests. */
export const vmKinds: readonly VmKind[] = ['uefi-pxe', 'bios-ipxe', 'uefi-ipxe', 'uefi-http']

/** Debian's OVMF (package ovmf): 2 MB CODE/VARS pair, the VARS copied per VM because the firmware writes to it. */
export const ovmfCode = '/usr/share/OVMF/OVMF_CODE.fd'
/** Template for the per-VM variable store. */
export const ovmfVars = '/usr/share/OVMF/OVMF_VARS.fd'

/**
 * Debian's OVMF built with Secure Boot and SMM (4 MB flash layout): the CODE image refuses unsigned EFI binaries once
 * the VARS hold keys. `OVMF_VARS_4M.ms.fd` has Microsoft's KEK/db enrolled and Secure Boot on, like most vendor
 * firmware as shipped, so Microsoft-signed shim runs and Debian's unsigned iPXE is refused.
 */
export const ovmfSecureBootCode = '/usr/share/OVMF/OVMF_CODE_4M.secboot.fd'
/** Template for a Secure Boot VM's variable store (Microsoft keys enrolled, Secure Boot enforcing). */
export const ovmfSecureBootVars = '/usr/share/OVMF/OVMF_VARS_4M.ms.fd'

/** One VM to boot. */
export interface VmSpec {
  kind: VmKind
  /** Lowercase colon MAC, e.g. 52:54:00:e2:e0:01 (52:54:00 is QEMU's prefix). */
  mac: string
  /** SMBIOS system UUID: without -uuid, DHCP option 97 is all zeros. */
  uuid: string
  /**
   * A local disk (sparse raw file, kept across boots of the same VM), after the network in the boot order: a
   * boot_once machine's later boots must still go PXE -> pxebox -> local-boot script, then to this disk.
   */
  disk?: VmDisk
  /**
   * UEFI kinds only: boot Debian's Secure Boot OVMF with Microsoft keys, enforcing (issue 19). The machine then needs
   * SMM and a secure pflash, which is what QEMU options the Secure Boot build requires.
   */
  secureBoot?: boolean
  /**
   * UEFI kinds only: `false` removes OVMF's PXEv6 boot option (fw_cfg IPv6PXESupport=no). The lab has no DHCPv6 boot
   * server, so that option only waits out its time-out (about 70 s under TCG) whenever the firmware walks past the
   * PXEv4 option, as install once's UEFI local boot makes it do on the way to the disk.
   */
  pxeIpv6?: boolean
  /**
   * `-smbios` values, e.g. `type=1,manufacturer=...,product=...,serial=...` (commas inside a value doubled): the
   * firmware's SMBIOS tables, which iPXE reads as `${manufacturer}`, `${product}`, `${serial}` (discovery, issue 20).
   */
  smbios?: string[]
}

/** A VM's local disk. */
export interface VmDisk {
  sizeMb: number
  /** Write a BIOS boot sector that prints this line on the console and halts (else the disk is all zeros). */
  bootMessage?: string
  /** Start from a copy of this raw image instead (e.g. an EFI system partition built by the test); sizeMb is ignored. */
  image?: string
}

/** Where a VM's files live and which tap it uses. */
export interface VmPaths {
  tap: string
  console: string
  /** Per-VM OVMF_VARS copy (UEFI kinds only). */
  vars: string
  /** The VM's raw disk image (only used with `disk`). */
  disk: string
}

/** The QEMU argv (without the binary) for one VM; copies OVMF_VARS for the UEFI kinds. */
export function qemuArgs(vm: VmSpec, paths: VmPaths): string[] {
  const uefi = vm.kind !== 'bios-ipxe'
  // romfile= (empty) removes the iPXE option ROM so the firmware's own network stack boots (EDK2 PXE / HTTP boot).
  const rom = vm.kind === 'uefi-pxe' || vm.kind === 'uefi-http' ? ',romfile=' : ''
  const secure = uefi && vm.secureBoot === true
  const args = [
    '-accel', 'tcg', // no KVM here (nested, no vmx/svm)
    // graphics=off makes QEMU tell SeaBIOS to use the serial port as its console (fw_cfg etc/sercon-port), so the
    // BIOS path's SeaBIOS and iPXE messages land in the console file too (OVMF uses serial without VGA anyway).
    // The Secure Boot OVMF keeps its variable store behind SMM (so an OS cannot rewrite the keys): it needs smm=on
    // and a pflash that only SMM may write, and it does not support S3 (it stops at start-up if S3 is offered).
    '-machine', secure ? 'q35,graphics=off,smm=on' : 'q35,graphics=off',
    ...(secure ? ['-global', 'driver=cfi.pflash01,property=secure,value=on', '-global', 'ICH9-LPC.disable_s3=1'] : []),
    '-m', '512',
    '-smp', '1',
    // -nodefaults: no default NIC, VGA, floppy or CD-ROM, so the firmware has nothing to try before the network and
    // all console output goes to the serial port we read.
    '-nodefaults',
    '-display', 'none',
    '-serial', `file:${paths.console}`,
    '-uuid', vm.uuid,
    '-netdev', `tap,id=n0,ifname=${paths.tap},script=no,downscript=no`,
    // bootindex only with a disk: the network stays first, so every boot asks pxebox what to do.
    '-device', `virtio-net-pci,netdev=n0,mac=${vm.mac}${rom}${vm.disk === undefined ? '' : ',bootindex=1'}`,
    // A firmware that gives up and resets ends QEMU instead of looping: a failed boot fails fast.
    '-no-reboot',
  ]
  if (uefi) {
    if (!existsSync(paths.vars)) copyFileSync(secure ? ovmfSecureBootVars : ovmfVars, paths.vars)
    args.push(
      '-drive', `if=pflash,format=raw,unit=0,readonly=on,file=${secure ? ovmfSecureBootCode : ovmfCode}`,
      '-drive', `if=pflash,format=raw,unit=1,file=${paths.vars}`,
    )
  }
  for (const table of vm.smbios ?? []) args.push('-smbios', table)
  if (vm.disk !== undefined) {
    if (!existsSync(paths.disk) && vm.disk.image !== undefined) {
      copyFileSync(vm.disk.image, paths.disk)
    } else if (!existsSync(paths.disk)) {
      const fd = openSync(paths.disk, 'wx')
      if (vm.disk.bootMessage !== undefined) writeSync(fd, biosBootSector(vm.disk.bootMessage))
      closeSync(fd)
      truncateSync(paths.disk, vm.disk.sizeMb * 1024 * 1024)
    }
    args.push('-drive', `file=${paths.disk},format=raw,if=none,id=d0`, '-device', 'virtio-blk-pci,drive=d0,bootindex=2')
  }
  if (vm.kind === 'uefi-http') {
    args.push(
      '-fw_cfg', 'name=opt/org.tianocore/IPv4PXESupport,string=no',
      '-fw_cfg', 'name=opt/org.tianocore/IPv6PXESupport,string=no',
    )
  } else if (uefi && vm.pxeIpv6 === false) {
    args.push('-fw_cfg', 'name=opt/org.tianocore/IPv6PXESupport,string=no')
  }
  return args
}

/**
 * A 512-byte MBR boot sector (16-bit real mode, loaded at 0000:7C00) that prints `message` through the BIOS teletype
 * call and halts. With graphics=off SeaBIOS sends INT 10h output to the serial console, so the harness sees the line
 * when the machine really boots its local disk (iPXE `sanboot --drive 0x80`, or the BIOS itself). Hand-assembled:
 * no assembler is needed on the host.
 */
export function biosBootSector(message: string): Buffer {
  const text = Buffer.from(`\r\n${message}\r\n\0`, 'latin1')
  const code = Buffer.from([
    0xea, 0x05, 0x7c, 0x00, 0x00, // 00: jmp 0000:7c05 (some BIOSes enter at 07c0:0000)
    0x31, 0xc0, //                   05: xor ax, ax
    0x8e, 0xd8, //                   07: mov ds, ax
    0xbe, 0x1e, 0x7c, //             09: mov si, 0x7c1e (the text after this code)
    0xfc, //                         0c: cld
    0xac, //                         0d: lodsb
    0x84, 0xc0, //                   0e: test al, al
    0x74, 0x08, //                   10: jz 0x1a
    0xb4, 0x0e, //                   12: mov ah, 0x0e (teletype output)
    0x31, 0xdb, //                   14: xor bx, bx (page 0)
    0xcd, 0x10, //                   16: int 0x10
    0xeb, 0xf3, //                   18: jmp 0x0d
    // Interrupts stay on: SeaBIOS's serial console flushes its output buffer from the timer interrupt (with cli
    // the last characters never reach the port, measured here).
    0xfb, //                         1a: sti
    0xf4, //                         1b: hlt
    0xeb, 0xfc, //                   1c: jmp 0x1a
  ])
  if (code.length + text.length > 446) throw new Error('boot message too long for a boot sector')
  const sector = Buffer.alloc(512)
  code.copy(sector, 0)
  text.copy(sector, code.length)
  // The boot signature BIOS and iPXE check before jumping to the sector.
  sector[510] = 0x55
  sector[511] = 0xaa
  return sector
}

/** The fields of a `PXEBOX-MARKER key=value ...` line printed by scripts/boot-target/init. */
export interface Marker {
  /** 'ok', or what failed inside the booted Linux: 'dhcp-failed', 'fetch-failed', 'no-url', 'no-nic', ... */
  status: string
  mac?: string
  uuid?: string
  ip?: string
  /** The config body the VM fetched from `<pxebox.url>/ignition?mac=<mac>` (decoded from base64). */
  config?: string
  /** Every key=value as printed. */
  fields: Record<string, string>
}

/**
 * Find and parse the first marker line in console text; undefined if there is none (yet). While QEMU runs, the
 * console file may end in the middle of the marker (a loaded host writes serial output in pieces), and a base64
 * config cut short still decodes, to a truncated body: so only a line ended by CR or LF counts, unless `ended` says
 * the console is complete (QEMU has exited).
 */
export function parseMarker(consoleText: string, opts: { ended?: boolean } = {}): Marker | undefined {
  // The serial console may carry CRs and escape sequences; the marker itself is plain ASCII on its own line.
  const m = consoleText.match(opts.ended === true ? /^PXEBOX-MARKER ([^\r\n]*)(?:\r|\n|$)/m : /^PXEBOX-MARKER ([^\r\n]*)[\r\n]/m)
  if (!m) return undefined
  const fields: Record<string, string> = {}
  for (const word of (m[1] ?? '').trim().split(/\s+/)) {
    const eq = word.indexOf('=')
    if (eq > 0) fields[word.slice(0, eq)] = word.slice(eq + 1)
  }
  const marker: Marker = { status: fields.status ?? 'unknown', fields }
  if (fields.mac !== undefined) marker.mac = fields.mac
  if (fields.uuid !== undefined) marker.uuid = fields.uuid
  if (fields.ip !== undefined) marker.ip = fields.ip
  if (fields.config !== undefined) marker.config = Buffer.from(fields.config, 'base64').toString('utf8')
  return marker
}

/**
 * Console file, VARS copy, disk and tap name for VM number `index` of a lab; `boot` > 0 for a later boot of the same
 * VM (same tap, VARS and disk, a console file of its own).
 */
export function vmPaths(dir: string, index: number, boot = 0): VmPaths {
  return {
    tap: `tap${index}`,
    console: join(dir, `vm${index}-console${boot > 0 ? `-boot${boot + 1}` : ''}.log`),
    vars: join(dir, `vm${index}-OVMF_VARS.fd`),
    disk: join(dir, `vm${index}-disk.img`),
  }
}

/**
 * Console lines after which this boot cannot succeed any more: stop waiting (saves the full timeout) and say why.
 * OVMF falls through PXE/HTTP boot options to its shell, or opens its setup menu (UiApp) when a boot option returns
 * EFI_SUCCESS (UEFI Boot Manager: the walk through BootOrder stops there); SeaBIOS/iPXE give up on every boot device.
 */
export const bootFailurePatterns: Array<[RegExp, string]> = [
  [/BdsDxe: (loading|starting) Boot\d+ "EFI Internal Shell"/, 'every network boot option failed (OVMF reached the EFI shell)'],
  [/BdsDxe: (loading|starting) Boot\d+ "UiApp"/, 'a boot option returned EFI_SUCCESS and OVMF opened its setup menu (UiApp) instead of the next boot option'],
  [/No bootable device/, 'SeaBIOS found no bootable device'],
  [/No more network devices/, 'iPXE gave up on every network device'],
]

/**
 * The reason a boot has failed for good, judged from the console text so far; undefined while it may succeed.
 * Under UEFI with a local disk, iPXE giving up ("No more network devices") hands control back to the firmware's boot
 * manager, which goes on to its next boot option (install once's local boot relies on it): not an end there.
 */
export function bootFailure(consoleText: string, vm?: Pick<VmSpec, 'kind' | 'disk'>): string | undefined {
  const firmwareGoesOn = vm !== undefined && vm.kind !== 'bios-ipxe' && vm.disk !== undefined
  for (const [re, reason] of bootFailurePatterns) {
    if (firmwareGoesOn && re.source === 'No more network devices') continue
    if (re.test(consoleText)) return reason
  }
  return undefined
}
