/**
 * Fleet lists at scale on a real 3-member etcd (issues 16 and 17): more machine records than one etcd range answer
 * can carry (the gRPC client's 4 MiB receive limit), listed whole by the etcd store, read a page at a time at one
 * revision, filled into a new outage-layer copy, and paged through by `GET /v1/fleet/machines` of an appliance
 * whose store is that copy (its machine store loads all of them at start, from the copy). And a copy that was away
 * while more than 4 MiB was written catches up through its watch, which etcd then answers in fragments.
 */
import t from 'tap'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { openEtcdStore, openMirroredStore, StoreCompactedError, type EtcdStore, type MirroredStore } from '../../src/store/index.js'
import { operatorApp } from '../http/api/fixture.js'
import { collect } from './contract.js'
import { ETCD_PORTS, startEtcdCluster } from '../helpers/etcd.js'

const cluster = await startEtcdCluster(t, ETCD_PORTS.paging)
const RECORDS = 10_000

/** A machine record's document as machines/records-store.ts writes it (no timeline): about 580 bytes. */
const record = (i: number) => {
  const mac = `52:54:00:${((i >> 16) & 255).toString(16).padStart(2, '0')}:${((i >> 8) & 255).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`
  return {
    mac,
    site: `site-${i % 3}`,
    appliance: `pxe-${i % 3}`,
    hostname: `node-${String(i).padStart(5, '0')}.rack${i % 40}.example.net`,
    serial: `SN${String(i * 7919).padStart(12, '0')}`,
    arch: 'x86_64-efi',
    group: `rack${i % 40}-workers`,
    profile: 'flatcar-stable-install',
    ips: [`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`],
    first_seen: '2026-11-20T08:00:00.000Z',
    last_seen: new Date(Date.parse('2026-11-28T08:00:00.000Z') + i * 1000).toISOString(),
    boots: 1 + (i % 7),
    labels: { rack: `r${i % 40}`, role: 'worker', zone: `z${i % 3}`, owner: 'platform-team' },
    reported_at: '2026-11-20T08:01:00.000Z',
    attempt_started: '2026-11-20T08:00:00.000Z',
    last_progress: '2026-11-20T08:09:00.000Z',
    installed_at: '2026-11-20T08:10:00.000Z',
    installs: 1,
    reinstalls: 0,
  }
}
const macOf = (i: number) => record(i).mac

let store: EtcdStore
t.before(async () => {
  store = await openEtcdStore({ endpoints: cluster.endpoints, prefix: '/paging' })
  for (let i = 0; i < RECORDS; i += 125) {
    await store.batch(Array.from({ length: Math.min(125, RECORDS - i) }, (_, j) => ({ op: 'put' as const, kind: 'machine', id: macOf(i + j), value: record(i + j) })))
  }
  await store.put('machine-timeline', macOf(0), { timeline: [], history: [] })
})
t.teardown(() => store?.close())

t.test('the records are more than one etcd range answer carries', async (t) => {
  const res = await store.client.kv.range({ key: Buffer.from('/paging/machine/'), range_end: Buffer.from('/paging/machine0'), count_only: true })
  t.equal(Number(res.count), RECORDS)
  const bytes = JSON.stringify(record(5000)).length * RECORDS
  t.ok(bytes > 4 * 1024 * 1024, `about ${(bytes / 1024 / 1024).toFixed(1)} MiB of values`)
  await t.rejects(store.client.kv.range({ key: Buffer.from('/paging/machine/'), range_end: Buffer.from('/paging/machine0') }), /RESOURCE_EXHAUSTED|larger than max/, 'one range over them is refused by the client')
})

t.test('list: every record, in id order, the neighbouring kind left out', async (t) => {
  const started = Date.now()
  const all = await store.list('machine')
  t.comment(`listed ${all.length} in ${Date.now() - started} ms`)
  t.equal(all.length, RECORDS)
  const ids = all.map((e) => e.id)
  t.same(ids, Array.from({ length: RECORDS }, (_, i) => macOf(i)).sort(), 'each once, in id order')
  t.same(all[1234]!.value, record(1234), 'values whole')
  t.equal((await store.list('machine-timeline')).length, 1)
})

