/**
 * The Store contract: what every backend must do, written once (the STYLE.md rule: one interface, one suite). A
 * backend's test file calls `storeContract` with a factory whose `open()` returns a new handle onto the same backing
 * place (the same database file, the same etcd prefix), so closing one and opening another is a restart, and two
 * open at once are two writers. sqlite.test.ts runs it for the embedded backend; the etcd backend runs it too.
 */
import type { Test } from 'tap'
import { StoreClosedError, StoreCompactedError, StoreConflictError, type Store, type StoreEvent } from '../../src/store/index.js'

/** How the suite reaches a backend. */
export interface StoreBackend {
  /** A new handle on the backing place the factory owns; each subtest gets a fresh place. */
  open(): Promise<Store>
}

/** Collects a watch's events until `count` arrived (or fails the test after `ms`). */
export function collect(store: Store, opts: Parameters<Store['watch']>[0], count: number, ms = 5000): { events: StoreEvent[]; done: Promise<StoreEvent[]>; close(): void } {
  const events: StoreEvent[] = []
  let resolve!: (e: StoreEvent[]) => void
  let reject!: (err: Error) => void
  const done = new Promise<StoreEvent[]>((res, rej) => ((resolve = res), (reject = rej)))
  const timer = setTimeout(() => reject(new Error(`watch got ${events.length} of ${count} events in ${ms} ms`)), ms)
  const w = store.watch(opts, (e) => {
    events.push(e)
    if (events.length === count) {
      clearTimeout(timer)
      resolve(events)
    }
  }, (err) => {
    clearTimeout(timer)
    reject(err)
  })
  if (count === 0) {
    clearTimeout(timer)
    resolve(events)
  }
  return {
    events,
    done,
    close: () => {
      clearTimeout(timer)
      w.close()
    },
  }
}

const brief = (e: StoreEvent) => `${e.type} ${e.kind}/${e.id}${e.type === 'put' ? ` ${JSON.stringify(e.value)}` : ''}`

