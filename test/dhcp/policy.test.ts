import t, { type Test } from 'tap'
import {
  decode,
  encode,
  getOption,
  messageType,
  pxeVendorOptions,
  replyDestination,
  vendorClass,
  type DhcpPacket,
} from '../../src/dhcp/index.js'
import { archLabel } from '../../src/boot/arch.js'
import { BOOT_FILES, bootFileForArch } from '../../src/boot/boot-files.js'
import {
  decideProxyReply,
  type DhcpMachineLabels,
  type DhcpMachineSettings,
  type ProxyContext,
  type ProxyDecision,
  type ProxyReply,
} from '../../src/boot/proxy-policy.js'
import { dhcpSettingsFor } from '../../src/boot/dhcp-settings.js'
import { captureFrames, frame } from './fixtures.js'

const frames = captureFrames()
const req = (n: number): DhcpPacket => decode(frame(frames, n).payload)
const SCRIPT = 'http://10.213.0.1:8080/boot.ipxe'

function context(settings: Partial<DhcpMachineSettings> = {}, chainloaded = false) {
  const seen: DhcpMachineLabels[] = []
  const ctx: ProxyContext = {
    serverAddress: '10.213.0.1',
    httpBaseUrl: 'http://10.213.0.1:8080/',
    lookup: (labels) => {
      seen.push(labels)
      return { pxe: true, chainloadIpxe: false, group: 'g1', ...settings }
    },
    chainloadedRecently: () => chainloaded,
  }
  return { ctx, seen }
}

function reply(d: ProxyDecision): ProxyReply {
  if (d.action !== 'reply') throw new Error(`expected a reply, got ignore: ${d.reason}`)
  return d
}

/** The reply fields every proxy reply must have (pxe-protocol.md), checked against the request. */
function checkProxyInvariants(t: Test, request: DhcpPacket, r: DhcpPacket, type: number): void {
  t.equal(r.op, 2)
  t.equal(r.xid, request.xid, 'xid copied')
  t.equal(r.chaddr, request.chaddr, 'chaddr copied')
  t.equal(r.flags, request.flags, 'flags copied')
  t.equal(r.giaddr, request.giaddr, 'giaddr copied')
  t.equal(r.yiaddr, '0.0.0.0', 'yiaddr 0: a proxy offers no address')
  t.equal(r.siaddr, '10.213.0.1', 'siaddr is the TFTP server')
  t.equal(messageType(r), type)
  t.equal(getOption(r.options, 54)?.toString('hex'), '0ad50001', 'option 54 = our configured address')
  t.same(getOption(r.options, 97), getOption(request.options, 97), 'option 97 echoed')
  for (const code of [51, 1, 3, 58, 59]) t.equal(getOption(r.options, code), undefined, `no option ${code}`)
  t.equal(getOption(r.options, 67)?.toString('latin1'), r.file === '' ? getOption(r.options, 67)?.toString('latin1') : r.file)
  // The encoded packet NUL-terminates file and sname and decodes to the same thing.
  const wire = encode(r)
  t.equal(wire[108 + Buffer.byteLength(r.file)], 0, 'file NUL-terminated')
  t.equal(wire[44], 0, 'sname empty and NUL-terminated')
  const back = decode(wire)
  t.equal(back.file, r.file)
}

t.test('OVMF UEFI x64 DISCOVER (frame 1): BINL offer, no 43, like dnsmasq (frame 3) but naming the file', async (t) => {
  const { ctx, seen } = context()
  const d = reply(decideProxyReply(req(1), 'dhcp', ctx))
  checkProxyInvariants(t, req(1), d.reply, 2)
  t.equal(getOption(d.reply.options, 43), undefined, 'no option 43 (edk2#6944)')
  t.equal(vendorClass(d.reply), 'PXEClient')
  t.equal(d.reply.file, 'snponly.efi')
  t.match(d, { step: 'offer', via: 'tftp', bootFile: 'snponly.efi', facts: { arch: 7, archLabel: 'x86_64', clientClass: 'pxe-efi', group: 'g1' } })
  t.same(seen, [{ mac: '52:54:00:e2:e0:01', uuid: '2e1f3c8d-0000-0040-8000-525400e2e001', arch: 'x86_64' }])
  const dnsmasq = decode(frame(frames, 3).payload)
  t.same(
    [dnsmasq.yiaddr, vendorClass(dnsmasq), getOption(dnsmasq.options, 43), getOption(dnsmasq.options, 97)],
    [d.reply.yiaddr, vendorClass(d.reply), undefined, getOption(d.reply.options, 97)],
    'agrees with dnsmasq on yiaddr, 60, 43 absence, 97',
  )
})

