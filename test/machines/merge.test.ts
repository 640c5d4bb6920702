/**
 * Merging two appliances' versions of one machine record (machines/merge.ts): no event of either is lost, bounds hold,
 * the newer sighting wins identity and status, operator fields go by when the operator set them, and the merge is
 * commutative and idempotent (two appliances that merge and write back settle).
 */
import t from 'tap'
import { mergeCold, mergeHot, mergeRecords, coldOf, hotOf, sameDocument } from '../../src/machines/merge.js'
import { applyEntry, entryFromEvent, identityFromEvent, newRecord, MAX_ENTRIES, MAX_HISTORY } from '../../src/machines/timeline.js'
import { MAX_LOG_LINES, type MachineRecord, type TimelineEntry } from '../../src/machines/model.js'
import { bootEvents } from '../http/api/fixture.js'
import { seededRandom } from '../helpers/seeded-random.js'

const M = '52:54:00:00:0b:01'
const T0 = Date.parse('2026-11-01T10:00:00.000Z')

/** A record built as the machine store builds it, from the fixture's UEFI boot events (`upTo` of them, from `start`). */
function booted(upTo: number, start: number, ip = '10.0.0.5', appliance = 'a'): MachineRecord {
  const events = bootEvents(M, ip, upTo, start)
  const r = newRecord(M, events[0]!.time, undefined)
  r.appliance = appliance
  for (const e of events) applyEntry(r, entryFromEvent(e), identityFromEvent(e))
  return r
}

const copy = <T>(x: T): T => JSON.parse(JSON.stringify(x)) as T

t.test('two appliances that each saw part of one boot: the merged timeline holds every event once, in time order', async (t) => {
  const all = booted(9, T0)
  // A saw the first five events, B (the machine's next DHCP answered there) all nine, one of them twice over.
  const a = booted(5, T0, '10.0.0.5', 'a')
  const b = booted(9, T0, '10.0.0.5', 'b')
  const m = mergeRecords(a, b)
  t.same(m.timeline.map((e) => e.time), all.timeline.map((e) => e.time), 'each event once')
  t.same(m.timeline, all.timeline)
  t.equal(m.appliance, 'b', 'the appliance that saw it last')
  t.equal(m.last_seen, b.last_seen)
})

t.test('events each appliance alone saw (an outage) are all kept, by event time', async (t) => {
  const a = booted(4, T0, '10.0.0.5', 'a')
  const b = newRecord(M, new Date(T0 + 60_000).toISOString(), undefined)
  const late: TimelineEntry = { time: new Date(T0 + 60_000).toISOString(), source: 'http', step: 'kernel', stage: 'kernel', outcome: 'ok', what: '/assets/k 200' }
  applyEntry(b, late)
  const m = mergeRecords(a, b)
  t.equal(m.timeline.length, a.timeline.length + 1)
  t.same(m.timeline.at(-1), late, 'the later event last')
  t.same(m.timeline.slice(0, -1), a.timeline)
  t.equal(m.first_seen, a.first_seen, 'first seen: the earliest')
  t.equal(m.boots, Math.max(a.boots, b.boots))
})

t.test('commutative and idempotent, over random pairs of versions', async (t) => {
  const rnd = seededRandom(17)
  for (let i = 0; i < 200; i++) {
    const a = booted(1 + Math.floor(rnd() * 9), T0 + Math.floor(rnd() * 4) * 1000, `10.0.0.${1 + Math.floor(rnd() * 3)}`, rnd() < 0.5 ? 'a' : 'b')
    const b = booted(1 + Math.floor(rnd() * 9), T0 + Math.floor(rnd() * 4) * 1000, `10.0.0.${1 + Math.floor(rnd() * 3)}`, rnd() < 0.5 ? 'a' : 'b')
    if (rnd() < 0.3) (b.labels = { k: String(i) }), (b.labels_at = new Date(T0 + i).toISOString())
    if (rnd() < 0.3) (a.installed_at = a.last_seen), (a.install_state_at = a.last_seen)
    const ab = mergeRecords(a, b)
    const ba = mergeRecords(copy(b), copy(a))
    if (!sameDocument(ab, ba)) return t.fail(`merge(a, b) != merge(b, a) for pair ${i}`)
    if (!sameDocument(mergeRecords(ab, a), ab) || !sameDocument(mergeRecords(ab, b), ab)) return t.fail(`a merge does not hold its parts, pair ${i}`)
    if (!sameDocument(mergeRecords(ab, copy(ab)), ab)) return t.fail(`merging a version into itself changed it, pair ${i}`)
  }
  t.pass('200 pairs')
})

