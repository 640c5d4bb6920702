import t from 'tap'
import { decode, encode } from '../../src/dhcp/index.js'
import { createAddressTracker } from '../../src/addresses/tracker.js'
import { parseTcpdumpArpLine } from '../../src/addresses/arp-capture.js'
import { DhcpMessageType as T, clientPacket, serverReply } from './packets.js'

const A = '02:00:00:00:00:0a'
const B = '02:00:00:00:00:0b'
const C = '02:00:00:00:00:0c'
const wire = <P extends Parameters<typeof encode>[0]>(p: P) => decode(encode(p)) // every packet goes through the codec

function setup(extra: Partial<Parameters<typeof createAddressTracker>[0]> = {}) {
  let clock = Date.parse('2026-01-01T00:00:00Z')
  const tracker = createAddressTracker({ strayAfterMs: 60_000, conflictWindowMs: 300_000, allowedServers: [], now: () => clock, ...extra })
  return { tracker, advance: (ms: number) => (clock += ms), now: () => clock }
}

t.test('tcpdump ARP lines parse; other lines do not', async (t) => {
  t.same(parseTcpdumpArpLine('1795306435.943524 b2:75:ef:da:11:7b > ff:ff:ff:ff:ff:ff, ethertype ARP (0x0806), length 58: Request who-has 10.213.99.1 tell 0.0.0.0, length 44'), {
    time: 1795306435944, op: 'request', senderMac: 'b2:75:ef:da:11:7b', senderIp: '0.0.0.0', targetIp: '10.213.99.1',
  })
  t.same(parseTcpdumpArpLine('1795306435.943547 0a:94:c4:08:11:aa > b2:75:ef:da:11:7b, ethertype ARP (0x0806), length 42: Reply 10.213.99.1 is-at 0a:94:c4:08:11:aa, length 28'), {
    time: 1795306435944, op: 'reply', senderMac: '0a:94:c4:08:11:aa', senderIp: '10.213.99.1', targetIp: '',
  })
  t.match(parseTcpdumpArpLine('1795306438.101488 b2:75:ef:da:11:7b > ff:ff:ff:ff:ff:ff, ethertype ARP (0x0806), length 58: Request who-has 10.213.99.2 (ff:ff:ff:ff:ff:ff) tell 10.213.99.2, length 44'), {
    op: 'request', senderIp: '10.213.99.2', targetIp: '10.213.99.2',
  })
  t.equal(parseTcpdumpArpLine('listening on e0, link-type EN10MB (Ethernet), snapshot length 262144 bytes'), undefined)
  t.equal(parseTcpdumpArpLine('1.0 aa:bb:cc:dd:ee:ff > ff:ff:ff:ff:ff:ff, ethertype IPv4 (0x0800), length 42: x'), undefined)
})

t.test('bindings from DHCP and ARP; REQUEST + ACK + ARP make source both', async (t) => {
  const { tracker, advance } = setup()
  tracker.observeDhcp(wire(clientPacket({ type: T.REQUEST, mac: A, requested: '10.0.0.5', server: '10.0.0.1', hostname: 'node-a', uuid: '8d3c1f2e-0000-4000-8000-525400e2e001' })), 67)
  advance(10)
  tracker.observeDhcp(wire(serverReply({ type: T.ACK, mac: A, yiaddr: '10.0.0.5', server: '10.0.0.1', leaseSeconds: 3600 })), 68)
  advance(1000)
  tracker.observeArp({ time: Date.parse('2026-01-01T00:00:01.010Z'), op: 'reply', senderMac: A, senderIp: '10.0.0.5', targetIp: '' })
  const [b] = tracker.leases()
  t.match(b, { mac: A, ip: '10.0.0.5', server: '10.0.0.1', hostname: 'node-a', uuid: '8d3c1f2e-0000-4000-8000-525400e2e001', source: 'both', state: 'acked', leaseExpires: '2026-01-01T01:00:00.010Z', machine: 'uuid:8d3c1f2e-0000-4000-8000-525400e2e001' })
  t.same(tracker.evaluate(), [], 'nothing wrong')
})

