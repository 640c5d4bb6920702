/**
 * The etcd backend on a real 3-member cluster (test/helpers/etcd.ts): the Store contract (contract.ts), each subtest
 * under a prefix of its own, then what is etcd's own: compaction seen by a watch, a leader killed under writes and a
 * watch, documents laid out as `<prefix>/<kind>/<id>` for etcdctl, the batch bound, and an unreachable cluster.
 */
import t from 'tap'
import { openEtcdStore, StoreCompactedError, StoreUnavailableError, type EtcdStore, type StoreEvent } from '../../src/store/index.js'
import { collect, storeContract } from './contract.js'
import { ETCD_PORTS, startEtcdCluster } from '../helpers/etcd.js'

const cluster = await startEtcdCluster(t, ETCD_PORTS.storeContract)
let places = 0
const storeAt = async (prefix: string): Promise<EtcdStore> => {
  const s = await openEtcdStore({ endpoints: cluster.endpoints, prefix })
  t.teardown(() => s.close())
  return s
}

t.test('contract', async (t) => {
  storeContract(t, async () => {
    const prefix = `/contract/${++places}`
    return { open: () => openEtcdStore({ endpoints: cluster.endpoints, prefix }) }
  })
})

t.test('documents are <prefix>/<kind>/<id> with JSON values; other prefixes are not seen', async (t) => {
  const s = await storeAt('/layout/a')
  const other = await storeAt('/layout/ab')
  await s.put('group', 'g1', { id: 'g1', profile: 'p' })
  await other.put('group', 'g2', { id: 'g2' })
  const res = await s.client.get('/layout/a/group/g1').string()
  t.equal(res, '{"id":"g1","profile":"p"}', 'etcdctl get /layout/a/group/g1 shows the JSON')
  t.same((await s.list('group')).map((e) => e.id), ['g1'], 'a prefix that is a string prefix of another does not see it')
  t.equal(s.key('machine', 'aa'), '/layout/a/machine/aa')
})

