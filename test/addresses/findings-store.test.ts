/**
 * Findings shared through etcd (issue 17), over a real 3-member etcd: appliance A's address tracker, fed real DHCP
 * packets (through the codec), raises a rogue-server finding; A's publisher writes it to the shared store through
 * the outage layer, as the daemon wires it; appliance B's API (in process, over its own copy of the same etcd and
 * its own registration) lists it under `/v1/fleet/findings` with A's name, site and registry state, and drops it when
 * it clears at A. Also: a restart replaces the appliance's own set and leaves the others'; a flood of rogue servers
 * and of boot-side findings stays within the per-kind bound in documents and in writes (counted by a pass-through
 * over the real store); with etcd stopped nothing is queued, and the set is reconciled whole when it answers again.
 */
import t, { type Test } from 'tap'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { decode, encode } from '../../src/dhcp/index.js'
import { createAddressTracker } from '../../src/addresses/tracker.js'
import { createIpxeHandoffWatch } from '../../src/boot/ipxe-handoff.js'
import { FINDING_KIND, startFindingsPublisher, type FindingsPublisher } from '../../src/addresses/findings-store.js'
import type { Finding } from '../../src/addresses/model.js'
import { connectEtcdStore, openMirroredStore, registerAppliance, type ApplianceRegistry, type EtcdStore, type MirroredStore, type Store } from '../../src/store/index.js'
import { ETCD_PORTS, startEtcdCluster } from '../helpers/etcd.js'
import { operatorApp } from '../http/api/fixture.js'
import { DhcpMessageType as T, macOf, serverReply } from './packets.js'

const cluster = await startEtcdCluster(t, ETCD_PORTS.findings)
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
const wire = <P extends Parameters<typeof encode>[0]>(p: P) => decode(encode(p))

async function until(what: string, ok: () => Promise<boolean> | boolean, ms = 20_000): Promise<number> {
  const start = Date.now()
  while (Date.now() - start < ms) {
    if (await ok()) return Date.now() - start
    await sleep(25)
  }
  throw new Error(`timed out after ${ms} ms waiting until ${what}`)
}

/** One appliance's store as the daemon opens it: the outage layer over etcd, with a copy in `dir`. */
async function sharedStore(t: Test, prefix: string, name: string): Promise<{ etcd: EtcdStore; mirror: MirroredStore }> {
  const dir = await mkdtemp(join(tmpdir(), `pxebox-findings-${name}-`))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const etcd = connectEtcdStore({ endpoints: cluster.endpoints, prefix, callTimeoutMs: 2000 })
  const mirror = await openMirroredStore({ remote: etcd, file: join(dir, 'store-cache.db'), queued: ['machine', 'machine-timeline'], kinds: [FINDING_KIND, 'appliance', 'appliance-seen'], probeMs: 200 })
  return { etcd, mirror }
}

const register = (etcd: EtcdStore, name: string, site: string): Promise<ApplianceRegistry> =>
  registerAppliance(etcd, { name, site, interface: 'pxe0', address: '10.0.0.2', version: 'test', started: new Date().toISOString() }, { ttlSeconds: 5 })

/** A tracker on a fake clock with 10.0.0.1 as the site's one allowed DHCP server. */
function tracker(extra: Partial<Parameters<typeof createAddressTracker>[0]> = {}) {
  const clock = { t: Date.parse('2026-01-01T00:00:00Z') }
  const tr = createAddressTracker({ strayAfterMs: 60_000, conflictWindowMs: 60_000, allowedServers: ['10.0.0.1'], now: () => clock.t, ...extra })
  return { tracker: tr, clock }
}

/** A pass-through over the real store that counts the writes the publisher makes. */
function counted(store: MirroredStore): { store: Store; writes: { batches: number; ops: number; other: number } } {
  const writes = { batches: 0, ops: 0, other: 0 }
  const s = Object.create(store) as Record<string, unknown>
  s.batch = (ops: Parameters<Store['batch']>[0], o: Parameters<Store['batch']>[1]) => {
    writes.batches++
    writes.ops += ops.length
    return store.batch(ops, o)
  }
  for (const m of ['put', 'create', 'delete'] as const) {
    s[m] = (...args: unknown[]) => {
      writes.other++
      return (store[m] as (...a: unknown[]) => unknown)(...args)
    }
  }
  return { store: s as unknown as Store, writes }
}