t.test('OVMF REQUEST on 4011 (frame 6): ACK with the file; group override snponly.efi as dnsmasq was configured', async (t) => {
  const { ctx } = context({ bootFile: 'snponly.efi' })
  const d = reply(decideProxyReply(req(6), 'pxe', ctx))
  checkProxyInvariants(t, req(6), d.reply, 5)
  const dnsmasq = decode(frame(frames, 7).payload)
  t.equal(d.reply.file, dnsmasq.file, 'same file as dnsmasq: snponly.efi')
  t.equal(d.reply.ciaddr, '10.213.0.141', 'ciaddr copied')
  t.equal(getOption(d.reply.options, 43), undefined)
  t.equal(d.step, 'ack')
})

t.test('iPXE (frames 8 and 13): script URL in the offer and the 4011 ACK, like dnsmasq frame 14', async (t) => {
  const { ctx } = context()
  const offer = reply(decideProxyReply(req(8), 'dhcp', ctx))
  checkProxyInvariants(t, req(8), offer.reply, 2)
  t.match(offer, { bootFile: SCRIPT, via: 'http', facts: { clientClass: 'ipxe' } })
  t.equal(offer.reply.file, SCRIPT, 'file set too, so iPXE needs no 4011 step')
  const ack = reply(decideProxyReply(req(13), 'pxe', ctx))
  checkProxyInvariants(t, req(13), ack.reply, 5)
  t.equal(ack.reply.file, decode(frame(frames, 14).payload).file)
})

t.test('udhcpc (frame 15) and REQUESTs on 67 (frames 4, 11) are ignored as non-proxy traffic', async (t) => {
  const { ctx, seen } = context()
  for (const n of [15, 4, 11, 17, 22]) {
    const d = decideProxyReply(req(n), 'dhcp', ctx)
    t.match(d, { action: 'ignore', pxeClient: false }, `frame ${n}`)
  }
  t.match(decideProxyReply(req(15), 'dhcp', ctx), { reason: 'not a PXE client (option 60)' })
  t.same(seen, [], 'no machine lookup for them')
  t.match(decideProxyReply(req(1), 'pxe', ctx), { action: 'ignore' }, 'a DISCOVER on 4011 is not answered')
})

t.test('SeaBIOS iPXE ROM (frame 19): BIOS offer with 43 = {6: 8, 10: {0, PXE}, 255} and the script URL', async (t) => {
  const { ctx } = context()
  const d = reply(decideProxyReply(req(19), 'dhcp', ctx))
  checkProxyInvariants(t, req(19), d.reply, 2)
  t.equal(getOption(d.reply.options, 43)?.toString('hex'), '0601080a0400505845ff')
  t.equal(d.reply.file, SCRIPT)
  t.ok(getOption(decode(frame(frames, 20).payload).options, 43), 'dnsmasq also sent 43 to this BIOS client')
  const ack = reply(decideProxyReply(req(24), 'pxe', ctx))
  checkProxyInvariants(t, req(24), ack.reply, 5)
  t.same(
    pxeVendorOptions(ack.reply)?.map((o) => [o.code, o.data.toString('hex')]),
    pxeVendorOptions(decode(frame(frames, 25).payload))?.map((o) => [o.code, o.data.toString('hex')]),
    'boot item 71 echoed as dnsmasq did',
  )
})

