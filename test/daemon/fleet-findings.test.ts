/**
 * Findings shared through etcd (issue 17) with real daemons: appliance pxe-a (proxy DHCP, address tracking) serves
 * site-1's bridge, pxe-b site-2's, both over a real 3-member etcd on the management network (test/helpers/fleet-lab.ts).
 * A rogue DHCP server on site-1's bridge (a namespace sending ACK broadcasts to port 68 from 67, as a DHCP server
 * does) is found by pxe-a's tracker from the packets; pxe-b's `GET /v1/fleet/findings` lists it with pxe-a's name
 * and site, and drops it once it clears at pxe-a (the server silent for tracking.conflict_window). pxe-a killed with
 * SIGKILL (by PID): its last findings stay listed at pxe-b, marked gone once its heartbeat lease expires.
 * The publisher's bounds, restart and outage behaviour over etcd without daemons: test/addresses/findings-store.test.ts.
 */
import t from 'tap'
import { netnsUnavailable } from '../helpers/netns.js'
import { startFleetLab, type FleetLab } from '../helpers/fleet-lab.js'
import { GONE_WITHIN_MS, killUntilGone, startFleetAppliance } from '../helpers/fleet-appliance.js'
import { expectGone } from '../helpers/fleet-api.js'
import { encode } from '../../src/dhcp/index.js'
import { DhcpMessageType as T, serverReply } from '../addresses/packets.js'

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** Sends `packets` DHCP replies from port 67 to 255.255.255.255:68 inside `ns`, as a DHCP server broadcasts them. */
async function broadcastReplies(lab: FleetLab, ns: string, packets: Buffer[]): Promise<void> {
  const script = [
    "const s = require('node:dgram').createSocket({ type: 'udp4', reuseAddr: true })",
    'const all = process.argv.slice(1).map((b) => Buffer.from(b, "base64"))',
    's.bind(67, async () => {',
    '  s.setBroadcast(true)',
    '  for (const p of all) await new Promise((ok, fail) => s.send(p, 68, "255.255.255.255", (e) => (e ? fail(e) : ok())))',
    '  s.close()',
    '})',
  ].join('\n')
  await lab.lab.exec(ns, [process.execPath, '-e', script, ...packets.map((p) => p.toString('base64'))])
}

interface FleetFindings {
  available: boolean
  current: boolean
  findings: { id: string; kind: string; server?: string; appliance: string; site: string; appliance_state: string }[]
  skipped: number
}
const fleetFindingsAt = async (url: string): Promise<FleetFindings> => (await fetch(`${url}/v1/fleet/findings`, { signal: AbortSignal.timeout(5000) })).json() as Promise<FleetFindings>

async function until(what: string, ok: () => Promise<boolean>, ms = 30_000): Promise<number> {
  const start = Date.now()
  while (Date.now() - start < ms) {
    if (await ok()) return Date.now() - start
    await sleep(100)
  }
  throw new Error(`timed out after ${ms} ms waiting until ${what}`)
}

const reason = await netnsUnavailable()
t.test("a rogue server found at pxe-a is listed at pxe-b with pxe-a's name and site, goes when it clears, stays marked gone after kill -9", { skip: reason ?? false }, async (t) => {
  const lab = await startFleetLab(t, { name: 'flf', subnet: 190, sites: 2 })
  const [whereA, whereB] = [await lab.appliance(0, 0), await lab.appliance(1, 1)]
  const site1 = lab.siteNet(0)
  // Allowed: the site's own server (.1); conflict_window 4 s so the finding clears within the test; stray_after 4 s
  // makes the tracker evaluate every second.
  const tracking = `{ enabled: true, arp: false, allowed_servers: [${site1}.1], conflict_window: 4, stray_after: 4 }`
  const [a, b] = await Promise.all([
    startFleetAppliance(t, lab, whereA, { name: 'pxe-a', site: 'site-1', prefix: 'fleet-findings', tracking }),
    startFleetAppliance(t, lab, whereB, { name: 'pxe-b', site: 'site-2', prefix: 'fleet-findings', tracking: '{ enabled: false }' }),
  ])

  const rogue = await lab.machine(0, 0)
  await lab.lab.exec(rogue.ns, ['ip', 'addr', 'add', `${site1}.66/24`, 'dev', rogue.ifname])
  const acks = [1, 2, 3].map((i) => encode(serverReply({ type: T.ACK, mac: `52:54:00:b7:01:0${i}`, yiaddr: `${site1}.${100 + i}`, server: `${site1}.66`, leaseSeconds: 600, xid: i })))
  const id = `rogue-server:${site1}.66`
  const listed = async (): Promise<FleetFindings['findings'][number] | undefined> => (await fleetFindingsAt(b.url)).findings.find((f) => f.id === id)

  t.same(await fleetFindingsAt(b.url), { available: true, current: true, findings: [], skipped: 0 }, 'nothing found yet')
  const sentAt = Date.now()
  await broadcastReplies(lab, rogue.ns, acks)
  const ms = await until("pxe-b lists pxe-a's finding", async () => (await listed()) !== undefined)
  t.comment(`listed at pxe-b ${ms} ms after the rogue ACKs (tracker evaluation every 1 s, publisher every 2 s)`)
  t.match(await listed(), { kind: 'rogue-server', server: `${site1}.66`, appliance: 'pxe-a', site: 'site-1', appliance_state: 'up' }, "with pxe-a's name, site and state")
  const own = (await (await fetch(`${a.url}/v1/findings`)).json()) as { findings: { id: string }[] }
  t.ok(own.findings.some((f) => f.id === id), "pxe-a's own /v1/findings has it")
  const ownB = (await (await fetch(`${b.url}/v1/findings`)).json()) as { findings: { id: string }[] }
  t.same(ownB.findings, [], "pxe-b's own /v1/findings does not")
  t.ok(Date.now() - sentAt < 15_000, 'listed within 15 s')

  const cleared = await until('the finding clears at pxe-b', async () => (await listed()) === undefined)
  t.comment(`cleared at pxe-b ${cleared} ms after it was listed (conflict_window 4 s)`)

  await broadcastReplies(lab, rogue.ns, acks)
  await until('pxe-b lists it again', async () => (await listed()) !== undefined)
  await expectGone(t, lab.etcd.term, GONE_WITHIN_MS, 'pxe-a (at pxe-b)', () => killUntilGone(t, a, 'pxe-a', b.url))
  t.match(await listed(), { appliance: 'pxe-a', site: 'site-1', appliance_state: 'gone' }, "pxe-a's last finding stays listed, marked gone")
})
