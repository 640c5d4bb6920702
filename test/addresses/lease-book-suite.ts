/**
 * The Store-backed lease book's tests, written once over a Store factory (test/store/contract.ts's StoreBackend), so
 * the etcd backend runs them with a few lines as store-lease-book.test.ts does for SQLite. The "appliances" share one
 * Store handle (SQLite's watch sees only its own handle's commits; for etcd two handles would do as well).
 *
 * The client simulation follows boot/authoritative-service.ts step by step: the pool chooses and holds (DISCOVER),
 * the REQUEST is checked and reserved in one tick, the book commits, a LeaseTakenError is a NAK and the client
 * starts over.
 */
import type { Test } from 'tap'
import { LeaseTakenError, LeaseUnavailableError, type LeaseBook } from '../../src/addresses/lease-book.js'
import type { LeaseRecord } from '../../src/addresses/lease-log.js'
import { createAddressPool, type AddressPool } from '../../src/addresses/pool.js'
import { CLAIM_KIND, LEASE_KIND, openStoreLeaseBook } from '../../src/addresses/store-lease-book.js'
import type { Store } from '../../src/store/index.js'
import type { StoreBackend } from '../store/contract.js'
import { failingStore } from '../helpers/failing-store.js'

const HOUR = 3_600_000
const mac = (i: number): string => `02:00:00:00:${((i >> 8) & 255).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`

/** A clock the test moves. */
function clock(): { now: () => number; advance(ms: number): void } {
  let t = Date.parse('2026-11-28T01:00:00Z')
  return { now: () => t, advance: (ms) => void (t += ms) }
}

/** Waits until `check` holds (polling), failing after `ms`. */
async function until(what: string, check: () => boolean | Promise<boolean>, ms = 5000): Promise<void> {
  const end = Date.now() + ms
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 10))
  }
}

/** One appliance: a book on `store` and the pool it feeds, as the authoritative service wires them. */
async function appliance(t: Test, store: Store, now: () => number, range = { start: '10.213.40.10', end: '10.213.41.200' }): Promise<{ book: LeaseBook; pool: AddressPool }> {
  const book = await openStoreLeaseBook({ store, now, retryMs: 50 })
  t.teardown(() => book.close())
  const pool = createAddressPool({ ...range, leases: book.all(), now })
  book.onChange((r) => pool.commit(r))
  return { book, pool }
}

/** DISCOVER/OFFER then REQUEST/ACK against one appliance until ACKed; the address and the NAKs on the way. */
async function dora(a: { book: LeaseBook; pool: AddressPool }, client: string, now: () => number): Promise<{ ip: string; naks: number }> {
  let naks = 0
  const offered = new Map<string, number>()
  let last = ''
  for (let attempt = 0; attempt < 100; attempt++) {
    const choice = a.pool.choose({ mac: client })
    if (choice === undefined) throw new Error(`pool exhausted for ${client}`)
    offered.set(choice.ip, (offered.get(choice.ip) ?? 0) + 1)
    a.pool.hold(choice.ip, client)
    await new Promise((r) => setImmediate(r)) // the OFFER is on the wire; other clients run meanwhile
    if (!a.pool.canLease({ mac: client }, choice.ip)) {
      naks++
      last = `the pool refused ${choice.ip}`
      continue
    }
    const lease: LeaseRecord = { mac: client, ip: choice.ip, expires: now() + HOUR, at: now() }
    const undo = a.pool.reserve(lease)
    try {
      await a.book.grant(lease)
      return { ip: choice.ip, naks }
    } catch (err) {
      undo()
      if (!(err instanceof LeaseTakenError)) throw err
      naks++
      last = `${err.message}; the pool has ${choice.ip} as ${JSON.stringify(a.pool.leaseOf(err.holder) ?? 'nothing of the holder')}`
    }
  }
  // What was offered how often, and the last refusal: which view (the pool's, the book's) was behind.
  throw new Error(`${client}: no ACK after 100 attempts; offered ${JSON.stringify(Object.fromEntries(offered))}; last: ${last}`)
}

const claimOf = async (s: Store, ip: string): Promise<unknown> => (await s.get(CLAIM_KIND, ip))?.value
const leaseOf = async (s: Store, m: string): Promise<unknown> => (await s.get(LEASE_KIND, m))?.value

