/**
 * The outage layer (store/mirrored.ts, issue 17): the Store contract over it, then what an outage does. Every test
 * takes the shared store from `sharedStore`, a factory giving the remote the mirror talks to (switchable unreachable,
 * test/helpers/failing-store.ts) and a second writer on the same data that does not go through the mirror (another
 * appliance). Here it is SQLite; the etcd cluster tests pass an etcd factory after the merge.
 */
import t, { type Test } from 'tap'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import pino from 'pino'
import { openMirroredStore, openSqliteStore, StoreError, type MirroredStore, type MirroredStoreOptions, type Store, type StoreEvent } from '../../src/store/index.js'
import { openMachineStore } from '../../src/machines/store.js'
import { MACHINE_KIND, mergeQueuedRecords, TIMELINE_KIND } from '../../src/machines/records-store.js'
import { failingStore, type FailingStore } from '../helpers/failing-store.js'
import { collect, storeContract } from './contract.js'

/** The shared store of one test: `remote()` a new handle for a mirror (switchable), `writer` another appliance. */
interface Shared {
  remote(): FailingStore
  readonly writer: Store
}

/** A shared store over SQLite: one database, the mirrors' handles wrap it, the writer is the database itself. */
async function sharedStore(t: Test, dir: string, history?: number): Promise<Shared> {
  const inner = await openSqliteStore({ file: join(dir, 'shared.db'), ...(history === undefined ? {} : { history }) })
  t.teardown(() => inner.close())
  return { remote: () => failingStore(inner), writer: inner }
}

async function tempDir(t: Test): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'pxebox-mirror-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  return dir
}

/** A pino logger whose lines the test reads. */
function capturedLogger(): { logger: pino.Logger; lines: { level: number; msg: string; [k: string]: unknown }[] } {
  const lines: { level: number; msg: string }[] = []
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString().split('\n')) if (l !== '') lines.push(JSON.parse(l) as { level: number; msg: string })
      done()
    },
  })
  return { logger: pino({ level: 'info' }, stream), lines }
}

const until = async (what: string, ok: () => boolean | Promise<boolean>, ms = 5000): Promise<void> => {
  const end = Date.now() + ms
  while (!(await ok())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 10))
  }
}

/**
 * One test's usual start: a temporary folder, a fresh shared store in it, a remote handle on that, and a mirror over
 * the handle with its copy at `<dir>/copy.db` (options `extra`).
 */
async function mirrorOverShared(t: Test, extra: Partial<MirroredStoreOptions> = {}): Promise<{ dir: string; shared: Shared; remote: FailingStore; m: MirroredStore }> {
  const dir = await tempDir(t)
  const shared = await sharedStore(t, dir)
  const remote = shared.remote()
  return { dir, shared, remote, m: await mirror(t, remote, join(dir, 'copy.db'), extra) }
}

async function mirror(t: Test, remote: Store, file: string, extra: Partial<MirroredStoreOptions> = {}): Promise<MirroredStore> {
  const m = await openMirroredStore({ remote, file, queued: ['machine'], kinds: ['machine', 'group'], probeMs: 50, ...extra })
  t.teardown(() => m.close())
  return m
}

t.test('contract', async (t) => {
  storeContract(t, async (t) => {
    const dir = await tempDir(t)
    const shared = await sharedStore(t, dir)
    let n = 0
    // Each handle its own copy: two open at once are two appliances on one shared store.
    return { open: () => openMirroredStore({ remote: shared.remote(), file: join(dir, `copy-${n++}.db`), queued: ['machine'], probeMs: 50 }) }
  })
})

