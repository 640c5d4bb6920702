import t from 'tap'
import {
  clientArchitectures,
  clientId,
  clientNdi,
  clientUuid,
  decode,
  decodeSubOptions,
  encode,
  encodeSubOptions,
  encodeUserClasses,
  encodingLength,
  getOption,
  ipv4Option,
  ipxeOptions,
  maxMessageSize,
  messageType,
  pxeVendorOptions,
  userClasses,
  vendorClass,
  type DhcpPacket,
} from '../../src/dhcp/index.js'
import { captureFrames, frame, REQUEST_FRAMES } from './fixtures.js'

const frames = captureFrames()
const MAC = '52:54:00:e2:e0:01'
// Option 97 in wire order. The README's SMBIOS UUID 8d3c1f2e-0000-4000-... is the same 16 bytes with the first
// three fields read little-endian (SMBIOS >= 2.6, as dmidecode and Wireshark show it): firmware sends the raw bytes.
const UUID = '2e1f3c8d-0000-0040-8000-525400e2e001'

/** The readable view the golden tests compare against. */
function view(p: DhcpPacket) {
  return {
    op: p.op,
    xid: p.xid,
    flags: p.flags,
    ciaddr: p.ciaddr,
    giaddr: p.giaddr,
    chaddr: p.chaddr,
    sname: p.sname,
    file: p.file,
    type: messageType(p),
    vendorClass: vendorClass(p),
    arch: clientArchitectures(p),
    ndi: clientNdi(p),
    uuid: clientUuid(p)?.uuid,
    userClass: userClasses(p),
    ipxe: ipxeOptions(p)?.map((o) => [o.code, o.data.toString('hex')]),
    clientId: clientId(p)?.toString('hex'),
    serverId: ipv4Option(p, 54),
    maxSize: maxMessageSize(p),
    codes: p.options.map((o) => o.code),
  }
}

t.test('the capture holds the 25 frames the README describes', async (t) => {
  t.equal(frames.length, 25)
  t.same(
    REQUEST_FRAMES.map((n) => [frame(frames, n).srcPort, frame(frames, n).dstPort]),
    [[68, 67], [68, 67], [4011, 4011], [68, 67], [68, 67], [68, 4011], [68, 67], [68, 67], [68, 67], [68, 67], [68, 4011]],
  )
})

t.test('OVMF native UEFI PXE DISCOVER (frame 1)', async (t) => {
  t.same(view(decode(frame(frames, 1).payload)), {
    op: 1,
    xid: 0xe2f80e04,
    flags: 0x8000,
    ciaddr: '0.0.0.0',
    giaddr: '0.0.0.0',
    chaddr: MAC,
    sname: '',
    file: '',
    type: 1,
    vendorClass: 'PXEClient:Arch:00007:UNDI:003000',
    arch: [7],
    ndi: { type: 1, major: 3, minor: 0 },
    uuid: UUID,
    userClass: undefined,
    ipxe: undefined,
    clientId: undefined,
    serverId: undefined,
    maxSize: 1472,
    codes: [53, 57, 55, 97, 94, 93, 60],
  })
})

t.test('OVMF REQUEST to 4011 (frame 6): unicast, ciaddr set', async (t) => {
  const v = view(decode(frame(frames, 6).payload))
  t.match(v, { op: 1, xid: 0xf843bb20, flags: 0, ciaddr: '10.213.0.141', type: 3, arch: [7], uuid: UUID })
  t.same(v.codes, [53, 55, 57, 60, 93, 94, 97])
})

t.test('iPXE snponly.efi DISCOVER (frame 8): raw user class, 175, 61', async (t) => {
  t.same(view(decode(frame(frames, 8).payload)), {
    op: 1,
    xid: 0xb3b34802,
    flags: 0,
    ciaddr: '0.0.0.0',
    giaddr: '0.0.0.0',
    chaddr: MAC,
    sname: '',
    file: '',
    type: 1,
    vendorClass: 'PXEClient:Arch:00007:UNDI:003010',
    arch: [7],
    ndi: { type: 1, major: 3, minor: 10 },
    uuid: UUID,
    userClass: ['iPXE'],
    ipxe: [
      [0xb1, '011af41000'], // bus id: PCI 1af4:1000 (virtio-net)
      [0xeb, '010000'], // version 1.0.0
      [0x17, '01'],
      [0x24, '01'], // EFI
      [0x13, '01'], // HTTP
      [0x11, '01'],
      [0x27, '01'],
      [0x29, '01'],
      [0x15, '01'],
      [0x12, '01'],
    ],
    clientId: `01${MAC.replace(/:/g, '')}`,
    serverId: undefined,
    maxSize: 1472,
    codes: [53, 57, 93, 94, 60, 77, 55, 175, 61, 97],
  })
})