/** Runs the contract as subtests of `t`; `backend(t)` makes a fresh backing place per subtest. */
export function storeContract(t: Test, backend: (t: Test) => Promise<StoreBackend>): void {
  const opened = async (t: Test): Promise<{ b: StoreBackend; s: Store }> => {
    const b = await backend(t)
    const s = await b.open()
    t.teardown(() => s.close())
    return { b, s }
  }

  t.test('put, get, list, delete; kinds are separate namespaces', async (t) => {
    const { s } = await opened(t)
    t.equal(await s.get('machine', '52:54:00:00:00:01'), undefined, 'absent before any write')
    await s.put('machine', '52:54:00:00:00:02', { mac: '52:54:00:00:00:02', n: 2 })
    await s.put('machine', '52:54:00:00:00:01', { mac: '52:54:00:00:00:01', n: 1, nested: { a: [1, 'x', null, true] } })
    await s.put('group', '52:54:00:00:00:01', { id: 'same id, other kind' })
    t.same((await s.get('machine', '52:54:00:00:00:01'))?.value, { mac: '52:54:00:00:00:01', n: 1, nested: { a: [1, 'x', null, true] } }, 'the value comes back as written')
    t.same((await s.list('machine')).map((e) => e.id), ['52:54:00:00:00:01', '52:54:00:00:00:02'], 'list: one kind, in id order')
    t.same((await s.list('group')).map((e) => e.value), [{ id: 'same id, other kind' }])
    t.same(await s.list('profile'), [], 'an unused kind lists empty')
    await s.put('machine', '52:54:00:00:00:02', { replaced: true })
    t.same((await s.get('machine', '52:54:00:00:00:02'))?.value, { replaced: true }, 'put replaces')
    t.type(await s.delete('machine', '52:54:00:00:00:02'), 'number', 'a delete that removed something returns its revision')
    t.equal(await s.delete('machine', '52:54:00:00:00:02'), undefined, 'deleting the absent changes nothing')
    t.equal(await s.get('machine', '52:54:00:00:00:02'), undefined)
    t.same((await s.list('group')).length, 1, 'the other kind is untouched')
    await t.rejects(s.put('machine', 'a/b', {}), { code: 'PXEBOX_STORE_KEY' }, 'an id that is not one key segment is refused')
  })

  t.test('page: a kind a page at a time, in id order, with the id to go on from', async (t) => {
    const { s } = await opened(t)
    const ids = Array.from({ length: 7 }, (_, i) => `52:54:00:00:00:${String(i).padStart(2, '0')}`)
    // Written out of order, with a neighbouring kind on each side, which no page may show.
    await s.batch([...ids].reverse().map((id, i) => ({ op: 'put' as const, kind: 'machine', id, value: { i } })))
    await s.put('machina', '00', 'before')
    await s.put('machine-timeline', '52:54:00:00:00:00', 'after')
    const first = await s.page('machine', { limit: 3 })
    t.same(first.entries.map((e) => e.id), ids.slice(0, 3), 'the first three ids')
    t.equal(first.next, ids[2], 'next: the last id of the page')
    t.equal(first.revision, await s.revision(), 'read at the current revision')
    t.same(first.entries[0], await s.get('machine', ids[0]!), 'entries are what get returns')
    const second = await s.page('machine', { after: first.next!, limit: 3, revision: first.revision })
    t.same(second.entries.map((e) => e.id), ids.slice(3, 6))
    const last = await s.page('machine', { after: second.next!, limit: 3, revision: first.revision })
    t.same(last.entries.map((e) => e.id), ids.slice(6))
    t.equal(last.next, undefined, 'no next on the last page')
    const exact = await s.page('machine', { after: ids[3]!, limit: 3 })
    t.same(exact.entries.map((e) => e.id), ids.slice(4), 'a page that ends exactly at the last document')
    t.equal(exact.next, undefined, 'has no next either')
    t.same((await s.page('machine', { after: '52:54:00:00:00:02x', limit: 2 })).entries.map((e) => e.id), ids.slice(3, 5), 'after an id that does not exist: the ids that sort after it')
    t.same(await s.page('machine', { after: ids[6]!, limit: 5 }), { entries: [], revision: first.revision }, 'after the last: empty')
    t.same((await s.page('profile', { limit: 5 })).entries, [], 'an unused kind: empty')
    t.same((await s.page('machine', { limit: 1000 })).entries, await s.list('machine'), 'one page of everything is the list')
    for (const limit of [0, -1, 1.5, Number.NaN]) await t.rejects(s.page('machine', { limit }), { code: 'PXEBOX_STORE_PAGE' }, `limit ${limit} is refused`)
    await t.rejects(s.page('machine', { after: 'a/b', limit: 1 }), { code: 'PXEBOX_STORE_PAGE' }, 'an after that is not a key is refused')
    await t.rejects(s.page('machine', { limit: 1, revision: (await s.revision()) + 1000 }), { code: 'PXEBOX_STORE_REVISION' }, 'a revision not yet reached is refused')
  })

  t.test('page at an earlier revision: that snapshot, or StoreCompactedError; never a mix', async (t) => {
    const { s } = await opened(t)
    await s.batch(['a', 'b', 'c', 'd'].map((id) => ({ op: 'put' as const, kind: 'k', id, value: 1 })))
    const first = await s.page('k', { limit: 2 })
    await s.batch([
      { op: 'put', kind: 'k', id: 'c', value: 2 },
      { op: 'delete', kind: 'k', id: 'd' },
      { op: 'put', kind: 'k', id: 'e', value: 2 },
    ])
    const rest = await s.page('k', { after: first.next!, limit: 10, revision: first.revision }).catch((err: unknown) => err)
    if (rest instanceof StoreCompactedError) t.pass('this backend holds only its current state: the old snapshot is compacted')
    else t.same((rest as Awaited<ReturnType<Store['page']>>).entries.map((e) => [e.id, e.value]), [['c', 1], ['d', 1]], 'the rest of the snapshot, without the later writes')
    t.same((await s.page('k', { after: first.next!, limit: 10 })).entries.map((e) => [e.id, e.value]), [['c', 2], ['e', 2]], 'without a revision: the current state')
  })

  t.test('revisions: every write advances one store-wide revision; a batch is one revision', async (t) => {
    const { s } = await opened(t)
    const r0 = await s.revision()
    const r1 = await s.put('k', 'a', 1)
    const r2 = await s.put('k', 'b', 2)
    const r3 = await s.put('k', 'a', 3)
    t.ok(r1 > r0 && r2 > r1 && r3 > r2, `strictly increasing: ${r0} ${r1} ${r2} ${r3}`)
    const a = (await s.get('k', 'a'))!
    t.equal(a.modRevision, r3, 'modRevision: the last change')
    t.equal(a.createRevision, r1, 'createRevision: the first put')
    const rb = await s.batch([
      { op: 'put', kind: 'k', id: 'c', value: 'c' },
      { op: 'delete', kind: 'k', id: 'b' },
      { op: 'put', kind: 'other', id: 'd', value: 'd' },
    ])
    t.ok(rb > r3)
    t.equal((await s.get('k', 'c'))!.modRevision, rb)
    t.equal((await s.get('other', 'd'))!.modRevision, rb, 'every op of the batch carries the batch revision')
    t.equal(await s.get('k', 'b'), undefined)
    t.equal(await s.revision(), rb, 'revision() is the last commit')
    t.equal(await s.batch([]), rb, 'an empty batch changes nothing')
    const rd = await s.delete('k', 'a')
    t.ok(rd !== undefined && rd > rb)
    const again = await s.put('k', 'a', 'again')
    t.equal((await s.get('k', 'a'))!.createRevision, again, 'a put after a delete is a new creation')
  })

  t.test('a failing batch changes nothing', async (t) => {
    const { s } = await opened(t)
    await s.put('k', 'keep', 'old')
    const before = await s.revision()
    await t.rejects(s.batch([
      { op: 'put', kind: 'k', id: 'keep', value: 'new' },
      { op: 'put', kind: 'k', id: 'bad/id', value: 1 },
    ]))
    t.same((await s.get('k', 'keep'))!.value, 'old')
    t.equal(await s.revision(), before)
  })

  t.test('create-if-absent: the second writer is refused and nothing is overwritten', async (t) => {
    const { b, s } = await opened(t)
    const r = await s.create('lease', '10.213.0.10', { mac: 'aa:00:00:00:00:01' })
    t.type(r, 'number')
    t.equal(await s.create('lease', '10.213.0.10', { mac: 'aa:00:00:00:00:02' }), undefined, 'refused')
    t.same((await s.get('lease', '10.213.0.10'))!.value, { mac: 'aa:00:00:00:00:01' }, 'the first writer kept it')
    // Racing writers on two handles: exactly one wins each address.
    const other = await b.open()
    t.teardown(() => other.close())
    const results = await Promise.all(
      Array.from({ length: 40 }, (_, i) => (i % 2 === 0 ? s : other).create('lease', `10.213.0.${20 + (i % 4)}`, { writer: i })),
    )
    for (let a = 0; a < 4; a++) {
      const won = results.filter((rev, i) => i % 4 === a && rev !== undefined)
      t.equal(won.length, 1, `10.213.0.${20 + a}: one of 10 racing creators won`)
    }
    t.same((await other.list('lease')).length, 5)
  })

  t.test('guarded batch ops (ifRevision): all or nothing, and of racing writers on one revision exactly one wins', async (t) => {
    const { b, s } = await opened(t)
    const r1 = await s.put('lease', 'aa:00:00:00:00:01', { ip: '10.213.0.10' })
    const claim = await s.batch([
      { op: 'put', kind: 'lease-addr', id: '10.213.0.10', value: { mac: 'aa:00:00:00:00:01' }, ifRevision: 0 },
      { op: 'put', kind: 'lease', id: 'aa:00:00:00:00:01', value: { ip: '10.213.0.10', renewed: true }, ifRevision: r1 },
    ])
    t.equal((await s.get('lease-addr', '10.213.0.10'))!.modRevision, claim, 'both guards held: written under one revision')
    const before = await s.revision()
    const err = await s
      .batch([
        { op: 'put', kind: 'lease', id: 'aa:00:00:00:00:02', value: { ip: '10.213.0.10' } },
        { op: 'put', kind: 'lease-addr', id: '10.213.0.10', value: { mac: 'aa:00:00:00:00:02' }, ifRevision: 0 },
      ])
      .catch((e: unknown) => e)
    t.type(err, StoreConflictError, 'a present document fails an ifRevision: 0 guard')
    t.match(err, { code: 'PXEBOX_STORE_CONFLICT', kind: 'lease-addr', id: '10.213.0.10', expected: 0, actual: claim })
    t.equal(await s.get('lease', 'aa:00:00:00:00:02'), undefined, 'the unguarded op of the failed batch was not written')
    t.equal(await s.revision(), before, 'a failed batch takes no revision')
    await t.rejects(s.batch([{ op: 'delete', kind: 'lease-addr', id: '10.213.0.10', ifRevision: r1 }]), StoreConflictError, 'a stale revision fails a delete')
    await t.rejects(s.batch([{ op: 'delete', kind: 'lease-addr', id: '10.213.0.99', ifRevision: 5 }]), StoreConflictError, 'an absent document is at revision 0')
    await t.rejects(s.batch([{ op: 'delete', kind: 'lease-addr', id: '10.213.0.10', ifRevision: -1 }]), { code: 'PXEBOX_STORE_REVISION' })
    t.type(await s.batch([{ op: 'delete', kind: 'lease-addr', id: '10.213.0.10', ifRevision: claim }]), 'number', 'the current revision passes')
    // Two handles compare-and-swap from the same revision: one wins each round.
    const other = await b.open()
    t.teardown(() => other.close())
    const start = await s.put('counter', 'c', 0)
    const results = await Promise.allSettled(Array.from({ length: 20 }, (_, i) => (i % 2 ? s : other).batch([{ op: 'put', kind: 'counter', id: 'c', value: i, ifRevision: start }])))
    t.equal(results.filter((r) => r.status === 'fulfilled').length, 1, 'one of 20 writers guarded on one revision won')
    t.ok(results.every((r) => r.status === 'fulfilled' || r.reason instanceof StoreConflictError), 'the others got StoreConflictError')
  })

  t.test('watch: every change from a revision in order, then live ones; a kind filter', async (t) => {
    const { s } = await opened(t)
    await s.put('k', 'before', 0)
    const from = await s.put('k', 'a', 1)
    await s.put('other', 'x', 'x')
    await s.batch([
      { op: 'put', kind: 'k', id: 'b', value: 2 },
      { op: 'delete', kind: 'k', id: 'a' },
    ])
    const all = collect(s, { fromRevision: from }, 6)
    const onlyK = collect(s, { kind: 'k', fromRevision: from }, 5)
    const live = collect(s, { kind: 'k' }, 2)
    t.teardown(() => [all, onlyK, live].forEach((c) => c.close()))
    await s.put('k', 'c', 3)
    await s.delete('k', 'b')
    const got = await all.done
    t.same(got.map(brief), ['put k/a 1', 'put other/x "x"', 'put k/b 2', 'delete k/a', 'put k/c 3', 'delete k/b'], 'history then live, in order')
    for (let i = 1; i < got.length; i++) t.ok(got[i]!.revision >= got[i - 1]!.revision, 'revisions never go back')
    t.equal(got[2]!.revision, got[3]!.revision, 'a batch arrives under one revision')
    t.same((await onlyK.done).map(brief), ['put k/a 1', 'put k/b 2', 'delete k/a', 'put k/c 3', 'delete k/b'])
    t.same((await live.done).map(brief), ['put k/c 3', 'delete k/b'], 'without fromRevision: live changes only')
  })

  t.test('watch resumes after the last revision seen without a gap or a repeat', async (t) => {
    const { s } = await opened(t)
    const first = collect(s, { kind: 'm' }, 3)
    for (let i = 0; i < 3; i++) await s.put('m', `id${i}`, i)
    const seen = await first.done
    first.close()
    for (let i = 3; i < 6; i++) await s.put('m', `id${i}`, i)
    const resumed = collect(s, { kind: 'm', fromRevision: seen[seen.length - 1]!.revision + 1 }, 3)
    t.teardown(() => resumed.close())
    t.same((await resumed.done).map((e) => e.id), ['id3', 'id4', 'id5'])
  })

  t.test('a closed watch gets nothing more', async (t) => {
    const { s } = await opened(t)
    const c = collect(s, { kind: 'k' }, 1)
    c.close()
    await s.put('k', 'a', 1)
    await new Promise((r) => setTimeout(r, 50))
    t.same(c.events, [])
  })

  t.test('durable across a reopen, with the revision', async (t) => {
    const { b, s } = await opened(t)
    await s.put('machine', 'm1', { boots: 1 })
    await s.put('install', 'm1', { installed_at: '2026-11-27T00:00:00.000Z' }, { durable: true })
    await s.delete('machine', 'm1')
    await s.put('machine', 'm2', { boots: 2 })
    const rev = await s.revision()
    await s.close()
    const again = await b.open()
    t.teardown(() => again.close())
    t.same((await again.list('machine')).map((e) => [e.id, e.value]), [['m2', { boots: 2 }]])
    t.same((await again.get('install', 'm1'))!.value, { installed_at: '2026-11-27T00:00:00.000Z' })
    t.equal(await again.revision(), rev, 'the revision carries on')
    t.ok((await again.put('machine', 'm3', {})) > rev, 'and keeps increasing')
  })

  t.test('concurrent writers in one process: nothing lost, every revision distinct', async (t) => {
    const { b, s } = await opened(t)
    const other = await b.open()
    t.teardown(() => other.close())
    const writes = Array.from({ length: 200 }, (_, i) => (i % 2 ? s : other).put('m', `id${String(i).padStart(3, '0')}`, { i }))
    const revisions = await Promise.all(writes)
    t.equal(new Set(revisions).size, 200, 'each write its own revision')
    const listed = await s.list('m')
    t.equal(listed.length, 200)
    t.same(listed.map((e) => (e.value as { i: number }).i), Array.from({ length: 200 }, (_, i) => i))
  })

  t.test('a closed store refuses calls clearly', async (t) => {
    const b = await backend(t)
    const s = await b.open()
    await s.close()
    await t.rejects(s.put('k', 'a', 1), StoreClosedError)
    await t.rejects(s.get('k', 'a'), StoreClosedError)
  })
}