t.test('duplicate: two MACs claim one IP (REQUEST and ARP), explained with both MACs; clears after the window', async (t) => {
  const { tracker, advance } = setup()
  tracker.observeDhcp(wire(clientPacket({ type: T.REQUEST, mac: A, requested: '10.0.0.7', server: '10.0.0.1' })), 67)
  tracker.observeDhcp(wire(clientPacket({ type: T.REQUEST, mac: B, requested: '10.0.0.7', server: '10.0.0.1' })), 67)
  const [f] = tracker.evaluate()
  t.match(f, { id: 'duplicate:10.0.0.7', kind: 'duplicate', ip: '10.0.0.7', macs: [A, B] })
  t.match(f!.explanation, /10\.0\.0\.7 is claimed by 2 MACs \(02:00:00:00:00:0a, 02:00:00:00:00:0b\)/)
  t.equal(f!.evidence.length, 2)
  t.same(tracker.counts(), { duplicate: 1, stray: 0, 'multi-nic': 0, 'rogue-server': 0, 'next-server': 0, 'ipxe-not-run': 0 })
  advance(301_000)
  t.same(tracker.evaluate().filter((x) => x.kind === 'duplicate'), [], 'cleared when the claims age out')
})

t.test('one machine (same UUID) on two MACs is not a duplicate; DECLINE is', async (t) => {
  const { tracker, now } = setup()
  const uuid = '11111111-2222-3333-4444-555555555555'
  tracker.observeDhcp(wire(clientPacket({ type: T.DISCOVER, mac: A, uuid, vendorClass: 'PXEClient:Arch:00007:UNDI:003000' })), 67)
  tracker.observeDhcp(wire(clientPacket({ type: T.DISCOVER, mac: B, uuid, vendorClass: 'PXEClient:Arch:00007:UNDI:003000' })), 67)
  tracker.observeDhcp(wire(clientPacket({ type: T.REQUEST, mac: A, requested: '10.0.0.8', uuid })), 67)
  tracker.observeArp({ time: now(), op: 'reply', senderMac: B, senderIp: '10.0.0.8', targetIp: '' })
  tracker.observeDhcp(wire(clientPacket({ type: T.DECLINE, mac: C, requested: '10.0.0.9', server: '10.0.0.1' })), 67)
  const fs = tracker.evaluate()
  t.same(fs.map((f) => f.id).sort(), ['duplicate:10.0.0.9', 'multi-nic:11111111-2222-3333-4444-555555555555'])
  t.match(fs.find((f) => f.kind === 'multi-nic'), { uuid, macs: [A, B] })
  t.same(tracker.machines().find((m) => m.uuid === uuid)?.macs, [A, B], 'one machine, two NICs')
  t.match(fs.find((f) => f.kind === 'duplicate')?.explanation, /declined 10\.0\.0\.9/)
})

t.test('stray: a leased MAC silent past the window, verified by a probe; clears when it shows up', async (t) => {
  const probes: string[] = []
  const { tracker, advance } = setup({ verify: (ip) => probes.push(ip), verifyGraceMs: 2000 })
  tracker.observeDhcp(wire(clientPacket({ type: T.REQUEST, mac: A, requested: '10.0.0.10', server: '10.0.0.1' })), 67)
  tracker.observeDhcp(wire(clientPacket({ type: T.REQUEST, mac: B, requested: '10.0.0.11', server: '10.0.0.1' })), 67)
  advance(30_000)
  tracker.observeArp({ time: Date.parse('2026-01-01T00:00:30Z'), op: 'request', senderMac: B, senderIp: '10.0.0.11', targetIp: '10.0.0.1' })
  advance(31_000)
  t.same(tracker.evaluate(), [], 'A is silent 61 s: probed first, not yet declared')
  t.same(probes, ['10.0.0.10'])
  advance(2500)
  const [f] = tracker.evaluate()
  t.match(f, { id: `stray:${A}:10.0.0.10`, kind: 'stray', macs: [A] })
  t.match(f!.explanation, /has not been seen on the wire for 64 s; an ARP probe .* got no answer/)
  tracker.observeArp({ time: Date.parse('2026-01-01T00:01:04Z'), op: 'reply', senderMac: A, senderIp: '10.0.0.10', targetIp: '' })
  t.same(tracker.evaluate(), [], 'cleared: A answered')
})

t.test('stray answered from another MAC (bond member)', async (t) => {
  const { tracker, advance, now } = setup()
  tracker.observeDhcp(wire(serverReply({ type: T.ACK, mac: A, yiaddr: '10.0.0.12', server: '10.0.0.1', leaseSeconds: 86400 })), 68)
  const uuid = '99999999-2222-3333-4444-555555555555'
  // A and B are one chassis: B answering is not a duplicate, but A is a stray lease.
  tracker.observeDhcp(wire(clientPacket({ type: T.DISCOVER, mac: A, uuid })), 67)
  tracker.observeDhcp(wire(clientPacket({ type: T.DISCOVER, mac: B, uuid })), 67)
  advance(1000)
  tracker.observeArp({ time: now(), op: 'reply', senderMac: B, senderIp: '10.0.0.12', targetIp: '' })
  advance(61_000)
  const fs = tracker.evaluate()
  t.same(fs.map((f) => f.id), [`stray:${A}:10.0.0.12`])
  t.match(fs[0]!.explanation, /answered only by 02:00:00:00:00:0b/)
  t.same(fs[0]!.macs, [A, B])
})

