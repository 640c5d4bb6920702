/**
 * Issue 13 item 9: machine records stay bounded whatever clients send (10,000 requests with 4,000-character labels
 * made machines.json 125 MB), and the record cap applies to what is loaded from disk, not only to new machines.
 */
import t, { type Test } from 'tap'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { MachineLabelError, openMachineStore } from '../../src/machines/store.js'
import { RECORD_LIMITS } from '../../src/machines/model.js'
import { bootEvents, operatorApp, TOKEN } from '../http/api/fixture.js'
import { storeIn } from '../helpers/store.js'

async function tempDir(t: Test): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'pxebox-limits-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  return dir
}

const mac = (i: number) => `52:54:00:09:${((i >> 8) & 0xff).toString(16).padStart(2, '0')}:${(i & 0xff).toString(16).padStart(2, '0')}`

t.test('requests with huge labels and paths do not grow machine records', async (t) => {
  const o = await operatorApp(t, { token: TOKEN })
  const huge = 'A'.repeat(4000)
  const N = 100
  for (let i = 0; i < N; i++) {
    const extra = Array.from({ length: 60 }, (_, k) => `x${k}=${huge}`).join('&')
    const url = `/ipxe?mac=${mac(i)}&uuid=${huge}&serial=${huge}&hostname=${huge}&arch=${huge}&${extra}`
    t.equal((await o.app.inject({ url, remoteAddress: '10.213.9.30' })).statusCode, 200)
    await o.app.inject({ url: `/assets/${huge}`, remoteAddress: '10.213.9.30' })
  }
  const r = o.machines.get(mac(7))!
  for (const key of ['uuid', 'serial', 'hostname', 'arch'] as const) t.equal(r[key], undefined, `${key} of 4,000 characters not stored`)
  t.ok(r.timeline.every((e) => e.what.length <= RECORD_LIMITS.whatLength), 'timeline lines are cut')
  await o.machines.flush()
  const size = (await o.dataStore.list('machine')).reduce((sum, e) => sum + JSON.stringify(e.value).length, 0)
  // Before the limits: ~16 KB of identity per request alone (4 x 4,000 characters) plus the 4 KB asset path.
  t.ok(size / N < 4000, `the store holds ${Math.round(size / N)} bytes per machine`)
  // A normal identity is still stored.
  await o.app.inject({ url: `/ipxe?mac=${mac(500)}&serial=SN-123&hostname=node-1&arch=x86_64`, remoteAddress: '10.213.9.31' })
  t.match(o.machines.get(mac(500)), { serial: 'SN-123', hostname: 'node-1', arch: 'x86_64' })
})

t.test('operator labels are bounded in number and length; a refused change changes nothing', async (t) => {
  const o = await operatorApp(t, { token: TOKEN })
  o.feed(bootEvents(mac(1), '10.213.9.40', 2, Date.now()))
  const auth = { authorization: `Bearer ${TOKEN}` }
  const many = Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`l${i}`, 'v']))
  const r = await o.app.inject({ method: 'PATCH', url: `/v1/machines/${mac(1)}`, headers: auth, payload: { labels: many } })
  t.equal(r.statusCode, 400)
  t.same(o.machines.get(mac(1))!.labels, {})
  // Through the store: 20 now and 20 more later would make 40.
  const twenty = (p: string) => Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`${p}${i}`, 'v']))
  t.equal((await o.app.inject({ method: 'PATCH', url: `/v1/machines/${mac(1)}`, headers: auth, payload: { labels: twenty('a') } })).statusCode, 200)
  const second = await o.app.inject({ method: 'PATCH', url: `/v1/machines/${mac(1)}`, headers: auth, payload: { labels: twenty('b') } })
  t.equal(second.statusCode, 400)
  t.match(second.json().error, /at most 32 labels; this would make 40/)
  await t.rejects(o.machines.setLabels(mac(1), twenty('c')), MachineLabelError)
  t.equal(Object.keys(o.machines.get(mac(1))!.labels).length, 20)
})