t.test('page: through all of them at one revision; a later write is not in the snapshot; a compacted revision fails', async (t) => {
  const first = await store.page('machine', { limit: 1000 })
  t.equal(first.entries.length, 1000)
  t.equal(first.next, macOf(999))
  // Changed after the first page: the pages at its revision still show the snapshot.
  await store.put('machine', macOf(9999), { ...record(9999), boots: 99 })
  await store.delete('machine', macOf(5000))
  const seen = [...first.entries]
  let page = first
  let pages = 1
  while (page.next !== undefined) {
    page = await store.page('machine', { after: page.next, limit: 1000, revision: first.revision })
    t.equal(page.revision, first.revision)
    seen.push(...page.entries)
    pages++
  }
  t.equal(pages, 10)
  t.equal(seen.length, RECORDS, 'the snapshot: the record deleted after the first page is still in it')
  t.equal((seen.find((e) => e.id === macOf(9999))!.value as { boots: number }).boots, record(9999).boots, 'and the one changed shows its old value')
  const now = await store.page('machine', { after: macOf(4999), limit: 1 })
  t.equal(now.entries[0]!.id, macOf(5001), 'without a revision: the current state')
  // Put back as they were, for the tests below.
  await store.put('machine', macOf(9999), record(9999))
  await store.put('machine', macOf(5000), record(5000))
  const rev = await store.revision()
  await store.client.kv.compact({ revision: rev, physical: true })
  await t.rejects(store.page('machine', { after: macOf(10), limit: 10, revision: first.revision }), StoreCompactedError, 'a page at a compacted revision')
  t.equal((await store.page('machine', { after: macOf(10), limit: 10, revision: rev })).entries.length, 10, 'the compaction revision itself is kept')
})

t.test('a new copy of the shared store fills with all of them', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'pxebox-paging-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const remote = await openEtcdStore({ endpoints: cluster.endpoints, prefix: '/paging' })
  const started = Date.now()
  const mirror = await openMirroredStore({ remote, file: join(dir, 'store-cache.db'), queued: ['machine'], kinds: ['machine', 'machine-timeline', 'group'] })
  t.teardown(() => mirror.close())
  t.comment(`a new copy filled in ${Date.now() - started} ms`)
  t.equal(mirror.up, true)
  const copied = await mirror.list('machine')
  t.equal(copied.length, RECORDS)
  t.same(copied.map((e) => e.id), (await store.list('machine')).map((e) => e.id))
  t.equal(await mirror.revision(), await store.revision(), 'at the revision it listed')
  await store.put('machine', macOf(42), { ...record(42), boots: 42 })
  await t.resolves(async () => {
    for (let i = 0; i < 100 && ((await mirror.get('machine', macOf(42)))?.value as { boots: number }).boots !== 42; i++) await new Promise((r) => setTimeout(r, 50))
  })
  t.equal(((await mirror.get('machine', macOf(42)))?.value as { boots: number }).boots, 42, 'and follows the watch from there')
})

t.test('values far larger than the first page expects: the page is asked again at half its size', async (t) => {
  // 40 documents of 200 KB: the first page (32 keys, 6.4 MB) is over the receive limit.
  const big = 'b'.repeat(200_000)
  for (let i = 0; i < 40; i += 5) await store.batch(Array.from({ length: 5 }, (_, j) => ({ op: 'put' as const, kind: 'big', id: `d${String(i + j).padStart(2, '0')}`, value: { i: i + j, big } })))
  const started = Date.now()
  const all = await store.list('big')
  // Before the client stopped retrying an answer over its receive limit (etcd-client.ts), this took 1.3-1.9 s.
  t.comment(`listed 40 x 200 KB in ${Date.now() - started} ms`)
  t.same(all.map((e) => (e.value as { i: number }).i), Array.from({ length: 40 }, (_, i) => i))
  await t.resolves(store.revision(), 'the store still answers (a refused answer opens no circuit for long)')
})