/** Runs the suite as subtests of `t`; `backend(t)` makes a fresh backing place per subtest. */
export function storeLeaseBookSuite(t: Test, backend: (t: Test) => Promise<StoreBackend>): void {
  const opened = async (t: Test): Promise<{ b: StoreBackend; s: Store }> => {
    const b = await backend(t)
    const s = await b.open()
    t.teardown(() => s.close())
    return { b, s }
  }

  t.test('grant, renew, move, release, decline: the store holds each lease and its address claim', async (t) => {
    const { s } = await opened(t)
    const c = clock()
    const { book } = await appliance(t, s, c.now)
    const m = mac(1)
    const r1: LeaseRecord = { mac: m, ip: '10.213.40.10', expires: c.now() + HOUR, at: c.now(), hostname: 'node1' }
    await book.grant(r1)
    t.same(await leaseOf(s, m), r1, 'lease/<mac> is the record')
    t.same(await claimOf(s, '10.213.40.10'), { mac: m, expires: r1.expires }, 'lease-addr/<ip> claims the address for the MAC')
    t.same(book.byMac(m), r1)
    t.same(book.byAddress('10.213.40.10'), r1)
    c.advance(60_000)
    const r2 = { ...r1, expires: c.now() + HOUR, at: c.now() }
    t.same(await book.renew(r2), { queued: false }, 'a renewal with the store up is written, not queued')
    t.same(await leaseOf(s, m), r2)
    t.same(await claimOf(s, '10.213.40.10'), { mac: m, expires: r2.expires }, 'the claim follows the renewal (a sweep cannot free it)')
    const r3 = { ...r2, ip: '10.213.40.11', at: c.now() }
    await book.grant(r3)
    t.equal(await claimOf(s, '10.213.40.10'), undefined, 'moving to another address frees the old claim in the same commit')
    t.same(await claimOf(s, '10.213.40.11'), { mac: m, expires: r3.expires })
    t.equal(await book.release(m, '10.213.40.10', c.now()), undefined, 'a release of an address the client does not hold changes nothing')
    c.advance(1000)
    const ended = await book.release(m, '10.213.40.11', c.now())
    t.same(ended, { ...r3, expires: c.now(), at: c.now() }, 'released: the lease ends now')
    t.same(await leaseOf(s, m), ended, 'the ended lease stays in the store (the address stays the client\'s first choice)')
    t.equal(await claimOf(s, '10.213.40.11'), undefined, 'and its address is free')
    const other = { mac: mac(2), ip: '10.213.40.11', expires: c.now() + HOUR, at: c.now() }
    await book.grant(other)
    t.same(book.byAddress('10.213.40.11'), other, 'the released address goes to another client')
    t.same(book.byMac(m), ended, 'the first client keeps its ended record')
    const declined = await book.decline(other.mac, other.ip, c.now())
    t.equal(declined?.expires, c.now(), 'a decline ends the lease')
    t.equal(await claimOf(s, other.ip), undefined, 'and frees the claim')
  })

  t.test('an address another client holds is refused, also when this book has not seen the holder\'s write yet', async (t) => {
    const { b, s } = await opened(t)
    const c = clock()
    const { book } = await appliance(t, s, c.now)
    await book.grant({ mac: mac(1), ip: '10.213.40.10', expires: c.now() + HOUR, at: c.now() })
    await t.rejects(book.grant({ mac: mac(2), ip: '10.213.40.10', expires: c.now() + HOUR, at: c.now() }), LeaseTakenError, 'held in this book\'s view')
    // A writer this book's watch does not see (another handle): the guarded batch conflicts, the book reads the keys
    // again and finds the address taken.
    const foreign = await b.open()
    t.teardown(() => foreign.close())
    const other = await openStoreLeaseBook({ store: foreign, now: c.now })
    t.teardown(() => other.close())
    await other.grant({ mac: mac(3), ip: '10.213.40.12', expires: c.now() + HOUR, at: c.now() })
    const err = await book.grant({ mac: mac(4), ip: '10.213.40.12', expires: c.now() + HOUR, at: c.now() }).catch((e: unknown) => e)
    t.type(err, LeaseTakenError, 'the stale view is corrected by the conflict')
    t.match(err, { ip: '10.213.40.12', holder: mac(3) })
    t.same(await claimOf(s, '10.213.40.12'), { mac: mac(3), expires: c.now() + HOUR }, 'the holder keeps it')
    t.equal(await leaseOf(s, mac(4)), undefined, 'nothing of the refused grant was written')
  })

  t.test('an address a conflict showed taken is not offered again before the watch brings the holder\'s lease', async (t) => {
    const { s } = await opened(t)
    const now = Date.now
    // A learns of B's grants a second late; B grants first, so A's pool still believes the address free.
    const a = await appliance(t, failingStore(s, { watchDelayMs: 1000 }), now)
    const b = await appliance(t, s, now)
    const taken = '10.213.40.10'
    await b.book.grant({ mac: mac(1), ip: taken, expires: now() + HOUR, at: now() })
    const client = mac(2)
    const offered = a.pool.choose({ mac: client })
    t.equal(offered?.ip, taken, 'A offers the address B just granted (its view is a second behind)')
    a.pool.hold(taken, client)
    const lease: LeaseRecord = { mac: client, ip: taken, expires: now() + HOUR, at: now() }
    const undo = a.pool.reserve(lease)
    await t.rejects(a.book.grant(lease), LeaseTakenError, 'the store refuses the REQUEST (a NAK)')
    undo()
    // Without this the client, starting over, was offered the same address at once, and NAKed again, until the
    // watch delivered B's lease: a client retrying fast ran out of tries (the 300-client race on etcd).
    t.notOk(a.pool.canLease({ mac: client }, taken), 'the pool knows the address is taken, from the claim the conflict read')
    t.not(a.pool.choose({ mac: client })?.ip, taken, 'so the next offer is another address')
    t.equal(a.pool.leaseOf(mac(1))?.ip, taken, 'held by B\'s client until its claim expires')
  })

  t.test('a stale REQUEST whose commit lands after the client was granted another address elsewhere is refused', async (t) => {
    const { s } = await opened(t)
    const c = clock()
    // A hears of B's grants a second late, as when its commit waited out an etcd election.
    const a = await appliance(t, failingStore(s, { watchDelayMs: 1000 }), c.now)
    const b = await appliance(t, s, c.now)
    const client = mac(1)
    const stale: LeaseRecord = { mac: client, ip: '10.213.40.20', expires: c.now() + HOUR, at: c.now() }
    c.advance(3000) // the client heard nothing from A, started over and was ACKed by B
    const kept: LeaseRecord = { mac: client, ip: '10.213.40.21', expires: c.now() + HOUR, at: c.now() }
    await b.book.grant(kept)
    const err = await a.book.grant(stale).catch((e: unknown) => e)
    t.type(err, LeaseTakenError, 'A refuses its stale request (the server NAKs it; the client has moved on)')
    t.match(err, { name: 'LeaseSupersededError', message: /was granted 10\.213\.40\.21 after this request for 10\.213\.40\.20/ })
    t.same(await leaseOf(s, client), kept, 'the lease the client was ACKed stays in the store')
    t.same(await claimOf(s, kept.ip), { mac: client, expires: kept.expires }, 'with its claim')
    t.equal(await claimOf(s, stale.ip), undefined, 'and the stale address is not claimed')
  })

  t.test('expiry frees the claim (guarded); an expired claim is taken over even before a sweep', async (t) => {
    const { s } = await opened(t)
    const c = clock()
    const { book } = await appliance(t, s, c.now)
    await book.grant({ mac: mac(1), ip: '10.213.40.10', expires: c.now() + 1000, at: c.now() })
    await book.grant({ mac: mac(2), ip: '10.213.40.11', expires: c.now() + 1000, at: c.now() })
    await book.grant({ mac: mac(3), ip: '10.213.40.12', expires: c.now() + HOUR, at: c.now() })
    t.equal(await book.expire(c.now()), 0, 'nothing expired yet')
    c.advance(2000)
    const taken = { mac: mac(4), ip: '10.213.40.11', expires: c.now() + HOUR, at: c.now() }
    await book.grant(taken)
    t.same(await claimOf(s, '10.213.40.11'), { mac: mac(4), expires: taken.expires }, 'an expired claim of another client is taken over')
    t.equal(await book.expire(c.now()), 1, 'the sweep frees the one claim whose lease expired')
    t.equal(await claimOf(s, '10.213.40.10'), undefined)
    t.ok(await claimOf(s, '10.213.40.12'), 'a live claim stays')
    t.equal((await leaseOf(s, mac(1)) as LeaseRecord).ip, '10.213.40.10', 'the expired lease record stays (first choice on return)')
  })

  t.test('a sweep racing a renewal it has not seen frees nothing', async (t) => {
    const { b, s } = await opened(t)
    const c = clock()
    const { book } = await appliance(t, s, c.now)
    const r = { mac: mac(1), ip: '10.213.40.10', expires: c.now() + 1000, at: c.now() }
    await book.grant(r)
    // The renewal arrives at another appliance, on a handle whose commits this book's watch does not deliver.
    const foreign = await b.open()
    t.teardown(() => foreign.close())
    const other = await openStoreLeaseBook({ store: foreign, now: c.now })
    t.teardown(() => other.close())
    c.advance(500)
    const renewed = { ...r, expires: c.now() + HOUR, at: c.now() }
    await other.renew(renewed)
    c.advance(1000) // expired in this book's view
    t.equal(await book.expire(c.now()), 0, 'the guarded delete conflicts: the claim was renewed')
    t.same(await claimOf(s, r.ip), { mac: mac(1), expires: renewed.expires }, 'the renewed claim stands')
  })

  t.test('documents that are no lease or claim are reported, and a grant replaces them', async (t) => {
    const { s } = await opened(t)
    const c = clock()
    await s.put(CLAIM_KIND, '10.213.40.10', { holder: 'not a claim' })
    await s.put(LEASE_KIND, mac(1), { mac: mac(1), ip: '999.0.0.1', expires: 1, at: 1 })
    const { book, pool } = await appliance(t, s, c.now)
    t.equal(book.problems.length, 2, 'both reported')
    t.match(book.problems, [{ reason: /lease\/02:00:00:00:00:01 \(revision \d+\) is not a lease record/ }, { reason: /lease-addr\/10\.213\.40\.10 \(revision \d+\) is not an address claim/ }])
    t.equal(pool.active().length, 0, 'nothing of them reaches the pool')
    const r = { mac: mac(1), ip: '10.213.40.10', expires: c.now() + HOUR, at: c.now() }
    await book.grant(r)
    t.same(await leaseOf(s, mac(1)), r, 'the bad lease document is replaced')
    t.same(await claimOf(s, '10.213.40.10'), { mac: mac(1), expires: r.expires }, 'the unreadable claim counted as free and is replaced')
  })

  t.test('restart: a new book on a reopened store has every lease back', async (t) => {
    const b = await backend(t)
    const c = clock()
    const s1 = await b.open()
    const book1 = await openStoreLeaseBook({ store: s1, now: c.now })
    const records = [0, 1, 2, 3].map((i) => ({ mac: mac(i), ip: `10.213.40.${20 + i}`, expires: c.now() + HOUR, at: c.now() }))
    for (const r of records) await book1.grant(r)
    const released = await book1.release(mac(3), '10.213.40.23', c.now())
    await book1.close()
    await s1.close()
    const s2 = await b.open()
    t.teardown(() => s2.close())
    const { book, pool } = await appliance(t, s2, c.now)
    t.same(book.all().sort((x, y) => x.mac.localeCompare(y.mac)), [...records.slice(0, 3), released])
    for (const r of records.slice(0, 3)) t.same(book.byAddress(r.ip), r, `${r.ip} is ${r.mac}'s again`)
    t.same(pool.active().map((r) => r.ip).sort(), ['10.213.40.20', '10.213.40.21', '10.213.40.22'], 'the pool starts from them')
    t.equal(pool.choose({ mac: mac(1) })?.ip, '10.213.40.21', 'a client gets its address back')
    await t.rejects(book.grant({ mac: mac(9), ip: '10.213.40.20', expires: c.now() + HOUR, at: c.now() }), LeaseTakenError)
  })

  t.test('two appliances over one store, 300 clients racing: every client ACKed, no address twice, every ACK in the store', async (t) => {
    const { s } = await opened(t)
    const now = Date.now
    // Each appliance learns the other's grants 20 ms late (a watch over the network), and both pools scan from the
    // range start: they offer the same addresses, and the store's guarded claim decides every race.
    const a = await appliance(t, failingStore(s, { watchDelayMs: 20 }), now)
    const b = await appliance(t, failingStore(s, { watchDelayMs: 20 }), now)
    const results = await Promise.all(Array.from({ length: 300 }, (_, i) => dora(i % 2 === 0 ? a : b, mac(i), now).then((r) => ({ ...r, mac: mac(i) }))))
    t.equal(results.length, 300, 'every client ACKed')
    t.equal(new Set(results.map((r) => r.ip)).size, 300, 'no address ACKed to two clients')
    const naks = results.reduce((n, r) => n + r.naks, 0)
    t.ok(naks > 0, `the appliances raced: ${naks} NAKs for addresses the other one claimed first`)
    const leases = new Map((await s.list(LEASE_KIND)).map((e) => [e.id, e.value as LeaseRecord]))
    const claims = new Map((await s.list(CLAIM_KIND)).map((e) => [e.id, (e.value as { mac: string }).mac]))
    const missing = results.filter((r) => leases.get(r.mac)?.ip !== r.ip || claims.get(r.ip) !== r.mac)
    t.same(missing, [], 'every ACKed lease is in the store with its claim')
    t.equal(claims.size, 300, 'one claim per client, none left behind by a lost race')
    await until('both appliances know all 300 leases', () => a.book.all().length === 300 && b.book.all().length === 300)
    for (const x of [a, b]) t.same(new Set(x.pool.active().map((r) => r.ip)), new Set(results.map((r) => r.ip)), 'each pool holds every lease (its own and the other\'s)')
  })

  t.test('store unreachable: nothing new is granted; renewals of live leases are ACKed, queued and written when it returns', async (t) => {
    const { s } = await opened(t)
    const c = clock()
    const failing = failingStore(s)
    const { book } = await appliance(t, failing, c.now)
    const live = { mac: mac(1), ip: '10.213.40.10', expires: c.now() + HOUR, at: c.now() }
    const short = { mac: mac(2), ip: '10.213.40.11', expires: c.now() + 1000, at: c.now() }
    await book.grant(live)
    await book.grant(short)
    failing.down = true
    c.advance(2000)
    const fresh = { mac: mac(3), ip: '10.213.40.12', expires: c.now() + HOUR, at: c.now() }
    await t.rejects(book.grant(fresh), LeaseUnavailableError, 'a new lease is refused')
    t.equal(book.up, false, 'the book says it is down')
    t.equal(await leaseOf(s, mac(3)), undefined)
    const renewed = { ...live, expires: c.now() + HOUR, at: c.now() }
    t.same(await book.renew(renewed), { queued: true }, 'the renewal of a live lease resolves (the ACK goes out), queued')
    t.same(book.byMac(mac(1)), renewed, 'and is this appliance\'s view meanwhile')
    await t.rejects(book.renew({ ...short, expires: c.now() + HOUR, at: c.now() }), LeaseUnavailableError, 'an expired lease is not renewed blind: that would be a new grant')
    await t.rejects(book.release(mac(1), live.ip, c.now()), LeaseUnavailableError, 'a release cannot be written either')
    t.equal(await book.expire(c.now() + 2 * HOUR), 0, 'nothing is freed while down')
    t.same(await leaseOf(s, mac(1)), live, 'nothing reached the store')
    failing.down = false
    await until('the queued renewal is written', async () => (await leaseOf(s, mac(1)) as LeaseRecord).expires === renewed.expires)
    t.same(await claimOf(s, live.ip), { mac: mac(1), expires: renewed.expires }, 'with its claim')
    await until('the book is up', () => book.up)
    await book.grant(fresh)
    t.same(await leaseOf(s, mac(3)), fresh, 'new leases are granted again')
  })

  t.test('a renewal queued in an outage whose address another appliance took meanwhile is dropped, never held twice', async (t) => {
    const { s } = await opened(t)
    const c = clock()
    const failing = failingStore(s)
    const a = await appliance(t, failing, c.now)
    const b = await appliance(t, s, c.now)
    const r = { mac: mac(1), ip: '10.213.40.10', expires: c.now() + 10_000, at: c.now() }
    await a.book.grant(r)
    failing.down = true
    c.advance(5000)
    t.same(await a.book.renew({ ...r, expires: c.now() + HOUR, at: c.now() }), { queued: true })
    c.advance(6000) // the stored lease expired: appliance B, which sees the store, may give the address away
    const taker = { mac: mac(2), ip: '10.213.40.10', expires: c.now() + HOUR, at: c.now() }
    await b.book.grant(taker)
    failing.down = false
    await until('A is up again', () => a.book.up)
    await until('A dropped its queued renewal', () => a.book.byMac(mac(1))?.expires === r.expires)
    t.same(await claimOf(s, '10.213.40.10'), { mac: mac(2), expires: taker.expires }, 'the store kept B\'s grant')
    t.equal((await leaseOf(s, mac(1)) as LeaseRecord).expires, r.expires, 'A\'s renewal was not written over it')
  })

  t.test('a watch that ends is restarted from a fresh list: grants made meanwhile reach the pool', async (t) => {
    const { s } = await opened(t)
    const c = clock()
    const failing = failingStore(s)
    const a = await appliance(t, failing, c.now)
    const b = await appliance(t, s, c.now)
    failing.breakWatches()
    const r = { mac: mac(7), ip: '10.213.40.30', expires: c.now() + HOUR, at: c.now() }
    await b.book.grant(r)
    await until('A sees B\'s grant', () => a.book.byAddress(r.ip)?.mac === mac(7))
    t.same(a.pool.leaseOf(mac(7)), r, 'through onChange into A\'s pool')
    t.notOk(a.pool.canLease({ mac: mac(8) }, r.ip), 'so A never offers it')
  })
}