const ownIds = async (store: Store, appliance: string): Promise<string[]> => (await store.list(FINDING_KIND)).filter((e) => e.id.startsWith(`${appliance}@`)).map((e) => e.id)

interface ListedFinding {
  id: string
  kind: string
  server?: string
  appliance: string
  site: string
  appliance_state: string
}

t.test("a rogue DHCP server seen at A is listed by B with A's name, site and state, and goes when it clears", async (t) => {
  const a = await sharedStore(t, '/findings-wire', 'a')
  let b: { etcd: EtcdStore; mirror: MirroredStore } | undefined
  let regB: ApplianceRegistry | undefined
  const o = await operatorApp(t, {
    identity: { site: 'site-2', appliance: 'pxe-b' },
    fleet: { appliances: () => regB?.list() ?? [], storeUp: () => b?.mirror.up ?? false },
    openDataStore: async () => (b = await sharedStore(t, '/findings-wire', 'b')).mirror,
  })
  regB = await register(b!.etcd, 'pxe-b', 'site-2')
  const regA = await register(a.etcd, 'pxe-a', 'site-1')
  const { tracker: tr, clock } = tracker()
  const pub = startFindingsPublisher({ store: a.mirror, appliance: 'pxe-a', site: 'site-1', findings: () => tr.findings(), maxPerKind: () => 100, everyMs: 250, now: () => clock.t })
  t.teardown(async () => {
    await pub.close()
    await regA.close().catch(() => undefined)
    await a.mirror.close()
    await regB?.close().catch(() => undefined)
  })
  const fleet = async (): Promise<{ available: boolean; current: boolean; findings: ListedFinding[]; skipped: number }> => (await o.app.inject({ url: '/v1/fleet/findings' })).json()

  t.same(await fleet(), { available: true, current: true, findings: [], skipped: 0 }, 'nothing found yet')
  tr.observeDhcp(wire(serverReply({ type: T.OFFER, mac: macOf(1), yiaddr: '192.168.1.50', server: '192.168.1.1' })), 68)
  t.match(tr.evaluate(), [{ id: 'rogue-server:192.168.1.1' }], "A's tracker found it")
  const ms = await until('B lists the finding', async () => (await fleet()).findings.length > 0)
  t.comment(`listed at B ${ms} ms after A's tracker found it (publisher every 250 ms)`)
  t.ok(ms < 3000, `listed at B within 3 s (${ms} ms)`)
  const body = await fleet()
  t.match(body, { available: true, current: true, skipped: 0 })
  t.match(body.findings, [{ id: 'rogue-server:192.168.1.1', kind: 'rogue-server', server: '192.168.1.1', appliance: 'pxe-a', site: 'site-1', appliance_state: 'up' }])
  t.same((await o.app.inject({ url: '/v1/findings' })).json().findings, [], "B's own /v1/findings stays B's own")

  clock.t += 61_000
  t.same(tr.evaluate(), [], 'the server fell silent for the conflict window: cleared at A')
  await until('B no longer lists it', async () => (await fleet()).findings.length === 0)
  t.pass('cleared at B too')

  tr.observeDhcp(wire(serverReply({ type: T.ACK, mac: macOf(2), yiaddr: '192.168.1.51', server: '192.168.1.1' })), 68)
  tr.evaluate()
  await until('B lists it again', async () => (await fleet()).findings.length === 1)
  await regA.close()
  await until("B lists A's finding with A gone", async () => (await fleet()).findings[0]?.appliance_state === 'gone')
  t.pass("A's registration ended: its last findings stay listed, marked gone")
})