t.test('the API of an appliance on the shared store pages through all of them', async (t) => {
  let mirror: MirroredStore | undefined
  const o = await operatorApp(t, {
    fleet: { appliances: () => [], storeUp: () => mirror?.up ?? false },
    openDataStore: async (file) => {
      const remote = await openEtcdStore({ endpoints: cluster.endpoints, prefix: '/paging' })
      mirror = await openMirroredStore({ remote, file: `${file}.copy`, queued: ['machine', 'machine-timeline'], kinds: ['machine', 'machine-timeline', 'group', 'profile'] })
      t.teardown(() => mirror?.close())
      return mirror
    },
  })
  t.same(o.machines.problems, [], 'every record is a valid one')
  t.equal(o.machines.list().length, RECORDS, "the appliance's machine store loaded every record from its copy at start")
  type Page = { current: boolean; machines: { mac: string; site: string }[]; skipped: number; next?: string }
  const macs: string[] = []
  let skipped = 0
  let pages = 0
  let after: string | undefined
  const started = Date.now()
  do {
    const res = await o.app.inject({ url: `/v1/fleet/machines?limit=1000${after === undefined ? '' : `&after=${encodeURIComponent(after)}`}` })
    t.equal(res.statusCode, 200)
    const page = res.json() as Page
    t.equal(page.current, true)
    macs.push(...page.machines.map((m) => m.mac))
    skipped += page.skipped
    pages++
    after = page.next
  } while (after !== undefined)
  t.comment(`${pages} pages of 1,000 in ${Date.now() - started} ms`)
  t.equal(pages, 10)
  t.equal(skipped, 0)
  t.same(macs, (await store.list('machine')).map((e) => e.id), 'every record once, in MAC order')
  const first = (await o.app.inject({ url: '/v1/fleet/machines' })).json() as Page
  t.same([first.machines.length, first.next], [500, macs[499]], 'the default page: 500')
})

t.test('away while all of them were rewritten: a watch catches up on more than 4 MiB of history, in fragments', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'pxebox-paging-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const file = join(dir, 'store-cache.db')
  const open = async () => openMirroredStore({ remote: await openEtcdStore({ endpoints: cluster.endpoints, prefix: '/paging' }), file, queued: ['machine'], kinds: ['machine'], catchUpMs: 30_000 })
  const first = await open()
  await first.close()
  const from = (await store.revision()) + 1
  // Every record rewritten in 80 transactions while the copy's appliance is away: one catch-up answer of etcd's
  // (up to 1,000 revisions) would carry all 5.7 MiB.
  for (let i = 0; i < RECORDS; i += 125) {
    await store.batch(Array.from({ length: Math.min(125, RECORDS - i) }, (_, j) => ({ op: 'put' as const, kind: 'machine', id: macOf(i + j), value: { ...record(i + j), boots: 1000 } })))
  }
  // Events grouped by the turn of the loop they arrived in, as the outage layer applies them (mirrored.ts).
  const turns = new Map<number, Set<number>>()
  let turn = 0
  let closing = false
  const events = collect(store, { kind: 'machine', fromRevision: from }, RECORDS, 30_000)
  const grouping = store.watch({ kind: 'machine', fromRevision: from }, (e) => {
    if (!closing) {
      closing = true
      setImmediate(() => ((closing = false), turn++))
    }
    if (!turns.has(e.revision)) turns.set(e.revision, new Set())
    turns.get(e.revision)!.add(turn)
  })
  t.teardown(() => (events.close(), grouping.close()))
  const seen = await events.done
  t.equal(new Set(seen.map((e) => e.id)).size, RECORDS, "the etcd store's watch from before them delivers every change once")
  t.ok(seen.every((e, i) => i === 0 || e.revision >= seen[i - 1]!.revision), 'in revision order')
  const perRevision = new Map<number, number>()
  for (const e of seen) perRevision.set(e.revision, (perRevision.get(e.revision) ?? 0) + 1)
  t.same(new Set(perRevision.values()), new Set([125]), '80 revisions of 125 events')
  for (let i = 0; i < 100 && [...turns.values()].reduce((n, s) => n + s.size, 0) < 80; i++) await new Promise((r) => setTimeout(r, 50))
  t.same([...turns.values()].filter((s) => s.size > 1).length, 0, "each revision's events arrive in one turn, though etcd's fragments split some")
  const started = Date.now()
  const again = await open()
  t.teardown(() => again.close())
  t.comment(`the copy caught up in ${Date.now() - started} ms`)
  t.equal(await again.revision(), await store.revision(), 'the reopened copy caught up through its watch')
  t.ok((await again.list('machine')).every((e) => (e.value as { boots: number }).boots === 1000), 'with every rewrite')
})