t.test('a batch over etcd --max-txn-ops is refused whole, with the bound; ops on one key merge', async (t) => {
  const s = await storeAt('/batch')
  t.equal(s.maxBatchOps, 128)
  const ops = Array.from({ length: 129 }, (_, i) => ({ op: 'put' as const, kind: 'm', id: `id${i}`, value: i }))
  await t.rejects(s.batch(ops), { code: 'PXEBOX_STORE_BATCH', message: /129 operations is over etcd's --max-txn-ops \(128\)/ })
  t.same(await s.list('m'), [], 'nothing written')
  await s.batch([
    { op: 'put', kind: 'm', id: 'x', value: 1 },
    { op: 'put', kind: 'm', id: 'x', value: 2 },
    { op: 'put', kind: 'm', id: 'y', value: 1 },
    { op: 'delete', kind: 'm', id: 'y' },
  ])
  t.same((await s.list('m')).map((e) => [e.id, e.value]), [['x', 2]], 'the last operation on a key wins, as in SQLite')
})

t.test('a watch from a compacted revision fails with StoreCompactedError', async (t) => {
  const s = await storeAt('/compact')
  const first = await s.put('k', 'a', 0)
  for (let i = 1; i < 20; i++) await s.put('k', 'a', i)
  const now = await s.revision()
  await s.client.kv.compact({ revision: now - 5, physical: true })
  const err = await new Promise<Error>((resolve) => s.watch({ kind: 'k', fromRevision: first }, () => undefined, resolve))
  t.type(err, StoreCompactedError)
  t.match(err.message, new RegExp(`a watch from revision ${first} cannot be served`))
  const recent = collect(s, { kind: 'k', fromRevision: now - 2 }, 3)
  t.teardown(() => recent.close())
  t.same((await recent.done).map((e) => (e.type === 'put' ? e.value : e.type)), [17, 18, 19], 'history after the compaction is served')
})

t.test('the leader killed under writes and a watch: no write lost, the watch resumes without a gap', async (t) => {
  const s = await storeAt('/leader')
  // Until every id's resolved revision has been seen. A write in flight when the leader died may commit and still
  // time out; its retry is then a second put of the same value, which the watch sees too (at-least-once).
  const events: StoreEvent[] = []
  const resolved = new Map<string, number>()
  let allSeen!: () => void
  const seenAll = new Promise<void>((r) => (allSeen = r))
  const check = () => {
    if (resolved.size === 60 && [...resolved].every(([id, rev]) => events.some((e) => e.id === id && e.revision === rev))) allSeen()
  }
  const w = s.watch({ kind: 'm' }, (e) => {
    events.push(e)
    check()
  })
  t.teardown(() => w.close())
  const writes: Promise<number>[] = []
  let killed: Promise<number> | undefined
  for (let i = 0; i < 60; i++) {
    const id = `id${String(i).padStart(2, '0')}`
    writes.push(s.put('m', id, i).then((rev) => (resolved.set(id, rev), check(), rev)))
    if (i === 20) killed = cluster.killLeader()
    await new Promise((r) => setTimeout(r, 10))
  }
  const revs = await Promise.all(writes)
  const leader = await killed!
  t.equal(revs.filter((r) => r > 0).length, 60, `every write resolved with a revision (leader m${leader} killed after the 21st)`)
  t.same((await s.list('m')).map((e) => [e.id, e.modRevision]), [...resolved].sort(), 'all 60 are in etcd at the revision their put resolved with')
  await Promise.race([seenAll, new Promise((_, reject) => setTimeout(() => reject(new Error(`the watch saw ${events.length} events, not every write`)), 30_000))])
  t.ok(events.every((e, i) => i === 0 || e.revision > events[i - 1]!.revision), 'revisions only go up: no event twice, none out of order')
  t.equal(new Set(events.map((e) => e.id)).size, 60, `the watch saw every id (${events.length} events for 60 writes)`)
  t.equal(cluster.members[leader]!.process(), undefined, 'the killed leader is down')
  await cluster.start(leader)
  t.not(await cluster.leader(), -1, 'the member rejoined and the cluster has a leader')
})

/** Resolves when `check` holds (polling every 20 ms); rejects after `ms` with `what`. */
async function until(what: () => string, check: () => boolean, ms: number): Promise<void> {
  const end = Date.now() + ms
  while (!check()) {
    if (Date.now() > end) throw new Error(what())
    await new Promise((r) => setTimeout(r, 20))
  }
}

t.test('a watch catching up on history that loses its member resumes after the last event it delivered', async (t) => {
  // etcd sends a watch catching up 1,000 revisions per 100 ms round, each answer stamped with its newest revision;
  // etcd3 alone re-attached from that stamp and skipped the rest of the history.
  const N = 2500
  const writer = await storeAt('/catch-up')
  const from = (await writer.revision()) + 1
  for (let i = 0; i < N; i += 100) await Promise.all(Array.from({ length: 100 }, (_, j) => writer.put('h', `k${i + j}`, i + j)))
  const only = 2 // the reader talks to this member alone, so killing it ends the watch's stream
  const reader = await openEtcdStore({ endpoints: [cluster.endpoints[only]!], prefix: '/catch-up' })
  t.teardown(() => reader.close())
  const got = new Set<string>()
  let firstBatch = 0
  const w = reader.watch({ kind: 'h', fromRevision: from }, (e) => {
    got.add(e.id)
    if (firstBatch === 0) {
      firstBatch = -1
      cluster.members[only]!.process()!.kill('SIGKILL')
      queueMicrotask(() => (firstBatch = got.size))
    }
  })
  t.teardown(() => w.close())
  await until(() => 'no event arrived', () => firstBatch > 0, 10_000)
  t.ok(firstBatch < N, `the member was killed with ${firstBatch} of ${N} events delivered`)
  await cluster.stop(only)
  await cluster.start(only)
  await until(() => `the watch delivered ${got.size} of ${N} events after the member returned`, () => got.size === N, 20_000)
  t.equal(got.size, N, 'every event of the history arrived, none skipped on the resume')
})

t.test('watches opened during a burst of writes miss no event from their start revision', async (t) => {
  const writer = await storeAt('/burst')
  const reader = await storeAt('/burst')
  const written: number[] = []
  let stop = false
  let n = 0
  const burst = (async () => {
    while (!stop) await Promise.all(Array.from({ length: 10 }, () => writer.put('b', `k${n++}`, n).then((rev) => void written.push(rev))))
  })()
  const watches: { from: number; revs: number[]; close(): void }[] = []
  for (let i = 0; i < 20; i++) {
    const from = (await reader.revision()) + 1
    const revs: number[] = []
    const w = reader.watch({ kind: 'b', fromRevision: from }, (e) => void revs.push(e.revision))
    t.teardown(() => w.close())
    watches.push({ from, revs, close: () => w.close() })
    await new Promise((r) => setTimeout(r, 30))
  }
  stop = true
  await burst
  for (const [i, w] of watches.entries()) {
    const want = written.filter((r) => r >= w.from).sort((a, b) => a - b)
    await until(() => `watch ${i} from ${w.from}: ${w.revs.length} of ${want.length} events`, () => w.revs.length >= want.length, 10_000).catch(() => undefined)
    t.same(w.revs, want, `watch ${i} (from revision ${w.from}) saw every write from its start, in order`)
  }
})

t.test('an unreachable cluster: open fails with StoreUnavailableError naming the endpoints, within the call timeout', async (t) => {
  const started = Date.now()
  await t.rejects(openEtcdStore({ endpoints: ['http://127.0.0.1:1'], prefix: '/none', callTimeoutMs: 1000 }), StoreUnavailableError)
  const err = await openEtcdStore({ endpoints: ['http://127.0.0.1:1'], prefix: '/none', callTimeoutMs: 1000 }).catch((e: Error) => e)
  t.match((err as Error).message, /the store at etcd http:\/\/127\.0\.0\.1:1 \/none is unreachable/)
  t.ok(Date.now() - started < 20_000, `both gave up (${Date.now() - started} ms for two tries)`)
})

t.test('a bad prefix is refused', async (t) => {
  await t.rejects(openEtcdStore({ endpoints: cluster.endpoints, prefix: 'pxebox' }), { code: 'PXEBOX_STORE_PREFIX' })
})