t.test("a restart replaces the appliance's own set; another appliance's documents stay", async (t) => {
  const a = await sharedStore(t, '/findings-restart', 'a')
  t.teardown(() => a.mirror.close())
  const finding = (id: string, kind: Finding['kind'] = 'duplicate'): Finding => ({ id, kind, macs: [], since: '2026-01-01T00:00:00.000Z', explanation: id, evidence: [] })
  const run = async (appliance: string, list: Finding[]): Promise<FindingsPublisher> => {
    const p = startFindingsPublisher({ store: a.mirror, appliance, site: 's', findings: () => list, maxPerKind: () => 100, everyMs: 60_000 })
    await p.publish()
    return p
  }
  const first = await run('pxe-a', [finding('duplicate:10.0.0.5'), finding('duplicate:10.0.0.6')])
  await first.close()
  const other = await run('pxe-b', [finding('stray:02:00:00:00:00:01:10.0.0.7', 'stray')])
  await other.close()
  t.same(await ownIds(a.mirror, 'pxe-a'), ['pxe-a@duplicate:10.0.0.5', 'pxe-a@duplicate:10.0.0.6'])
  const again = await run('pxe-a', [finding('duplicate:10.0.0.6'), finding('multi-nic:4c4c4544-0035-5910-8051-b3c04f4a4d32', 'multi-nic')])
  await again.close()
  t.same((await a.mirror.list(FINDING_KIND)).map((e) => e.id), ['pxe-a@duplicate:10.0.0.6', 'pxe-a@multi-nic:4c4c4544-0035-5910-8051-b3c04f4a4d32', 'pxe-b@stray:02:00:00:00:00:01:10.0.0.7'], "the previous run's stale finding went; pxe-b's stayed")
})