t.test('chainload_ipxe: ROM iPXE first gets undionly.kpxe over TFTP, then (after the TFTP fetch) the script', async (t) => {
  const before = reply(decideProxyReply(req(19), 'dhcp', context({ chainloadIpxe: true }, false).ctx))
  // The MAC prefix tells our TFTP server who fetched it (frame 19's client is 52:54:00:e2:e0:01).
  t.match(before, { bootFile: '52-54-00-e2-e0-01/undionly.kpxe', via: 'tftp', facts: { clientClass: 'ipxe' } })
  t.equal(before.reply.file, '52-54-00-e2-e0-01/undionly.kpxe')
  const after = reply(decideProxyReply(req(19), 'dhcp', context({ chainloadIpxe: true }, true).ctx))
  t.equal(after.bootFile, SCRIPT)
  const efi = reply(decideProxyReply(req(8), 'dhcp', context({ chainloadIpxe: true, bootFile: 'snponly.efi' }, false).ctx))
  t.equal(efi.bootFile, '52-54-00-e2-e0-01/snponly.efi', 'EFI iPXE gets the (overridden) EFI binary')
})

t.test('pxe: false makes pxebox ignore the machine, with a reason', async (t) => {
  const d = decideProxyReply(req(1), 'dhcp', context({ pxe: false, group: 'legacy' }).ctx)
  t.match(d, { action: 'ignore', pxeClient: true, reason: 'pxe disabled for this machine (group legacy)' })
})

/** Frame 1 with option 93 (and 60) replaced. */
function withArch(arch: number, vc = `PXEClient:Arch:${String(arch).padStart(5, '0')}:UNDI:003000`): DhcpPacket {
  const p = req(1)
  const options = p.options
    .filter((o) => o.code !== 93 && o.code !== 60)
    .concat([
      { code: 93, data: Buffer.from([arch >> 8, arch & 0xff]) },
      { code: 60, data: Buffer.from(vc, 'latin1') },
    ])
  return { ...p, options, layout: undefined }
}

t.test('boot file table by option 93, and unknown architectures ignored', async (t) => {
  const { ctx } = context()
  const got = [0, 6, 7, 9, 10, 11].map((a) => reply(decideProxyReply(withArch(a), 'dhcp', ctx)).bootFile)
  t.same(got, ['undionly.kpxe', 'i386/ipxe.efi', 'snponly.efi', 'snponly.efi', 'arm32/snp.efi', 'arm64/snponly.efi'])
  t.same([0, 6, 15, 7, 9, 16, 10, 18, 11, 19].map(archLabel), ['i386', 'i386', 'i386', 'x86_64', 'x86_64', 'x86_64', 'arm32', 'arm32', 'arm64', 'arm64'])
  t.equal(bootFileForArch(0, 'snponly.efi'), 'undionly.kpxe', 'the override never reaches a BIOS client')
  t.equal(bootFileForArch(11, 'snponly.efi'), 'snponly.efi')
  t.equal(Object.keys(BOOT_FILES).length, 10)
  t.match(decideProxyReply(withArch(2), 'dhcp', ctx), { action: 'ignore', pxeClient: true, reason: 'unknown client architecture 2' })
  t.match(decideProxyReply(withArch(16), 'dhcp', ctx), { action: 'ignore', reason: /does not fit architecture 16/ })
})

t.test('UEFI HTTP boot: http:// URL to the EFI binary, option 60 HTTPClient, no 43', async (t) => {
  const { ctx } = context()
  for (const [arch, file] of [
    [16, 'snponly.efi'],
    [19, 'arm64/snponly.efi'],
    [15, 'i386/ipxe.efi'],
  ] as const) {
    const d = reply(decideProxyReply(withArch(arch, 'HTTPClient:Arch:000' + arch + ':UNDI:003000'), 'dhcp', ctx))
    t.equal(d.bootFile, `http://10.213.0.1:8080/firmware/${file}`)
    t.equal(vendorClass(d.reply), 'HTTPClient')
    t.equal(getOption(d.reply.options, 43), undefined)
    t.match(d, { step: 'offer', via: 'http', facts: { clientClass: 'http-boot' } })
  }
  const custom = reply(
    decideProxyReply(withArch(16, 'HTTPClient'), 'dhcp', { ...ctx, firmwareBaseUrl: 'http://10.213.0.1:8080/fw/' }),
  )
  t.equal(custom.bootFile, 'http://10.213.0.1:8080/fw/snponly.efi')
  t.match(decideProxyReply(withArch(7, 'HTTPClient'), 'dhcp', ctx), { action: 'ignore', reason: /HTTPClient does not fit architecture 7/ })
})

