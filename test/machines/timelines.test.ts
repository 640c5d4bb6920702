/**
 * Issue 16: a restart reads each machine record without its timeline (kind `machine`) and the timelines (kind
 * `machine-timeline`) afterwards in slices, so 100,000 records are ready to serve in about a second. These tests show
 * the lazily read timelines are the ones written, that a change arriving before its machine's timeline is read is
 * applied after it (nothing lost, order kept), and that documents written before the split, or invalid ones, load.
 */
import t, { type Test } from 'tap'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { openMachineStore } from '../../src/machines/store.js'
import { MACHINE_KIND, TIMELINE_KIND } from '../../src/machines/records-store.js'
import type { MachineRecord } from '../../src/machines/model.js'
import { bootEvents } from '../http/api/fixture.js'
import { storeIn } from '../helpers/store.js'

async function tempDir(t: Test): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'pxebox-timelines-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  return dir
}

const mac = (i: number) => `52:54:00:0b:${((i >> 8) & 0xff).toString(16).padStart(2, '0')}:${(i & 0xff).toString(16).padStart(2, '0')}`
const ip = (i: number) => `10.213.${(i >> 8) & 0xff}.${i & 0xff}`
const copy = (records: readonly MachineRecord[]) => JSON.parse(JSON.stringify(records)) as MachineRecord[]
const N = 3000

t.test('a restart with a few thousand records: ready before the timelines are read, then every record as written', async (t) => {
  const dir = await tempDir(t)
  const a = await openMachineStore({ store: await storeIn(t, dir), flushDelayMs: 60_000 })
  const start = Date.now() - 3_600_000
  // Records of every shape: 1 to 9 events, some with a past attempt, labels, an install, syslog lines.
  for (let i = 0; i < N; i++) {
    for (const e of bootEvents(mac(i), ip(i), 1 + (i % 9), start + i * 100)) a.record(e)
    if (i % 7 === 0) for (const e of bootEvents(mac(i), ip(i), 3, start + 1_800_000 + i * 100)) a.record(e)
    if (i % 11 === 0) a.appendLog(ip(i), { severity: 6, app: 'installer', text: `line from ${i}` })
  }
  await a.setLabels(mac(5), { rack: 'r5' })
  await a.markInstalled(mac(6))
  const before = copy(a.list())
  t.ok(before.some((r) => r.history.length > 0) && before.some((r) => (r.log?.length ?? 0) > 0), 'the records have history and logs')
  await a.close()

  const b = await openMachineStore({ store: await storeIn(t, dir), flushDelayMs: 60_000 })
  t.same(b.problems, [])
  t.ok(b.timelinesPending() > 0, `open returned before reading every timeline (${b.timelinesPending()} of ${N} left)`)
  t.equal(b.list().length, N, 'every record is there at once')
  // What the boot path reads is there before the timelines are.
  t.ok(b.get(mac(6))!.installed_at, 'install-once state')
  t.same(b.get(mac(5))!.labels, { rack: 'r5' })
  await b.timelines
  t.equal(b.timelinesPending(), 0)
  t.same(b.list(), before, 'the same records, timelines, past attempts and logs, in the same order')
  await b.close()
})

t.test('changes that arrive before their machine timeline is read are applied after it, in order', async (t) => {
  const dir = await tempDir(t)
  const a = await openMachineStore({ store: await storeIn(t, dir), flushDelayMs: 60_000 })
  const start = Date.now() - 3_600_000
  for (let i = 0; i < N; i++) for (const e of bootEvents(mac(i), ip(i), 5, start + i * 100)) a.record(e)
  await a.close()

  const b = await openMachineStore({ store: await storeIn(t, dir), flushDelayMs: 60_000 })
  // The last machines in the store's order are read last: their timelines are not in yet.
  const last = N - 1
  const other = N - 2
  t.equal(b.get(mac(last))!.timeline.length, 0, 'not read yet')
  const rest = bootEvents(mac(last), ip(last), 9, start + last * 100).slice(5)
  for (const e of rest) b.record(e)
  t.equal(b.appendLog(ip(last), { severity: 5, text: 'after the restart' }), mac(last), 'a syslog line is attributed at once')
  const installed = await b.markInstalled(mac(other))
  t.same(installed.timeline.map((e) => e.step), ['offer', 'ack', 'file', 'offer', 'script', 'installed'], 'an operator action reads the timeline first')
  await b.timelines
  const r = b.get(mac(last))!
  t.same(r.timeline.map((e) => e.step), ['offer', 'ack', 'file', 'offer', 'script', 'ipxe', 'kernel', 'initrd', 'ignition'], 'stored entries, then the new ones')
  t.equal(r.boots, 1, 'one attempt: the new events continue the stored one')
  t.same(r.log?.map((l) => l.text), ['after the restart'])
  await b.close()

  const c = await openMachineStore({ store: await storeIn(t, dir) })
  await c.timelines
  t.same(c.get(mac(last)), r, 'and it was all written')
  t.ok(c.get(mac(other))!.installed_at)
  await c.close()
})

t.test('a record written whole (before the split) loads whole and is written back as two documents', async (t) => {
  const dir = await tempDir(t)
  const store = await storeIn(t, dir)
  const a = await openMachineStore({ store })
  for (const e of bootEvents(mac(1), ip(1), 9, Date.now() - 60_000)) a.record(e)
  await a.close()
  await store.delete(TIMELINE_KIND, mac(1))
  const whole = copy([a.get(mac(1))!])[0]!
  await store.put(MACHINE_KIND, mac(1), whole)

  const b = await openMachineStore({ store })
  t.same(b.problems, [])
  t.same(b.get(mac(1)), whole, 'read whole at open')
  await b.close()
  const hot = (await store.get(MACHINE_KIND, mac(1)))!.value as Record<string, unknown>
  t.notOk('timeline' in hot, 'the machine document no longer holds the timeline')
  t.equal(((await store.get(TIMELINE_KIND, mac(1)))!.value as { timeline: unknown[] }).timeline.length, 9, 'the timeline document does')
  const c = await openMachineStore({ store })
  await c.timelines
  t.same(c.get(mac(1)), whole)
})

t.test('an invalid timeline document is reported and replaced by an empty timeline; the record stays', async (t) => {
  const dir = await tempDir(t)
  const store = await storeIn(t, dir)
  const a = await openMachineStore({ store })
  for (const e of bootEvents(mac(2), ip(2), 9, Date.now() - 60_000)) a.record(e)
  await a.markInstalled(mac(2))
  await a.close()
  await store.put(TIMELINE_KIND, mac(2), { timeline: 'lost', history: [] })

  const b = await openMachineStore({ store })
  await b.timelines
  t.match(b.problems, [/pxebox\.db \(machine-timeline\): 52:54:00:0b:00:02 replaced by an empty timeline: \/timeline /])
  t.same(b.get(mac(2))!.timeline, [])
  t.ok(b.get(mac(2))!.installed_at, 'identity and install-once state kept')
  await b.close()
  t.same(((await store.get(TIMELINE_KIND, mac(2)))!.value as { timeline: unknown[] }).timeline, [], 'written back valid')
})
