/**
 * Machine records across appliances (issue 17) over a real 3-member etcd: two machine stores, each on its own etcd
 * connection as two appliances are, write one machine at once and lose none of each other's events (guarded writes,
 * merged on conflict); each follows the other's writes into memory without echoing them back; a write queued during
 * an outage is merged with what etcd holds when it is flushed (mergeQueuedRecords).
 */
import t, { type Test } from 'tap'
import { openEtcdStore, type EtcdStore } from '../../src/store/index.js'
import { openMachineStore, type MachineStore } from '../../src/machines/store.js'
import { MACHINE_KIND, mergeQueuedRecords, TIMELINE_KIND } from '../../src/machines/records-store.js'
import type { BootEvent } from '../../src/machines/events.js'
import { bootEvents } from '../http/api/fixture.js'
import { ETCD_PORTS, startEtcdCluster } from '../helpers/etcd.js'

const cluster = await startEtcdCluster(t, ETCD_PORTS.machineRecords)
let prefixes = 0

/** An etcd connection of its own (one appliance), under `prefix`. */
async function etcd(t: Test, prefix: string): Promise<EtcdStore> {
  const s = await openEtcdStore({ endpoints: cluster.endpoints, prefix })
  t.teardown(() => s.close())
  return s
}

async function appliance(t: Test, prefix: string, name: string, opts: { follow?: boolean } = {}): Promise<{ store: EtcdStore; machines: MachineStore }> {
  const store = await etcd(t, prefix)
  const machines = await openMachineStore({ store, appliance: name, site: `site-${name}`, flushDelayMs: 20, ...opts })
  t.teardown(() => machines.close())
  return { store, machines }
}

async function until(what: string, ok: () => boolean, ms = 5000): Promise<number> {
  const t0 = Date.now()
  while (!ok()) {
    if (Date.now() - t0 > ms) throw new Error(`timed out after ${ms} ms waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 10))
  }
  return Date.now() - t0
}

const M = '52:54:00:17:0c:01'
const T0 = Date.now() - 600_000
const tftp = (who: string, i: number): BootEvent => ({ time: new Date(T0 + i * 1000).toISOString(), kind: 'tftp', mac: M, ip: '10.0.0.7', step: 'file', outcome: 'ok', detail: { file: `${who}-${i}` } })

t.test('two appliances writing one machine at once: every event of both is in etcd', async (t) => {
  const prefix = `/mr${++prefixes}`
  const a = await appliance(t, prefix, 'a')
  const b = await appliance(t, prefix, 'b')
  const rounds = 15
  for (let i = 0; i < rounds; i++) {
    a.machines.record(tftp('a', 2 * i))
    b.machines.record(tftp('b', 2 * i + 1))
    // Both write the same two documents in the same moment: one of each pair of batches conflicts.
    await Promise.all([a.machines.flush(), b.machines.flush()])
  }
  const c = await appliance(t, prefix, 'c')
  await c.machines.timelines
  const files = c.machines.get(M)!.timeline.map((e) => e.what)
  t.equal(files.length, 2 * rounds, `all ${2 * rounds} events (a fresh appliance reads them from etcd)`)
  t.same(files, Array.from({ length: 2 * rounds }, (_, i) => `${i % 2 === 0 ? 'a' : 'b'}-${i}`), 'in event-time order')
  // Without a follow, the writer that won the last race has not seen the other's last event; the loser merged it in.
  t.equal(Math.max(a.machines.get(M)!.timeline.length, b.machines.get(M)!.timeline.length), 2 * rounds, 'the writer that lost the last race holds both')
})

t.test('live follow: a machine A booted shows at B with A\'s timeline; no echo writes; B\'s changes reach A', async (t) => {
  const prefix = `/mr${++prefixes}`
  const a = await appliance(t, prefix, 'a', { follow: true })
  const b = await appliance(t, prefix, 'b', { follow: true })
  const X = '52:54:00:17:0c:02'
  for (const e of bootEvents(X, '10.0.0.8', 9, Date.now() - 60_000)) a.machines.record(e)
  await a.machines.flush()
  const ms = await until('B shows the machine with its timeline', () => b.machines.get(X)?.timeline.length === 9)
  t.comment(`A's write shown at B after ${ms} ms`)
  t.same(b.machines.get(X), a.machines.get(X), 'the same record at both')
  t.equal(b.machines.get(X)!.appliance, 'a', 'seen by A')
  // Settled: neither writes it again (B took it in; A's echo is its own).
  const rev = (await a.store.get(MACHINE_KIND, X))!.modRevision
  await new Promise((r) => setTimeout(r, 500))
  t.equal((await a.store.get(MACHINE_KIND, X))!.modRevision, rev, 'no write after the record settled')
  await b.machines.setLabels(X, { rack: 'r9' })
  b.machines.record({ time: new Date().toISOString(), kind: 'http', mac: X, ip: '10.0.0.8', step: 'asset', outcome: 'ok', detail: { path: '/assets/extra' } })
  await b.machines.flush()
  await until('A shows B\'s label and event', () => a.machines.get(X)?.labels.rack === 'r9' && a.machines.get(X)!.timeline.length === 10)
  t.equal(a.machines.get(X)!.appliance, 'b')
  t.ok(await a.machines.forget(X))
  await until('B forgets what A forgot', () => b.machines.get(X) === undefined)
  t.pass('a forget at A is followed at B')
})

t.test('a write queued during an outage is merged with what etcd holds when flushed', async (t) => {
  const prefix = `/mr${++prefixes}`
  const a = await appliance(t, prefix, 'a')
  for (let i = 0; i < 3; i++) a.machines.record(tftp('a', 2 * i))
  await a.machines.flush()
  // B's version, as its outbox holds it: events of its own, written without a guard while etcd did not answer.
  const other = await etcd(t, '/mr-scratch')
  const b = await openMachineStore({ store: other, appliance: 'b', flushDelayMs: 60_000 })
  t.teardown(() => b.close())
  for (let i = 0; i < 3; i++) b.record(tftp('b', 2 * i + 1))
  await b.flush()
  const queued = [MACHINE_KIND, TIMELINE_KIND].map((kind) => ({ op: 'put' as const, kind, id: M }))
  const ops = await Promise.all(queued.map(async (q) => ({ ...q, value: (await other.get(q.kind, M))!.value })))
  const merged = await mergeQueuedRecords(ops, (kind, id) => a.store.get(kind, id))
  t.same(merged.map((op) => (op as { ifRevision?: number }).ifRevision), await Promise.all(queued.map(async (q) => (await a.store.get(q.kind, M))!.modRevision)), 'each put guarded by the revision it merged with')
  await a.store.batch(merged)
  const stored = (await a.store.get(TIMELINE_KIND, M))!.value as { timeline: { what: string }[] }
  t.same(stored.timeline.map((e) => e.what), ['a-0', 'b-1', 'a-2', 'b-3', 'a-4', 'b-5'], 'both appliances\' events, in time order')
  t.equal(((await a.store.get(MACHINE_KIND, M))!.value as { appliance: string }).appliance, 'b', 'the later sighting')
})