t.test('udhcpc DISCOVER (frame 15): an ordinary client', async (t) => {
  const v = view(decode(frame(frames, 15).payload))
  t.match(v, { op: 1, xid: 0x507f161d, type: 1, vendorClass: 'udhcp 1.35.0', arch: undefined, maxSize: 576 })
  t.same(v.codes, [53, 57, 55, 60, 61])
})

t.test('SeaBIOS iPXE ROM DISCOVER (frame 19) and its 4011 REQUEST with 43.71 (frame 24)', async (t) => {
  const d = view(decode(frame(frames, 19).payload))
  t.match(d, { xid: 0x8ac36234, type: 1, vendorClass: 'PXEClient:Arch:00000:UNDI:002001', arch: [0], userClass: ['iPXE'] })
  t.same(d.ndi, { type: 1, major: 2, minor: 1 })
  // Same bus id and version as the chainloaded snponly.efi of frame 8: nothing marks this iPXE as a ROM.
  t.same(d.ipxe?.slice(0, 2), [
    [0xb1, '011af41000'],
    [0xeb, '010000'],
  ])
  const r = decode(frame(frames, 24).payload)
  t.match(view(r), { xid: 0, ciaddr: '10.213.0.141', type: 3, vendorClass: 'PXEClient', arch: [0] })
  t.same(
    pxeVendorOptions(r)?.map((o) => [o.code, o.data.toString('hex')]),
    [[71, '80030000']],
  )
})

t.test("dnsmasq's BIOS offer (frame 20) carries the 43 menu; its EFI offer (frame 3) has no 43", async (t) => {
  const bios = decode(frame(frames, 20).payload)
  t.same(
    pxeVendorOptions(bios)?.map((o) => o.code),
    [6, 10, 8, 9],
  )
  t.equal(getOption(decode(frame(frames, 3).payload).options, 43), undefined)
  const ack = decode(frame(frames, 7).payload)
  t.match(ack, { op: 2, yiaddr: '0.0.0.0', siaddr: '10.213.0.1', sname: '10.213.0.1', file: 'snponly.efi' })
})

t.test('every frame re-encodes byte-exact, including trailing padding', async (t) => {
  for (const f of frames) {
    const p = decode(f.payload)
    const out = encode(p)
    t.ok(out.equals(f.payload), `frame ${f.frame} (${f.payload.length} bytes) round-trips`)
    t.equal(encodingLength(p), f.payload.length)
    t.same(decode(out), p, `frame ${f.frame} decodes the same again`)
  }
})

/** A request built from frame 1 with its options area replaced by `area` (which must include END). */
function withOptionsArea(area: Buffer, patch?: (b: Buffer) => void): Buffer {
  const base = Buffer.from(frame(frames, 1).payload.subarray(0, 240))
  patch?.(base)
  return Buffer.concat([base, area])
}

t.test('PAD runs, missing END and trailing bytes survive the round trip', async (t) => {
  const area = Buffer.from([0, 0, 0, 53, 1, 1, 0, 60, 9, ...Buffer.from('PXEClient'), 0, 0, 255, 0, 0, 7, 0])
  const buf = withOptionsArea(area)
  const p = decode(buf)
  t.same(p.options.map((o) => o.code), [53, 60])
  t.same(p.layout?.options.tokens, [-3, 0, -1, 1, -2])
  t.ok(encode(p).equals(buf))
  const noEnd = withOptionsArea(Buffer.from([53, 1, 1, 0, 0]))
  t.ok(encode(decode(noEnd)).equals(noEnd), 'options area without END')
})

t.test('junk after the NUL in sname/file and in chaddr padding is kept', async (t) => {
  const buf = withOptionsArea(Buffer.from([53, 1, 1, 255]), (b) => {
    b.write('boot\0junk', 108, 'latin1')
    b.write('srv\0x', 44, 'latin1')
    b[40] = 0xaa
  })
  const p = decode(buf)
  t.equal(p.file, 'boot')
  t.equal(p.sname, 'srv')
  t.equal(p.chaddr, MAC)
  t.ok(encode(p).equals(buf))
  p.file = 'other'
  t.equal(encode(p).toString('latin1', 108, 114), 'other\0', 'an edited field is written fresh')
})