t.test('relayed requests keep giaddr and are answered to giaddr:67; others broadcast; 4011 unicast back', async (t) => {
  const relayed = { ...req(1), giaddr: '10.213.9.1', layout: undefined }
  const d = reply(decideProxyReply(relayed, 'dhcp', context().ctx))
  t.equal(d.reply.giaddr, '10.213.9.1')
  const ports = { dhcp: 67, client: 68 }
  t.same(replyDestination(d.reply, 'dhcp', { address: '10.213.9.1', port: 67 }, ports), { address: '10.213.9.1', port: 67 })
  t.same(replyDestination(req(1), 'dhcp', { address: '0.0.0.0', port: 68 }, ports), { address: '255.255.255.255', port: 68 })
  t.same(replyDestination(req(13), 'pxe', { address: '10.213.0.141', port: 68 }, ports), { address: '10.213.0.141', port: 68 })
  t.same(replyDestination(req(6), 'pxe', { address: '10.213.0.141', port: 4011 }, ports), { address: '10.213.0.141', port: 4011 })
  t.same(replyDestination(req(6), 'pxe', { address: '0.0.0.0', port: 4011 }, ports), { address: '10.213.0.141', port: 4011 })
})

t.test('a long script URL goes in option 67 only (file is a 128-byte C string)', async (t) => {
  const { ctx } = context()
  const long = 'http://10.213.0.1:8080/' + 'x'.repeat(150)
  const d = reply(decideProxyReply(req(8), 'dhcp', { ...ctx, httpBaseUrl: long }))
  t.equal(d.reply.file, '')
  t.equal(getOption(d.reply.options, 67)?.toString(), `${long}/boot.ipxe`)
  t.equal(encode(d.reply)[108], 0)
})

t.test('loader shim-grub (issue 19): x64 UEFI PXE gets the signed shim; other arches, HTTP boot and iPXE keep theirs', async (t) => {
  const { ctx } = context({ loader: 'shim-grub', bootFile: 'ipxe.efi' })
  const offer = reply(decideProxyReply(req(1), 'dhcp', ctx))
  t.match(offer, { bootFile: 'shimx64.efi', via: 'tftp', facts: { clientClass: 'pxe-efi' } })
  t.equal(offer.reply.file, 'shimx64.efi', 'file field: shim follows the offer when the site ACK has none')
  t.equal(offer.reply.siaddr, '10.213.0.1', 'siaddr: where GRUB will fetch its config')
  t.equal(reply(decideProxyReply(req(6), 'pxe', ctx)).reply.file, 'shimx64.efi', 'the 4011 ACK too')
  t.same([7, 9, 0, 6, 11].map((a) => reply(decideProxyReply(withArch(a), 'dhcp', ctx)).bootFile), ['shimx64.efi', 'shimx64.efi', 'undionly.kpxe', 'ipxe.efi', 'ipxe.efi'])
  t.match(reply(decideProxyReply(req(8), 'dhcp', ctx)), { bootFile: SCRIPT, via: 'http' }, 'a machine already running iPXE gets the script')
  t.equal(bootFileForArch(16, undefined, 'shim-grub'), 'snponly.efi', 'HTTP boot: GRUB has no HTTP, so not shim')
  t.equal(reply(decideProxyReply(req(1), 'dhcp', context({ loader: 'ipxe' }).ctx)).bootFile, 'snponly.efi')
})

t.test('dhcpSettingsFor: the group loader, else the profile loader, else ipxe', async (t) => {
  const group = { id: 'g', profile: 'p', selector: {}, metadata: {}, pxe: true, chainloadIpxe: false, source: 's' }
  const profile = { id: 'p', bindToLease: false, bootOnce: false, source: 's' }
  t.equal(dhcpSettingsFor({ group, profile }).loader, 'ipxe')
  t.equal(dhcpSettingsFor({ group, profile: { ...profile, loader: 'shim-grub' } }).loader, 'shim-grub')
  t.equal(dhcpSettingsFor({ group: { ...group, loader: 'ipxe' }, profile: { ...profile, loader: 'shim-grub' } }).loader, 'ipxe')
  t.equal(dhcpSettingsFor({ group: { ...group, loader: 'shim-grub' }, profile }).loader, 'shim-grub')
})