t.test('rogue servers: allow-list, or a second server when none is configured; proxy offers do not count', async (t) => {
  const { tracker } = setup({ allowedServers: ['10.0.0.1'] })
  tracker.observeDhcp(wire(serverReply({ type: T.OFFER, mac: A, yiaddr: '10.0.0.20', server: '10.0.0.1' })), 68)
  tracker.observeDhcp(wire(serverReply({ type: T.OFFER, mac: A, yiaddr: '0.0.0.0', server: '10.0.0.3' })), 68)
  t.same(tracker.evaluate(), [])
  tracker.observeDhcp(wire(serverReply({ type: T.OFFER, mac: A, yiaddr: '192.168.1.50', server: '192.168.1.1' })), 68)
  const [f] = tracker.evaluate()
  t.match(f, { id: 'rogue-server:192.168.1.1', server: '192.168.1.1', macs: [A] })
  t.match(f!.explanation, /not allowed \(10\.0\.0\.1\)/)

  const s2 = setup()
  s2.tracker.observeDhcp(wire(serverReply({ type: T.ACK, mac: A, yiaddr: '10.0.0.20', server: '10.0.0.1' })), 68)
  t.same(s2.tracker.evaluate(), [], 'one server and no allow-list: fine')
  s2.tracker.observeDhcp(wire(clientPacket({ type: T.REQUEST, mac: B, requested: '10.9.0.5', server: '10.9.0.1' })), 67)
  t.match(s2.tracker.evaluate(), [{ id: 'rogue-server:10.9.0.1', explanation: /second DHCP server 10\.9\.0\.1 hands out addresses beside 10\.0\.0\.1/ }])
})

t.test('snapshot/restore keeps the table; RELEASE ends a claim', async (t) => {
  const { tracker } = setup()
  tracker.observeDhcp(wire(clientPacket({ type: T.REQUEST, mac: A, requested: '10.0.0.30', hostname: 'h' })), 67)
  t.ok(tracker.dirty)
  const snap = JSON.parse(JSON.stringify(tracker.snapshot()))
  t.notOk(tracker.dirty)
  const { tracker: t2 } = setup()
  t2.restore(snap)
  t.same(t2.leases(), tracker.leases())
  t2.observeDhcp(wire(clientPacket({ type: T.RELEASE, mac: A, ciaddr: '10.0.0.30' })), 67)
  t.equal(t2.leases()[0]!.state, 'released')
})

t.test('next-server (issue 19): a shim-grub machine ACKed by the site server with another siaddr; clears when fixed', async (t) => {
  const { tracker, advance } = setup({ allowedServers: ['10.0.0.1'], shimGrub: { server: '10.0.0.2', isShimGrub: (mac) => mac === A } })
  tracker.observeDhcp(wire({ ...serverReply({ type: T.ACK, mac: A, yiaddr: '10.0.0.20', server: '10.0.0.1' }), siaddr: '0.0.0.0' }), 68)
  tracker.observeDhcp(wire({ ...serverReply({ type: T.ACK, mac: B, yiaddr: '10.0.0.21', server: '10.0.0.1' }), siaddr: '0.0.0.0' }), 68)
  tracker.observeDhcp(wire({ ...serverReply({ type: T.OFFER, mac: A, yiaddr: '10.0.0.20', server: '10.0.0.1' }), siaddr: '0.0.0.0' }), 68)
  const [f, ...rest] = tracker.evaluate()
  t.same(rest, [], 'only the shim-grub machine, only for its ACK')
  t.match(f, { id: `next-server:${A}`, kind: 'next-server', macs: [A], server: '10.0.0.1' })
  t.match(f!.explanation, /loader: shim-grub.*no next-server \(siaddr 0\.0\.0\.0\).*Set next-server = 10\.0\.0\.2 on the site DHCP server/)
  t.equal(tracker.counts()['next-server'], 1)
  advance(1000)
  tracker.observeDhcp(wire({ ...serverReply({ type: T.ACK, mac: A, yiaddr: '10.0.0.20', server: '10.0.0.1' }), siaddr: '10.0.0.2' }), 68)
  t.same(tracker.evaluate(), [], 'the site server now names pxebox: cleared')
  tracker.observeDhcp(wire({ ...serverReply({ type: T.ACK, mac: A, yiaddr: '10.0.0.20', server: '10.0.0.1' }), siaddr: '10.0.0.9' }), 'self')
  t.same(tracker.evaluate(), [], "pxebox's own ACKs (authoritative mode) are not the site's")
})