t.test('reads are served from the copy while the remote is down; up flips once each way, one log line each', async (t) => {
  const { logger, lines } = capturedLogger()
  const { remote, m } = await mirrorOverShared(t, { logger })
  t.equal(m.up, true)
  await m.put('machine', 'aa:00:00:00:00:01', { boots: 1 })
  await m.put('group', 'g1', { profile: 'p' })
  const changes: boolean[] = []
  m.onUpChange((up) => changes.push(up))
  remote.down = true
  remote.breakWatches()
  await until('down', () => !m.up)
  t.same((await m.get('machine', 'aa:00:00:00:00:01'))?.value, { boots: 1 }, 'a known machine is still read')
  t.same((await m.list('group')).map((e) => e.id), ['g1'])
  const refusedBefore = remote.refused
  await m.list('machine')
  t.equal(remote.refused, refusedBefore, 'reads never wait on the remote')
  remote.down = false
  await until('up again', () => m.up)
  t.same(changes, [false, true])
  const down = lines.filter((l) => l.level === 40 && /is unreachable: serving reads from the local copy/.test(l.msg))
  const back = lines.filter((l) => l.level === 30 && /answers again after [\d.]+ s; 0 queued writes flushed/.test(l.msg))
  t.ok(lines.some((l) => /^a new copy of the shared store: listed 2 kinds \(0 documents\) at revision \d+$/.test(l.msg)), 'a new copy is filled by listing its kinds, not by replaying the history')
  t.equal(down.length, 1, 'one warn when it went down')
  t.equal(back.length, 1, 'one info when it came back')
})

t.test('a restart during an outage starts from the copy instead of waiting', async (t) => {
  const dir = await tempDir(t)
  const shared = await sharedStore(t, dir)
  const file = join(dir, 'copy.db')
  const first = await openMirroredStore({ remote: shared.remote(), file, queued: ['machine'], probeMs: 50 })
  await first.put('machine', 'aa:00:00:00:00:01', { boots: 3 })
  await first.put('profile', 'p1', { kernel: '/k' })
  const revision = await first.revision()
  await first.close()
  const remote = shared.remote()
  remote.down = true
  const { logger, lines } = capturedLogger()
  const again = await mirror(t, remote, file, { logger })
  t.equal(again.up, false)
  t.same((await again.get('machine', 'aa:00:00:00:00:01'))?.value, { boots: 3 }, 'the last state seen')
  t.same((await again.get('profile', 'p1'))?.modRevision, revision, "the remote's revisions")
  t.equal(await again.revision(), revision)
  t.match(lines.find((l) => l.level === 40)?.msg, /unreachable at start: serving the last state seen from .*copy\.db \(revision \d+, current at \d{4}-\d\d-\d\dT[\d:.]+Z, 0 queued writes\)/, 'it says which state: the revision, and when the remote last answered')
  remote.down = false
  await until('up', () => again.up)
})

t.test('machine writes made while down are queued and reach the remote in order when it returns', async (t) => {
  const { logger, lines } = capturedLogger()
  const { shared, remote, m } = await mirrorOverShared(t, { logger })
  await m.put('machine', 'aa:00:00:00:00:01', { boots: 0 })
  await m.put('machine', 'aa:00:00:00:00:09', { doomed: true })
  const from = (await shared.writer.revision()) + 1
  remote.down = true
  remote.breakWatches()
  await until('down', () => !m.up)
  for (let i = 1; i <= 3; i++) await m.put('machine', 'aa:00:00:00:00:01', { boots: i })
  await m.batch([
    { op: 'put', kind: 'machine', id: 'aa:00:00:00:00:02', value: { boots: 1 } },
    { op: 'delete', kind: 'machine', id: 'aa:00:00:00:00:09' },
  ])
  t.equal(m.queuedWrites, 4)
  t.same((await m.get('machine', 'aa:00:00:00:00:01'))?.value, { boots: 3 }, 'the copy shows the queued write')
  t.equal(await m.get('machine', 'aa:00:00:00:00:09'), undefined)
  t.same((await shared.writer.get('machine', 'aa:00:00:00:00:01'))?.value, { boots: 0 }, 'the remote has not seen it yet')
  const seen = collect(shared.writer, { kind: 'machine', fromRevision: from }, 5)
  t.teardown(() => seen.close())
  remote.down = false
  await until('up', () => m.up)
  const brief = (e: StoreEvent) => `${e.type} ${e.id}${e.type === 'put' ? ` ${JSON.stringify(e.value)}` : ''}`
  t.same((await seen.done).map(brief), [
    'put aa:00:00:00:00:01 {"boots":1}',
    'put aa:00:00:00:00:01 {"boots":2}',
    'put aa:00:00:00:00:01 {"boots":3}',
    'put aa:00:00:00:00:02 {"boots":1}',
    'delete aa:00:00:00:00:09',
  ], 'flushed in the order written')
  t.equal(m.queuedWrites, 0)
  const entry = (await m.get('machine', 'aa:00:00:00:00:01'))!
  t.equal(entry.modRevision, (await shared.writer.get('machine', 'aa:00:00:00:00:01'))!.modRevision, "the copy carries the remote's revision again")
  t.ok(lines.some((l) => /answers again after [\d.]+ s; 4 queued writes flushed/.test(l.msg)))
})