t.test('option overload (52): file, sname and both', async (t) => {
  const file = Buffer.alloc(128)
  Buffer.from([67, 11, ...Buffer.from('snponly.efi'), 0, 0, 12, 3, ...Buffer.from('abc'), 255]).copy(file)
  const sname = Buffer.alloc(64)
  Buffer.from([66, 8, ...Buffer.from('10.0.0.1'), 255]).copy(sname)
  for (const [value, codes] of [
    [1, [53, 52, 67, 12]],
    [2, [53, 52, 66]],
    [3, [53, 52, 67, 12, 66]],
  ] as const) {
    const buf = withOptionsArea(Buffer.from([53, 1, 1, 52, 1, value, 255]), (b) => {
      file.copy(b, 108)
      sname.copy(b, 44)
    })
    const p = decode(buf)
    t.same(p.options.map((o) => o.code), codes, `overload ${value}`)
    t.equal(p.file, value === 2 ? 'C\x0bsnponly.efi' : '', `overload ${value}: file text`)
    t.ok(encode(p).equals(buf), `overload ${value} round-trips`)
  }
})

t.test('RFC 3396 split options are joined by the getters and kept apart on the wire', async (t) => {
  const buf = withOptionsArea(Buffer.from([53, 1, 1, 60, 3, ...Buffer.from('PXE'), 60, 6, ...Buffer.from('Client'), 255]))
  const p = decode(buf)
  t.equal(vendorClass(p), 'PXEClient')
  t.equal(p.options.length, 3)
  t.ok(encode(p).equals(buf))
})

t.test('option 77 with and without the RFC 3004 length prefix', async (t) => {
  const prefixed = decode(withOptionsArea(Buffer.from([53, 1, 1, 77, 10, 4, ...Buffer.from('iPXE'), 4, ...Buffer.from('gPXE'), 255])))
  t.same(userClasses(prefixed), ['iPXE', 'gPXE'])
  const raw = decode(withOptionsArea(Buffer.from([53, 1, 1, 77, 4, ...Buffer.from('iPXE'), 255])))
  t.same(userClasses(raw), ['iPXE'])
  t.same([...encodeUserClasses(['iPXE'])], [4, 0x69, 0x50, 0x58, 0x45])
})

t.test('option 93 as a list, 94, 97, 61 raw', async (t) => {
  const p = decode(
    withOptionsArea(
      Buffer.from([53, 1, 1, 93, 4, 0, 16, 0, 7, 94, 3, 1, 3, 16, 61, 3, 0xff, 1, 2, 97, 17, 0, ...Buffer.alloc(16, 0xab), 255]),
    ),
  )
  t.same(clientArchitectures(p), [16, 7])
  t.same(clientNdi(p), { type: 1, major: 3, minor: 16 })
  t.same(clientUuid(p), { type: 0, uuid: 'abababab-abab-abab-abab-abababababab' })
  t.equal(clientId(p)?.toString('hex'), 'ff0102')
})

t.test('sub-options: 43 with PAD/END encodes and decodes', async (t) => {
  const subs = [
    { code: 6, data: Buffer.from([8]) },
    { code: 10, data: Buffer.from([0, 0x50, 0x58, 0x45]) },
  ]
  const enc = encodeSubOptions(subs, { end: true })
  t.equal(enc.toString('hex'), '0601080a0400505845ff')
  t.same(decodeSubOptions(43, Buffer.concat([Buffer.from([0, 0]), enc, Buffer.from([1, 2])])), subs)
})

t.test('a built packet gets the canonical layout: END and zero padding to 300 bytes', async (t) => {
  const p: DhcpPacket = {
    op: 2,
    htype: 1,
    hlen: 6,
    hops: 0,
    xid: 1,
    secs: 0,
    flags: 0x8000,
    ciaddr: '0.0.0.0',
    yiaddr: '0.0.0.0',
    siaddr: '10.0.0.1',
    giaddr: '0.0.0.0',
    chaddr: MAC,
    sname: '',
    file: 'undionly.kpxe',
    options: [{ code: 53, data: Buffer.from([2]) }],
  }
  const out = encode(p)
  t.equal(out.length, 300)
  t.equal(out.toString('hex', 240, 244), '350102ff')
  t.equal(out.toString('latin1', 108, 122), 'undionly.kpxe\0')
  t.throws(() => encode({ ...p, file: 'x'.repeat(128) }), { code: 'ERR_DHCP_ENCODE', message: 'DHCP file has 128 bytes, at most 127 fit' })
  t.throws(() => encode({ ...p, siaddr: '10.0.0' }), { code: 'ERR_DHCP_ENCODE' })
  t.throws(() => encode({ ...p, options: [{ code: 52, data: Buffer.from([1]) }] }), { code: 'ERR_DHCP_ENCODE' })
  t.throws(() => encode({ ...p, options: [{ code: 67, data: Buffer.alloc(256) }] }), {
    message: 'DHCP option 67 has 256 bytes, at most 255 fit',
  })
})
