/**
 * The harness's pure parts: QEMU command lines per boot path (the details vm-boot.md says firmware depends on) and
 * the marker parser on real console output. Fast; no VM is started here.
 */
import t from 'tap'
import { mkdtempSync, rmSync, existsSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { tmpdir } from 'node:os'
import { parseMarker, qemuArgs, vmKinds, type VmSpec } from './harness.js'
import { biosBootSector, bootFailure, vmPaths } from './lib/qemu.js'

const dir = mkdtempSync(join(tmpdir(), 'pxebox-harness-lib-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))

const vm = (kind: VmSpec['kind']): VmSpec => ({ kind, mac: '52:54:00:e2:28:01', uuid: '8d3c1f2e-0000-4000-8000-525400e22801' })

t.test('each boot path gets the firmware and NIC ROM it needs', async (t) => {
  for (const [i, kind] of vmKinds.entries()) {
    const paths = vmPaths(dir, i)
    const args = qemuArgs(vm(kind), paths).join(' ')
    t.match(args, /-accel tcg/, `${kind}: TCG`)
    t.match(args, '-uuid 8d3c1f2e-0000-4000-8000-525400e22801', `${kind}: SMBIOS UUID, else option 97 is zeros`)
    t.match(args, `ifname=${paths.tap},script=no,downscript=no`, `${kind}: the lab's tap`)
    const emptyRom = /mac=52:54:00:e2:28:01,romfile=(\s|$)/.test(args)
    t.equal(emptyRom, kind === 'uefi-pxe' || kind === 'uefi-http', `${kind}: iPXE ROM ${emptyRom ? 'removed' : 'kept'}`)
    const uefi = args.includes('OVMF_CODE.fd')
    t.equal(uefi, kind !== 'bios-ipxe', `${kind}: ${uefi ? 'OVMF' : 'SeaBIOS'}`)
    if (uefi) {
      t.match(args, `file=${paths.vars}`, `${kind}: per-VM VARS copy`)
      t.ok(existsSync(paths.vars), `${kind}: VARS copied`)
    }
    t.equal(args.includes('IPv4PXESupport,string=no'), kind === 'uefi-http', `${kind}: PXE disabled only for HTTP boot`)
  }
})

t.test('a Secure Boot VM gets the Microsoft-keys OVMF with SMM and a secure pflash', async (t) => {
  const paths = vmPaths(dir, 11)
  const args = qemuArgs({ ...vm('uefi-pxe'), secureBoot: true }, paths).join(' ')
  t.match(args, '-machine q35,graphics=off,smm=on', 'SMM: the variable store is only writable from SMM')
  t.match(args, '-global driver=cfi.pflash01,property=secure,value=on')
  t.match(args, '-global ICH9-LPC.disable_s3=1')
  t.match(args, 'readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.secboot.fd')
  t.match(args, `unit=1,file=${paths.vars}`)
  t.same(readFileSync(paths.vars), readFileSync('/usr/share/OVMF/OVMF_VARS_4M.ms.fd'), 'VARS copied from the Microsoft-keys template')
  const plain = qemuArgs(vm('uefi-pxe'), vmPaths(dir, 12)).join(' ')
  t.notMatch(plain, /smm=on|secboot|property=secure/, 'other VMs unchanged')
  t.notMatch(qemuArgs({ ...vm('bios-ipxe'), secureBoot: true }, vmPaths(dir, 13)).join(' '), /smm=on|OVMF/, 'ignored for SeaBIOS')
})

t.test('a VM with a local disk keeps the network first and gets a bootable sector', async (t) => {
  const paths = vmPaths(dir, 9)
  const args = qemuArgs({ ...vm('bios-ipxe'), disk: { sizeMb: 1, bootMessage: 'LOCAL' } }, paths).join(' ')
  t.match(args, /virtio-net-pci,[^ ]*,bootindex=1/, 'network first')
  t.match(args, `file=${paths.disk},format=raw`, 'the disk image')
  t.match(args, 'virtio-blk-pci,drive=d0,bootindex=2', 'disk second')
  t.equal(statSync(paths.disk).size, 1024 * 1024, 'sized as asked (sparse)')
  t.same(readFileSync(paths.disk).subarray(0, 512), biosBootSector('LOCAL'), 'boot sector written')
  t.notMatch(qemuArgs(vm('bios-ipxe'), vmPaths(dir, 10)).join(' '), 'bootindex', 'no disk: firmware default order')
  t.equal(vmPaths(dir, 9, 2).tap, paths.tap, 'a reboot keeps the tap')
  t.not(vmPaths(dir, 9, 2).console, paths.console, 'and gets a console file of its own')
  const sector = biosBootSector('PXEBOX-LOCAL-DISK booted')
  t.equal(sector.length, 512)
  t.same([...sector.subarray(510)], [0x55, 0xaa], 'boot signature')
  t.ok(sector.includes('\r\nPXEBOX-LOCAL-DISK booted\r\n\0'), 'message at the address the code prints from')
  t.equal(sector.indexOf('\r\nPXEBOX'), sector.readUInt16LE(10) - 0x7c00, 'mov si points at the message')
  t.throws(() => biosBootSector('x'.repeat(500)), /too long/)
  const image = join(dir, 'esp.img')
  writeFileSync(image, Buffer.from('FAT image stand-in'))
  const withImage = vmPaths(dir, 14)
  qemuArgs({ ...vm('uefi-pxe'), disk: { sizeMb: 1, image } }, withImage)
  t.same(readFileSync(withImage.disk), readFileSync(image), 'a disk image is copied as the VM disk (an ESP for UEFI local boot)')
})

t.test('OVMF without its PXEv6 option only where asked', async (t) => {
  const v6off = 'IPv6PXESupport,string=no'
  t.match(qemuArgs({ ...vm('uefi-pxe'), pxeIpv6: false }, vmPaths(dir, 15)).join(' '), v6off, 'uefi-pxe with pxeIpv6: false')
  t.notMatch(qemuArgs(vm('uefi-pxe'), vmPaths(dir, 16)).join(' '), v6off, 'default: the firmware as shipped')
  t.notMatch(qemuArgs({ ...vm('bios-ipxe'), pxeIpv6: false }, vmPaths(dir, 17)).join(' '), /fw_cfg/, 'ignored for SeaBIOS')
})

t.test('failure patterns: UiApp ends a boot; iPXE giving up under UEFI with a disk does not', async (t) => {
  const uiApp = 'BdsDxe: starting Boot0000 "UiApp" from Fv(7CB8BDC9-F8EB-4F34-AAEA-3EE4AF6516A1)/FvFile(462CAA21-7614-4503-836E-8AB6F4662331)\r\n'
  t.match(bootFailure(uiApp), /UiApp/, 'the setup menu after a boot option returned EFI_SUCCESS')
  const gaveUp = 'pxebox: 52:54:00:e2:28:01 is installed, booting from local disk\r\nNo more network devices\r\n'
  const disk = { sizeMb: 1 }
  t.match(bootFailure(gaveUp), /gave up/, 'no VM given: as before')
  t.match(bootFailure(gaveUp, { kind: 'uefi-pxe' }), /gave up/, 'UEFI without a disk: nothing left to boot')
  t.match(bootFailure(gaveUp, { kind: 'bios-ipxe', disk }), /gave up/, 'BIOS: unchanged')
  t.equal(bootFailure(gaveUp, { kind: 'uefi-pxe', disk }), undefined, 'UEFI with a disk: the boot manager goes on to the next option')
  t.match(bootFailure(gaveUp + uiApp, { kind: 'uefi-pxe', disk }), /UiApp/, 'and is still caught when it opens its menu')
})

t.test('marker parsing', async (t) => {
  const config = JSON.stringify({ ignition: { version: '3.3.0' } })
  const console = [
    '\x1b[2J\x1b[01;01H>>Start PXE over IPv4.\r',
    'http://10.213.40.1:8080/initrd.img... ok\r',
    '\r',
    `PXEBOX-MARKER status=ok mac=52:54:00:e2:28:01 uuid=u1 ip=10.213.40.125 config=${Buffer.from(config).toString('base64')} uptime=4.10\r`,
    '[    5.118569] reboot: Power down\r',
  ].join('\n')
  const m = parseMarker(console)
  t.equal(m?.status, 'ok')
  t.equal(m?.mac, '52:54:00:e2:28:01')
  t.equal(m?.ip, '10.213.40.125')
  t.equal(m?.config, config, 'config decoded from base64')
  t.equal(m?.fields.uptime, '4.10')
  t.equal(parseMarker(console.replace('PXEBOX-MARKER', 'PXEBOX-MARK')), undefined, 'no marker, no result')
  t.equal(parseMarker('PXEBOX-MARKER status=fetch-failed mac=52:54:00:e2:28:01\n')?.config, undefined, 'failure markers carry no config')
  // CI saw this once under load: the console file read while the marker line was half written decoded to a cut config.
  const cut = console.slice(0, console.indexOf('config=') + 'config='.length + 40)
  t.equal(parseMarker(cut), undefined, 'a marker line not yet ended is not read while QEMU runs')
  t.equal(parseMarker(cut, { ended: true })?.status, 'ok', 'once QEMU has exited, a last line without its end counts')
})