t.test('writes of other kinds, and guarded ones, are refused while down with PXEBOX_STORE_UNAVAILABLE', async (t) => {
  const { remote, m } = await mirrorOverShared(t)
  const rev = await m.put('machine', 'aa:00:00:00:00:01', { boots: 1 })
  remote.down = true
  remote.breakWatches()
  await until('down', () => !m.up)
  const refused = { code: 'PXEBOX_STORE_UNAVAILABLE', message: /^the shared store .*shared\.db is unreachable.*: writing group\/g1 refused until it answers again/ }
  await t.rejects(m.put('group', 'g1', { profile: 'p' }), refused, 'an API group')
  await t.rejects(m.create('lease-addr', '10.213.0.10', { mac: 'aa:00:00:00:00:01' }), { code: 'PXEBOX_STORE_UNAVAILABLE' }, 'a lease claim')
  await t.rejects(m.batch([{ op: 'put', kind: 'machine', id: 'aa:00:00:00:00:01', value: {}, ifRevision: rev }]), { code: 'PXEBOX_STORE_UNAVAILABLE' }, 'a guarded machine write')
  await t.rejects(m.batch([
    { op: 'put', kind: 'machine', id: 'aa:00:00:00:00:02', value: {} },
    { op: 'put', kind: 'group', id: 'g2', value: {} },
  ]), { code: 'PXEBOX_STORE_UNAVAILABLE' }, 'a batch mixing a queued kind with another: all or none')
  t.equal(m.queuedWrites, 0, 'nothing of them was queued')
  t.equal(await m.get('group', 'g1'), undefined)
  await t.rejects(m.put('bad kind', 'x', 1), { code: 'PXEBOX_STORE_KEY' }, 'bad input is still bad input')
})

t.test('a watch opened while down waits, and attaches when the remote is back without missing what was written meanwhile', async (t) => {
  const { shared, remote, m } = await mirrorOverShared(t)
  remote.down = true
  remote.breakWatches()
  await until('down', () => !m.up)
  const seen: StoreEvent[] = []
  let ended: Error | undefined
  // The overlay follow re-lists from the copy (which works) and watches again: a watch that ended at once would spin.
  m.watch({ kind: 'group' }, (e) => seen.push(e), (err) => (ended = err))
  await shared.writer.put('group', 'g-during', { profile: 'p' }) // another appliance, while this one cannot reach etcd
  await new Promise((r) => setTimeout(r, 200))
  t.equal(ended, undefined, 'the watch did not end')
  t.same(seen, [], 'nothing delivered while down')
  remote.down = false
  await until('up', () => m.up)
  await shared.writer.put('group', 'g-after', { profile: 'p' })
  await until('both delivered', () => seen.length === 2)
  t.same(seen.map((e) => e.id), ['g-during', 'g-after'], 'the change made during the outage first, then the later one')
  t.equal(ended, undefined)
})