t.test('bounded as the timeline ring is: entries, past attempts and log lines', async (t) => {
  const entry = (s: number, what: string): TimelineEntry => ({ time: new Date(T0 + s * 1000).toISOString(), source: 'tftp', step: 'file', stage: 'tftp', outcome: 'ok', what })
  const a = { timeline: Array.from({ length: MAX_ENTRIES }, (_, i) => entry(2 * i, 'a')), history: Array.from({ length: MAX_HISTORY }, (_, i) => ({ started: new Date(T0 - (2 * i + 2) * 1000).toISOString(), ended: new Date(T0).toISOString(), outcome: 'ok' })), log: Array.from({ length: MAX_LOG_LINES }, (_, i) => ({ time: new Date(T0 + 2 * i).toISOString(), severity: 6, text: 'a' })), log_dropped: 3 }
  const b = { timeline: Array.from({ length: MAX_ENTRIES }, (_, i) => entry(2 * i + 1, 'b')), history: Array.from({ length: MAX_HISTORY }, (_, i) => ({ started: new Date(T0 - (2 * i + 1) * 1000).toISOString(), ended: new Date(T0).toISOString(), outcome: 'ok' })), log: Array.from({ length: MAX_LOG_LINES }, (_, i) => ({ time: new Date(T0 + 2 * i + 1).toISOString(), severity: 6, text: 'b' })), log_dropped: 7 }
  const m = mergeCold(a, b)
  t.equal(m.timeline.length, MAX_ENTRIES)
  t.equal(m.history.length, MAX_HISTORY)
  t.equal(m.log!.length, MAX_LOG_LINES)
  t.equal(m.timeline[0]!.time, new Date(T0 + MAX_ENTRIES * 1000).toISOString(), 'the newest kept: the oldest half dropped')
  t.equal(m.timeline.at(-1)!.what, 'b')
  t.equal(m.history.at(-1)!.started, new Date(T0 - 1000).toISOString(), 'the latest past attempts kept')
  t.equal(m.log_dropped, 7)
  t.same(mergeCold({ timeline: [], history: [] }, { timeline: [], history: [] }), { timeline: [], history: [] }, 'no log when neither had one')
})

t.test('identity and status from the version seen more recently; unknown fields of the older one kept', async (t) => {
  const a = hotOf(booted(6, T0, '10.0.0.5', 'a'))
  a.hostname = 'old-name'
  a.group = 'old-group'
  const b = hotOf(booted(2, T0 + 30_000, '10.0.0.9', 'b'))
  b.group = 'new-group'
  b.site = 'rack-2'
  const m = mergeHot(a, b)
  t.equal(m.group, 'new-group')
  t.equal(m.site, 'rack-2')
  t.equal(m.hostname, 'old-name', 'a fact only the older version had')
  t.equal(m.attempt_started, b.attempt_started, 'the current attempt: the newer one')
  t.same(m.ips, ['10.0.0.9', '10.0.0.5'], 'newest address first')
  t.equal(m.uuid, a.uuid)
})

t.test('labels and the install-once state go by when the operator set them, not by who saw the machine last', async (t) => {
  const a = hotOf(booted(9, T0, '10.0.0.5', 'a'))
  const b = hotOf(booted(9, T0 + 60_000, '10.0.0.5', 'b'))
  // The operator labelled and re-armed at A after B's copy was made; B saw the machine later, without either.
  a.labels = { rack: 'r7' }
  a.labels_at = new Date(T0 + 30_000).toISOString()
  b.installed_at = new Date(T0 + 10_000).toISOString()
  b.install_state_at = b.installed_at
  a.install_state_at = new Date(T0 + 20_000).toISOString() // the re-arm: installed_at cleared
  const m = mergeHot(a, b)
  t.same(m.labels, { rack: 'r7' }, 'labels set at A survive B\'s newer sighting')
  t.equal(m.installed_at, undefined, 'the re-arm at A is not undone by B\'s older installed stamp')
  t.equal(m.appliance, 'b')
  // Later: the installed callback at B, after the re-arm.
  b.installed_at = new Date(T0 + 40_000).toISOString()
  b.install_state_at = b.installed_at
  b.installs = 1
  const m2 = mergeHot(a, b)
  t.equal(m2.installed_at, b.installed_at)
  t.equal(m2.installs, 1)
  // A record from before the stamps existed loses to a stamped one, whichever was seen later.
  const old = hotOf(booted(9, T0 + 90_000, '10.0.0.5', 'c'))
  old.labels = { stale: 'x' }
  t.same(mergeHot(old, a).labels, { rack: 'r7' })
})

t.test('documents read back from JSON (another key order) merge as the ones made in memory', async (t) => {
  const a = booted(9, T0)
  const reordered = { ...coldOf(a), timeline: a.timeline.map((e) => Object.fromEntries(Object.entries(e).reverse()) as TimelineEntry) }
  t.same(mergeCold(coldOf(a), reordered).timeline.length, a.timeline.length, 'no duplicate for a reordered entry')
})