t.test('the record cap applies at load: the least recently seen records are dropped, counted and reported', async (t) => {
  const dir = await tempDir(t)
  const store = await storeIn(t, dir)
  const a = await openMachineStore({ store, flushDelayMs: 10_000 })
  const start = Date.now() - 3_600_000
  for (let i = 0; i < 30; i++) for (const e of bootEvents(mac(i), `10.213.9.${i + 1}`, 2, start + i * 60_000)) a.record(e)
  await a.close()
  const b = await openMachineStore({ store, maxMachines: 10 })
  t.equal(b.list().length, 10)
  t.same(b.list().map((r) => r.mac).sort(), Array.from({ length: 10 }, (_, i) => mac(20 + i)).sort(), 'the 10 most recently seen are kept')
  t.match(b.problems, [/20 least recently seen records dropped to keep 10 \(the record cap\)/])
  await b.close()
  t.equal((await store.list('machine')).length, 10, 'the dropped records are removed from the store')
})

t.test('at run time the cap evicts the least recently seen, also after a reload (order kept without a scan)', async (t) => {
  // The store keeps its records in least-recently-seen order instead of scanning all of them for the oldest on
  // every new MAC (7% of pxebox's CPU under bench/abuse's new-MAC flood); which records go must not change.
  const dir = await tempDir(t)
  const store = await storeIn(t, dir)
  const a = await openMachineStore({ store, maxMachines: 10, flushDelayMs: 10_000 })
  const start = Date.now() - 3_600_000
  for (let i = 0; i < 10; i++) for (const e of bootEvents(mac(i), `10.213.9.${i + 1}`, 1, start + i * 60_000)) a.record(e)
  // mac(0) and mac(1), the oldest, boot again: now mac(2) and mac(3) are the least recently seen.
  for (const i of [0, 1]) for (const e of bootEvents(mac(i), `10.213.9.${i + 1}`, 1, start + (20 + i) * 60_000)) a.record(e)
  for (const i of [10, 11]) for (const e of bootEvents(mac(i), `10.213.9.${i + 1}`, 1, start + (30 + i) * 60_000)) a.record(e)
  const kept = (s: typeof a) => s.list().map((r) => r.mac).sort()
  const expected = [0, 1, 4, 5, 6, 7, 8, 9, 10, 11].map(mac).sort()
  t.same(kept(a), expected, 'mac(2) and mac(3) were evicted, the re-seen mac(0) and mac(1) kept')
  await a.close()
  // The store lists in MAC order (mac(0) and mac(1) first, though seen last); loaded, the order is rebuilt from
  // last_seen, so the next evictions are right.
  const b = await openMachineStore({ store, maxMachines: 10, flushDelayMs: 10_000 })
  for (const e of bootEvents(mac(12), '10.213.9.13', 1, start + 50 * 60_000)) b.record(e)
  t.same(kept(b), [0, 1, 5, 6, 7, 8, 9, 10, 11, 12].map(mac).sort(), 'after the reload mac(4), the least recently seen, goes')
  await b.close()
})

t.test('over-long values in a file written before the limits are cut at load (and so at migration)', async (t) => {
  const dir = await tempDir(t)
  const file = JSON.parse(await readFile(new URL('../fixtures/data-dir-v1/machines/machines.json', import.meta.url), 'utf8'))
  file.machines = [{ ...file.machines[1], mac: mac(1) }]
  Object.assign(file.machines[0], { hostname: 'h'.repeat(5000), labels: Object.fromEntries(Array.from({ length: 50 }, (_, i) => [`k${i}`, 'v'])) })
  file.machines[0].timeline[0].what = 'w'.repeat(5000)
  await writeFile(join(dir, 'machines.json'), JSON.stringify(file))
  const store = await storeIn(t, dir)
  const b = await openMachineStore({ store, legacyDir: dir })
  const r = b.get(mac(1))!
  t.equal(r.hostname, undefined)
  t.equal(Object.keys(r.labels).length, RECORD_LIMITS.labels)
  t.equal(r.timeline[0]!.what.length, RECORD_LIMITS.whatLength)
  t.match(b.problems, [/1 records held values over the record limits; cut to them/])
  t.ok(r.installed_at, 'the rest of the record is kept')
  await b.close()
})