t.test('the health probe finds an outage on an idle store, whose watches stay quiet (etcd reconnects them silently)', async (t) => {
  const { logger, lines } = capturedLogger()
  const { remote, m } = await mirrorOverShared(t, { logger })
  t.equal(m.up, true)
  remote.down = true // no call, no broken watch: only the probe can find it
  await until('down', () => !m.up)
  t.ok(lines.some((l) => l.level === 40 && /is unreachable: serving reads from the local copy/.test(l.msg)), 'the down line')
  remote.down = false
  await until('up', () => m.up)
  const state = m.copyState()
  t.ok(state.currentAt !== undefined && Date.parse(state.currentAt) > Date.now() - 5000, `the copy records when the remote last answered (${state.currentAt})`)
})

t.test('a write racing the outage: the call that finds the remote gone is queued, and nothing overtakes it', async (t) => {
  const { shared, remote, m } = await mirrorOverShared(t)
  const groupWatch = new Promise<Error>((resolve) => m.watch({ kind: 'group' }, () => undefined, resolve))
  // The mirror still believes the remote is up: the first write goes out and fails, the next ones are behind it.
  const first = m.put('machine', 'aa:00:00:00:00:01', { boots: 1 })
  remote.down = true
  const group = m.put('group', 'g1', { profile: 'p' })
  const second = m.put('machine', 'aa:00:00:00:00:01', { boots: 2 })
  t.type(await first, 'number', 'the first machine write resolved (queued)')
  t.type(await second, 'number')
  await t.rejects(group, { code: 'PXEBOX_STORE_UNAVAILABLE', message: /not confirmed/ }, 'the group write that met the outage is refused')
  t.equal(m.up, false, 'a failed call is enough to go down')
  t.match(await groupWatch, { code: 'PXEBOX_STORE_UNAVAILABLE' }, "a consumer's open watch ends when the store goes down")
  t.equal(m.queuedWrites, 2)
  remote.down = false
  await until('up', () => m.up)
  t.same((await shared.writer.get('machine', 'aa:00:00:00:00:01'))?.value, { boots: 2 }, 'the later write is the last one in the remote')
})

t.test('queued writes that now conflict are logged and dropped; the outbox is bounded, dropping the oldest', async (t) => {
  const { logger, lines } = capturedLogger()
  const { shared, remote, m } = await mirrorOverShared(t, { logger, maxOutbox: 3 })
  remote.down = true
  remote.breakWatches()
  await until('down', () => !m.up)
  t.type(await m.create('machine', 'aa:00:00:00:00:0a', { by: 'here' }), 'number', 'create-if-absent is queued')
  t.equal(await m.create('machine', 'aa:00:00:00:00:0a', { by: 'again' }), undefined, 'and answers as the copy shows')
  await shared.writer.put('machine', 'aa:00:00:00:00:0a', { by: 'the other appliance' })
  for (let i = 1; i <= 4; i++) await m.put('machine', `aa:00:00:00:01:0${i}`, { i })
  t.equal(m.queuedWrites, 3, 'the bound holds')
  t.equal(m.droppedWrites, 2, 'the two oldest dropped and counted')
  t.ok(lines.some((l) => /the outbox is over its bound of 3 writes: the oldest 1 dropped/.test(l.msg)))
  remote.down = false
  await until('up', () => m.up)
  t.same((await shared.writer.list('machine')).map((e) => e.id), ['aa:00:00:00:00:0a', 'aa:00:00:00:01:02', 'aa:00:00:00:01:03', 'aa:00:00:00:01:04'])
  t.same((await m.get('machine', 'aa:00:00:00:00:0a'))?.value, { by: 'the other appliance' }, 'the copy shows the remote, not the dropped write')
  t.equal(await m.get('machine', 'aa:00:00:00:01:01'), undefined, 'a dropped write is not left in the copy')
  t.equal(m.queuedWrites, 0)
})