t.test('a flood of rogue servers and boot-side findings: bounded documents and writes', async (t) => {
  const a = await sharedStore(t, '/findings-flood', 'a')
  t.teardown(() => a.mirror.close())
  const max = 5
  const { tracker: tr, clock } = tracker({ maxServers: 50, maxFindings: max })
  // The boot side's findings are bounded only by its machine table (10,000): the publisher bounds them itself.
  const handoff = createIpxeHandoffWatch({ timeoutMs: 1000, report: () => undefined, now: () => clock.t })
  const { store, writes } = counted(a.mirror)
  const pub = startFindingsPublisher({ store, appliance: 'pxe-a', site: 's', findings: () => [...tr.findings(), ...handoff.findings()], maxPerKind: () => max, everyMs: 60_000, now: () => clock.t })
  t.teardown(() => pub.close())
  const bound = 6 * (max + 2)
  let n = 0
  const flood = (packets: number): void => {
    for (let i = 0; i < packets; i++, n++) {
      const server = `10.66.${(n >> 8) & 255}.${n & 255}`
      tr.observeDhcp(wire(serverReply({ type: T.OFFER, mac: macOf(n), yiaddr: '10.66.200.1', server })), 68)
    }
    for (let i = 0; i < 40; i++) {
      const mac = macOf(n + i, '02:01:00')
      handoff.observe(mac, { time: new Date(clock.t).toISOString(), kind: 'tftp', mac, step: 'ipxe.efi', outcome: 'ok', detail: { file: 'ipxe.efi', bytes: 1_000_000 } })
    }
  }
  const rounds: { ops: number; batches: number; docs: number }[] = []
  for (let r = 0; r < 6; r++) {
    flood(3000)
    clock.t += 2000 // past the iPXE timeout: this round's 40 machines are reported
    tr.evaluate()
    handoff.evaluate()
    const before = { ...writes }
    await pub.publish()
    rounds.push({ ops: writes.ops - before.ops, batches: writes.batches - before.batches, docs: (await ownIds(a.mirror, 'pxe-a')).length })
  }
  t.comment(`per round (3,000 rogue-server OFFERs and 40 iPXE handoffs each): ${JSON.stringify(rounds)}`)
  t.ok(handoff.findings().length >= 200, `the boot side holds ${handoff.findings().length} findings`)
  t.equal(writes.other, 0, 'every write is a batch')
  for (const [i, r] of rounds.entries()) {
    t.ok(r.docs <= bound, `round ${i}: ${r.docs} documents, at most ${bound} (6 kinds x (max_findings + 2 summaries))`)
    t.ok(r.ops <= 2 * bound, `round ${i}: ${r.ops} writes, at most ${2 * bound}`)
    t.ok(r.batches <= 1, `round ${i}: ${r.batches} batches`)
  }
  const docs = (await a.mirror.list(FINDING_KIND)).map((e) => e.value as Finding)
  t.equal(docs.filter((f) => f.kind === 'rogue-server' && !f.id.includes(':more') && f.id !== 'rogue-server:unlisted').length, max, `${max} rogue servers listed`)
  t.equal(docs.filter((f) => f.kind === 'ipxe-not-run' && f.id !== 'ipxe-not-run:more').length, max, `${max} boot-side findings listed`)
  t.match(docs.find((f) => f.id === 'ipxe-not-run:more')?.explanation, /more ipxe-not-run findings at appliance pxe-a are not shared \(at most 5 per kind/)
  // The same findings with only their evidence changing: rewritten at most once per refresh (30 s), not every round.
  const steady = { ...writes }
  for (let r = 0; r < 5; r++) {
    for (let i = 0; i < 100; i++) tr.observeDhcp(wire(serverReply({ type: T.OFFER, mac: macOf(900_000 + r * 100 + i), yiaddr: '10.66.200.1', server: '10.66.0.1' })), 68)
    clock.t += 2000
    tr.evaluate()
    await pub.publish()
  }
  t.ok(writes.ops - steady.ops <= bound, `5 rounds of evidence-only changes within one refresh: ${writes.ops - steady.ops} writes`)
  const refresh = { ...writes }
  clock.t += 30_000
  tr.observeDhcp(wire(serverReply({ type: T.OFFER, mac: macOf(999_999), yiaddr: '10.66.200.1', server: '10.66.0.1' })), 68)
  tr.evaluate()
  await pub.publish()
  t.ok(writes.ops - refresh.ops >= 1 && writes.ops - refresh.ops <= bound, `after the refresh period the changed ones are rewritten: ${writes.ops - refresh.ops} writes`)
  const stored = (await a.mirror.get(FINDING_KIND, 'pxe-a@rogue-server:10.66.0.1'))?.value as Finding | undefined
  t.same(stored?.evidence, tr.findings().find((f) => f.id === 'rogue-server:10.66.0.1')?.evidence, "the stored evidence is the tracker's latest")
})

// Last: it stops the cluster.
t.test('etcd stopped: nothing queued, the set reconciled whole when it answers again', async (t) => {
  const a = await sharedStore(t, '/findings-outage', 'a')
  t.teardown(() => a.mirror.close())
  const { tracker: tr, clock } = tracker()
  const pub = startFindingsPublisher({ store: a.mirror, appliance: 'pxe-a', site: 's', findings: () => tr.findings(), maxPerKind: () => 100, everyMs: 60_000, now: () => clock.t })
  t.teardown(() => pub.close())
  tr.observeDhcp(wire(serverReply({ type: T.OFFER, mac: macOf(1), yiaddr: '192.168.1.50', server: '192.168.1.1' })), 68)
  tr.evaluate()
  await pub.publish()
  t.same(await ownIds(a.mirror, 'pxe-a'), ['pxe-a@rogue-server:192.168.1.1'])

  await cluster.stopAll({ kill: true })
  await until('the outage layer finds etcd gone', () => !a.mirror.up)
  clock.t += 61_000
  tr.observeDhcp(wire(serverReply({ type: T.OFFER, mac: macOf(2), yiaddr: '192.168.2.50', server: '192.168.2.1' })), 68)
  t.match(tr.evaluate(), [{ id: 'rogue-server:192.168.2.1' }], 'the first server cleared and another appeared during the outage')
  const ops = pub.operations
  await pub.publish()
  t.equal(pub.operations, ops, 'nothing written while etcd is down')
  t.equal(a.mirror.queuedWrites, 0, 'nothing queued')

  await cluster.startAll()
  await until('the outage layer follows etcd again', () => a.mirror.up, 30_000)
  // The publisher's round on the up change (no timer round within the test: every 60 s).
  await until('the set is reconciled', async () => (await ownIds(a.mirror, 'pxe-a')).join() === 'pxe-a@rogue-server:192.168.2.1')
  t.pass('the finding cleared during the outage went, the one raised during it is there')
})
