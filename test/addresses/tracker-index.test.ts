/**
 * The tracker's lookups by IP and by MAC (macForIp, ipsOf) answer from an index kept beside the binding table. The
 * machine store asks macForIp for every event without a MAC (each TFTP request); it used to build leases() for it,
 * scanning, sorting and formatting the whole table per request: a third of pxebox's CPU under bench/abuse's TFTP
 * flood, which starved the valid client. These tests hold the index to what the full table says, through churn,
 * eviction and a snapshot restore (the speed itself is bench/abuse's to show).
 */
import t, { type Test } from 'tap'
import { createAddressTracker, type AddressTracker } from '../../src/addresses/tracker.js'
import { DhcpMessageType as T, clientPacket, macOf, serverReply } from './packets.js'

const SERVER = '10.213.141.1'
const ip = (n: number): string => `10.213.141.${10 + (n % 200)}`

/** What the old code answered: the most recently seen binding on `addr` in the full table. */
const scanMacForIp = (tracker: AddressTracker, addr: string): string | undefined => tracker.leases().find((l) => l.ip === addr)?.mac
const scanIpsOf = (tracker: AddressTracker, mac: string): string[] =>
  tracker
    .leases()
    .filter((b) => b.mac === mac && (b.state === 'acked' || b.state === 'requested'))
    .map((b) => b.ip)

function agrees(t: Test, tracker: AddressTracker, macs: number, note: string): void {
  let mismatches = 0
  for (let n = 0; n < 200; n++) if (tracker.macForIp(ip(n)) !== scanMacForIp(tracker, ip(n))) mismatches++
  for (let m = 0; m < macs; m++) {
    const mac = macOf(m, '02:41:00')
    if (JSON.stringify(tracker.ipsOf(mac, ['acked', 'requested'])) !== JSON.stringify(scanIpsOf(tracker, mac))) mismatches++
  }
  t.equal(mismatches, 0, `index and table agree ${note}`)
}

t.test('macForIp and ipsOf agree with the binding table through churn, eviction and restore', async (t) => {
  let clock = Date.parse('2026-01-01T00:00:00Z')
  const opts = { strayAfterMs: 60_000, allowedServers: [SERVER], ownServers: [SERVER], now: () => clock, maxBindings: 150 }
  const tracker = createAddressTracker(opts)
  // 3,000 ACKs of 200 addresses to 400 MACs: addresses change hands, and the 150-binding cap evicts constantly.
  for (let i = 0; i < 3000; i++) {
    clock += 1000
    const mac = macOf((i * 7) % 400, '02:41:00')
    tracker.observeDhcp(serverReply({ type: T.ACK, mac, yiaddr: ip(i * 13), server: SERVER, xid: i }), 68)
  }
  t.ok(tracker.evictions.bindings > 0, `bindings were evicted (${tracker.evictions.bindings})`)
  agrees(t, tracker, 400, 'after churn and eviction')

  // The newest binding on an address wins; an address nobody holds has no MAC.
  clock += 1000
  tracker.observeDhcp(serverReply({ type: T.ACK, mac: macOf(399, '02:41:00'), yiaddr: ip(5), server: SERVER, xid: 9999 }), 68)
  t.equal(tracker.macForIp(ip(5)), macOf(399, '02:41:00'))
  t.equal(tracker.macForIp('10.213.141.250'), undefined)
  t.same(tracker.ipsOf('02:41:ff:ff:ff:ff'), [])

  const restored = createAddressTracker(opts)
  restored.restore(JSON.parse(JSON.stringify(tracker.snapshot())))
  agrees(t, restored, 400, 'after a snapshot restore')
  t.equal(restored.macForIp(ip(5)), macOf(399, '02:41:00'))
})

t.test('a REQUEST binds the requested address for ipsOf, a DISCOVER binds none', async (t) => {
  const tracker = createAddressTracker({ strayAfterMs: 60_000, allowedServers: [] })
  const mac = '02:41:aa:00:00:01'
  tracker.observeDhcp(clientPacket({ type: T.DISCOVER, mac, xid: 1 }), 67)
  t.same(tracker.ipsOf(mac), [])
  tracker.observeDhcp(clientPacket({ type: T.REQUEST, mac, xid: 2, requested: '10.213.141.77', server: SERVER }), 67)
  t.same(tracker.ipsOf(mac, ['acked', 'requested']), ['10.213.141.77'])
  t.equal(tracker.macForIp('10.213.141.77'), mac)
})