t.test("the copy follows another writer's changes", async (t) => {
  const dir = await tempDir(t)
  const shared = await sharedStore(t, dir)
  const m = await mirror(t, shared.remote(), join(dir, 'copy.db'))
  const rev = await shared.writer.put('group', 'g1', { profile: 'a' })
  await until('the put', async () => (await m.get('group', 'g1'))?.modRevision === rev)
  t.same((await m.get('group', 'g1'))?.value, { profile: 'a' })
  t.equal((await m.get('group', 'g1'))?.createRevision, rev)
  await shared.writer.batch([
    { op: 'delete', kind: 'group', id: 'g1' },
    { op: 'put', kind: 'group', id: 'g2', value: { profile: 'b' } },
  ])
  await until('the batch', async () => (await m.list('group')).map((e) => e.id).join() === 'g2')
  t.equal(await m.revision(), await shared.writer.revision())
})

t.test('a compacted watch resumes by listing again', async (t) => {
  const dir = await tempDir(t)
  const shared = await sharedStore(t, dir, 20)
  const file = join(dir, 'copy.db')
  const { logger, lines } = capturedLogger()
  const first = await openMirroredStore({ remote: shared.remote(), file, queued: ['machine'], kinds: ['machine', 'group'] })
  await first.put('machine', 'aa:00:00:00:00:01', { boots: 1 })
  await first.put('machine', 'aa:00:00:00:00:02', { boots: 1 })
  await first.close()
  // While this appliance was away, another changed more than the remote's history keeps.
  await shared.writer.delete('machine', 'aa:00:00:00:00:02')
  for (let i = 0; i < 300; i++) await shared.writer.put('machine', 'aa:00:00:00:00:01', { boots: i })
  await shared.writer.put('group', 'g-new', { profile: 'p' })
  const again = await mirror(t, shared.remote(), file, { logger })
  t.ok(lines.some((l) => /compacted the history this copy needed; listed 2 kinds \(2 documents\) again/.test(l.msg)), 'it re-listed')
  t.same((await again.list('machine')).map((e) => [e.id, e.value]), [['aa:00:00:00:00:01', { boots: 299 }]], 'a removal in the gap is seen')
  t.same((await again.get('group', 'g-new'))?.value, { profile: 'p' }, 'a kind new in the gap is listed')
  t.equal(again.up, true)
  await shared.writer.put('machine', 'aa:00:00:00:00:03', {})
  await until('live changes after the re-list', async () => (await again.get('machine', 'aa:00:00:00:00:03')) !== undefined)
})

t.test('a copy is filled a page at a time at one revision; a write between pages starts the fill over; a re-list across pages drops what went', async (t) => {
  const dir = await tempDir(t)
  const shared = await sharedStore(t, dir, 20)
  const file = join(dir, 'copy.db')
  const mac = (i: number) => `aa:00:00:00:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`
  for (let i = 0; i < 1234; i += 100) await shared.writer.batch(Array.from({ length: Math.min(100, 1234 - i) }, (_, j) => ({ op: 'put' as const, kind: 'machine', id: mac(i + j), value: { n: i + j } })))
  await shared.writer.put('group', 'g1', { profile: 'p' })
  // Another appliance writes while the first page is on its way: the pages after it would mix two states.
  const remote = shared.remote()
  const pages: { kind: string; after?: string; revision?: number }[] = []
  let wrote = false
  const paged: Store = {
    ...remote,
    page: async (kind, o) => {
      pages.push({ kind, ...o })
      const p = await remote.page(kind, o)
      if (!wrote) {
        wrote = true
        await shared.writer.batch([
          { op: 'put', kind: 'machine', id: mac(2000), value: { n: 2000 } },
          { op: 'delete', kind: 'machine', id: mac(700) },
        ])
      }
      return p
    },
  }
  const { logger, lines } = capturedLogger()
  const m = await openMirroredStore({ remote: paged, file, queued: ['machine'], kinds: ['machine', 'group'], logger })
  const listed = async (s: Store) => (await s.list('machine')).map((e) => [e.id, e.value])
  t.same(await listed(m), await listed(shared.writer), 'the copy holds what the remote holds')
  t.equal((await m.list('machine')).length, 1234, '1,234 records: one added, one removed while the fill ran')
  const fills = pages.filter((p) => p.kind === 'machine' && p.after === undefined)
  t.equal(fills.length, 2, 'the fill started over once')
  t.ok(pages.filter((p) => p.after !== undefined).every((p) => p.revision !== undefined), 'every page after a first one is read at its revision')
  t.equal(pages.filter((p) => p.kind === 'machine').length, 2 + 3, 'the first fill stopped at its second page (its revision gone), the second read 3 pages of at most 500')
  t.ok(lines.some((l) => /^a new copy of the shared store: listed 2 kinds \(1235 documents\) at revision \d+$/.test(l.msg)), 'the log line counts them')
  await m.close()
  // Away while another appliance removes records on every page and changes more than the history keeps: the re-list
  // removes them page by page.
  // (0, 100, 250: the first page's chunk bounds and middle; 499, 500: the page bound; 1233: the last.)
  await shared.writer.batch([0, 100, 250, 499, 500, 999, 1233].map((i) => ({ op: 'delete' as const, kind: 'machine', id: mac(i) })))
  for (let i = 0; i < 30; i++) await shared.writer.put('machine', mac(3000 + i), { n: 3000 + i })
  const again = await mirror(t, shared.remote(), file)
  t.same(await listed(again), await listed(shared.writer), 'after the re-list the copy holds what the remote holds')
  t.equal((await again.list('machine')).length, 1234 - 7 + 30)
  const first = await again.page('machine', { limit: 2 })
  t.same(first.entries.map((e) => e.id), [mac(1), mac(2)], 'the copy pages too')
  t.equal(first.next, mac(2))
  t.equal(first.revision, await again.revision())
})

t.test('the refusal is a StoreError with a stable code', async (t) => {
  const dir = await tempDir(t)
  const shared = await sharedStore(t, dir)
  const remote = shared.remote()
  remote.down = true
  const m = await mirror(t, remote, join(dir, 'copy.db'))
  const err = await m.put('group', 'g', {}).catch((e: unknown) => e)
  t.type(err, StoreError)
  t.equal((err as StoreError).code, 'PXEBOX_STORE_UNAVAILABLE')
})

t.test('a writer that lost a compare-and-swap reads the winning write at once, though the watch lags', async (t) => {
  const dir = await tempDir(t)
  const shared = await sharedStore(t, dir)
  const remote = failingStore(shared.writer, { watchDelayMs: 200 })
  const m = await mirror(t, remote, join(dir, 'copy.db'))
  const rev = await m.put('lease-addr', '10.213.0.10', { mac: 'aa:00:00:00:00:01' })
  await shared.writer.put('lease-addr', '10.213.0.10', { mac: 'aa:00:00:00:00:02' })
  await t.rejects(m.batch([{ op: 'put', kind: 'lease-addr', id: '10.213.0.10', value: { mac: 'aa:00:00:00:00:01' }, ifRevision: rev }]), { code: 'PXEBOX_STORE_CONFLICT' })
  t.same((await m.get('lease-addr', '10.213.0.10'))?.value, { mac: 'aa:00:00:00:00:02' }, 'the retry guards on the current revision')
})

t.test('the outbox survives a restart: writes queued before it are flushed by the next start', async (t) => {
  const dir = await tempDir(t)
  const shared = await sharedStore(t, dir)
  const file = join(dir, 'copy.db')
  const remote = shared.remote()
  remote.down = true
  const first = await openMirroredStore({ remote, file, queued: ['machine'], probeMs: 50 })
  await first.put('machine', 'aa:00:00:00:00:01', { boots: 1 })
  await first.put('machine', 'aa:00:00:00:00:01', { boots: 2 })
  await first.close()
  t.equal(await shared.writer.get('machine', 'aa:00:00:00:00:01'), undefined, 'nothing reached the remote')
  const { logger, lines } = capturedLogger()
  const again = await mirror(t, shared.remote(), file, { logger })
  t.equal(again.up, true)
  t.equal(again.queuedWrites, 0)
  t.same((await shared.writer.get('machine', 'aa:00:00:00:00:01'))?.value, { boots: 2 }, 'flushed, in order, before the start resolved')
  t.equal((await again.get('machine', 'aa:00:00:00:00:01'))?.modRevision, (await shared.writer.get('machine', 'aa:00:00:00:00:01'))?.modRevision)
  t.ok(lines.some((l) => /following the shared store .* from revision \d+ \(copy: .*\); 2 writes queued before the restart flushed/.test(l.msg)), 'the start says where it follows from')
})

t.test("the machine store's boot events during an outage reach the shared store when it returns", async (t) => {
  const { shared, remote, m } = await mirrorOverShared(t, { queued: [MACHINE_KIND, TIMELINE_KIND] })
  const machines = await openMachineStore({ store: m, flushDelayMs: 20 })
  t.teardown(() => machines.close())
  remote.down = true
  remote.breakWatches()
  await until('down', () => !m.up)
  const mac = '52:54:00:00:0a:01'
  machines.record({ time: new Date().toISOString(), kind: 'dhcp', mac, ip: '10.213.10.11', step: 'ack', outcome: 'ok', detail: {} })
  await until('queued', () => m.queuedWrites > 0)
  t.equal(await shared.writer.get(MACHINE_KIND, mac), undefined, 'not in the shared store while it is down')
  remote.down = false
  await until('up', () => m.up)
  t.match((await shared.writer.get(MACHINE_KIND, mac))?.value, { mac }, 'the record arrived')
  t.ok(await shared.writer.get(TIMELINE_KIND, mac), 'and its timeline')
})

t.test("a machine write queued during an outage is merged with another appliance's write of that machine when flushed", async (t) => {
  const { shared, remote, m } = await mirrorOverShared(t, { queued: [MACHINE_KIND, TIMELINE_KIND], mergeQueued: mergeQueuedRecords })
  const a = await openMachineStore({ store: m, flushDelayMs: 20, appliance: 'a' })
  t.teardown(() => a.close())
  const mac = '52:54:00:00:0a:02'
  const event = (s: number, file: string) => ({ time: new Date(Date.now() - 60_000 + s * 1000).toISOString(), kind: 'tftp' as const, mac, ip: '10.213.10.12', step: 'file', outcome: 'ok', detail: { file } })
  remote.down = true
  remote.breakWatches()
  await until('down', () => !m.up)
  a.record(event(1, 'at-a'))
  await until('queued', () => m.queuedWrites > 0)
  // Meanwhile another appliance, which still reaches the shared store, boots the same machine.
  const b = await openMachineStore({ store: shared.writer, flushDelayMs: 20, appliance: 'b' })
  t.teardown(() => b.close())
  b.record(event(2, 'at-b'))
  await b.flush()
  remote.down = false
  await until('up', () => m.up)
  const stored = (await shared.writer.get(TIMELINE_KIND, mac))?.value as { timeline: { what: string }[] }
  t.same(stored.timeline.map((e) => e.what), ['at-a', 'at-b'], "both appliances' events: the flush merged, not overwrote")
  t.match((await shared.writer.get(MACHINE_KIND, mac))?.value, { mac, appliance: 'b' }, 'the record of the later sighting')
})
