/**
 * The Store-backed lease book, for appliances that share one store (etcd; issue 17, "active-active on one VLAN").
 *
 * Two kinds of documents:
 * - `lease-addr/<ip>` = `{mac, expires}`: the claim on an address, present while a lease on it may be live;
 * - `lease/<mac>` = the lease record, kept after the lease ends (the address stays the client's first choice, as in
 *   the lease log).
 *
 * Grant: one batch, each op guarded on the revision this book last saw (store.ts `ifRevision`): the claim (absent:
 * a create; an expired claim of another client: taken over), the lease, and the delete of the client's previous
 * claim. Of two appliances granting one address at once exactly one batch commits (etcd: one Txn); the other reads
 * the keys again and finds the address taken (the server NAKs) or, when only its view was stale, tries again.
 * Written with `durable: true`; the server ACKs only after it resolved.
 * Renewal: the same batch, so both revisions move and a sweep that read the old claim cannot free it. While the store
 * is unreachable, a renewal of a lease live in this book's view is kept in memory and resolves as queued (the server
 * ACKs it), and is written when the store answers again. If another appliance took the address meanwhile (the lease
 * expired in its view), that write conflicts and the loss is logged: a renewal ACKed during an outage is the one
 * promise that can break, by design (issue 17: renewals continue, new addresses stop).
 * Release, decline: the lease ends and its claim is deleted, guarded. Expiry: any appliance deletes the claims whose
 * time passed, each guarded on its revision, so a renewal racing a sweep wins or the sweep fails, never both.
 * Watch: both kinds, from the revision the book listed at, so leases granted by other appliances reach the pool
 * (onChange) and an address claimed elsewhere is not offered here. A watch that ends (history compacted, connection
 * lost) is restarted from a fresh list on the next retry tick.
 *
 * Expiry compares lease times written by different appliances: their clocks must agree to well within the lease time
 * (NTP), as for DHCP failover partners (RFC 3074's MCLT plays this role there).
 */
import { silentLogger, type Logger } from '../host/log.js'
import { StoreConflictError, storeHealth, type Store, type StoreEntry, type StoreEvent, type StoreOp, type StoreWatch, type WriteOptions } from '../store/index.js'
import { endedLease, LeaseSupersededError, LeaseTakenError, LeaseUnavailableError, type LeaseBook, type LeaseBookProblem } from './lease-book.js'
import { isLeaseRecord, type LeaseRecord } from './lease-log.js'

/** The store kind of lease records, by MAC. */
export const LEASE_KIND = 'lease'
/** The store kind of address claims, by dotted quad. */
export const CLAIM_KIND = 'lease-addr'

/** What a claim document holds. */
export interface AddressClaim {
  mac: string
  expires: number
}

/** Options for openStoreLeaseBook. */
export interface StoreLeaseBookOptions {
  store: Store
  logger?: Logger
  now?: () => number
  /** How often queued renewals are retried, a lost watch restarted and an unreachable store probed (ms). Default 2000. */
  retryMs?: number
}

/** Writes a client is told about: on disk (and, for etcd, on a quorum) before the ACK. */
const DURABLE: WriteOptions = { durable: true }
/** Conflicts with a stale view tolerated per change before giving up (each refreshes the keys involved). */
const ATTEMPTS = 4
/** Problems kept for the banner and the API; the log has them all. */
const MAX_PROBLEMS = 100

interface Known<T> {
  value: T
  /** modRevision of the document as last read or written. */
  rev: number
}

const isClaim = (v: unknown): v is AddressClaim => {
  const c = v as AddressClaim
  return typeof c === 'object' && c !== null && typeof c.mac === 'string' && /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/.test(c.mac) && Number.isSafeInteger(c.expires)
}

/** Lists the leases in `store`, watches it, and returns the book; rejects when the store cannot be read. */
export async function openStoreLeaseBook(opts: StoreLeaseBookOptions): Promise<LeaseBook> {
  const { store } = opts
  const log = (opts.logger ?? silentLogger).child({ proto: 'leases', store: store.location })
  const now = opts.now ?? Date.now
  const leases = new Map<string, Known<LeaseRecord>>()
  const claims = new Map<string, Known<AddressClaim>>()
  /** ip -> the MAC whose lease record last named it (byAddress after the claim is gone). */
  const lastHolder = new Map<string, string>()
  /** Renewals ACKed while the store was unreachable, by MAC; written by the retry tick. */
  const pending = new Map<string, LeaseRecord>()
  const listeners = new Set<(record: LeaseRecord) => void>()
  const problems: LeaseBookProblem[] = []
  /** `kind/id` -> revision of a document that is no lease or claim: a grant overwrites it, guarded like any other. */
  const unreadable = new Map<string, number>()
  const seen = { [LEASE_KIND]: 0, [CLAIM_KIND]: 0 }
  let watches: StoreWatch[] = []
  // Over the outage layer (mirrored.ts) reads succeed from its local copy while etcd is down, so a read proves
  // nothing: the book follows the layer's own view of etcd instead of probing with a call.
  const health = storeHealth(store)
  let up = true
  let closed = false
  let ticking = false

  const problem = (reason: string): void => {
    log.warn(reason)
    if (problems.length < MAX_PROBLEMS) problems.push({ reason })
  }
  const notify = (record: LeaseRecord): void => {
    for (const l of listeners) l(record)
  }
  const reasonOf = (err: unknown): string => (err as { code?: string }).code ?? (err as Error).message
  const setUp = (): void => {
    if (up) return
    up = true
    log.info({ queued: pending.size }, `lease store ${store.location} answers again; new leases are granted again`)
  }
  const setDown = (err: unknown): void => {
    if (!up) return
    up = false
    log.error({ err }, `lease store ${store.location} unreachable (${reasonOf(err)}): no new address is granted; renewals of live leases are ACKed and written when it returns`)
  }

  /** A lease document as the store has it (`rev` its modRevision); `force`: a fresh read, newer than anything seen. */
  const setLease = (mac: string, value: unknown, rev: number, force = false): void => {
    const cur = leases.get(mac)
    if (!force && cur !== undefined && cur.rev >= rev) return
    if (!isLeaseRecord(value) || value.mac !== mac) return setUnreadable(LEASE_KIND, mac, rev, 'a lease record')
    unreadable.delete(`${LEASE_KIND}/${mac}`)
    leases.set(mac, { value, rev })
    lastHolder.set(value.ip, mac)
    const queued = pending.get(mac)
    // Another appliance wrote this client's lease after our queued renewal: it reached the store, ours did not.
    if (queued !== undefined && value.at >= queued.at) pending.delete(mac)
    if (!pending.has(mac)) notify(value)
  }
  const setClaim = (ip: string, value: unknown, rev: number, force = false): void => {
    const cur = claims.get(ip)
    if (!force && cur !== undefined && cur.rev >= rev) return
    if (!isClaim(value)) return setUnreadable(CLAIM_KIND, ip, rev, 'an address claim; the address counts as free')
    unreadable.delete(`${CLAIM_KIND}/${ip}`)
    claims.set(ip, { value: { mac: value.mac, expires: value.expires }, rev })
    // The claim and the lease of one grant commit together but reach this book apart: on two watches, or (after a
    // conflict) the re-read fetched the claim alone. Until the lease follows, the pool hears of the claim from the
    // claim itself; otherwise it kept offering an address this book already refuses (LeaseTakenError), and a
    // client retrying at once was offered the same address again and again, for good if the lease event never came
    // (a watch resumed past it). A lease as new as the claim (the same commit) or newer already told the pool.
    const known = leases.get(value.mac)
    if (pending.has(value.mac) || (known !== undefined && known.rev >= rev)) return
    const lease = known?.value.ip === ip ? known.value : undefined
    notify({ ...lease, mac: value.mac, ip, expires: value.expires, at: lease?.at ?? now() })
  }
  const setUnreadable = (kind: string, id: string, rev: number, what: string): void => {
    const key = `${kind}/${id}`
    if (unreadable.get(key) === rev) return
    unreadable.set(key, rev)
    ;(kind === LEASE_KIND ? leases : claims).delete(id)
    problem(`store document ${key} (revision ${rev}) is not ${what}; ignored until a grant replaces it`)
  }
  /** The revision a guarded write of `kind/id` expects: what this book last saw of it, 0 when it saw nothing. */
  const revOf = (kind: string, id: string): number => (kind === LEASE_KIND ? leases.get(id)?.rev : claims.get(id)?.rev) ?? unreadable.get(`${kind}/${id}`) ?? 0
  const removeIfOlder = (kind: typeof LEASE_KIND | typeof CLAIM_KIND, id: string, rev: number): void => {
    const map: Map<string, Known<unknown>> = kind === LEASE_KIND ? leases : claims
    const cur = map.get(id)
    if (cur !== undefined && cur.rev < rev) map.delete(id)
    const bad = unreadable.get(`${kind}/${id}`)
    if (bad !== undefined && bad < rev) unreadable.delete(`${kind}/${id}`)
  }

  const onEvent = (e: StoreEvent): void => {
    if (e.kind !== LEASE_KIND && e.kind !== CLAIM_KIND) return
    seen[e.kind] = Math.max(seen[e.kind], e.revision)
    if (e.type === 'put') (e.kind === LEASE_KIND ? setLease : setClaim)(e.id, e.value, e.revision)
    else removeIfOlder(e.kind, e.id, e.revision)
  }

  /** A committed batch into the local view, unless the watch already delivered it (and maybe later changes). */
  const applyCommitted = (ops: readonly StoreOp[], rev: number): void => {
    // Leases first: the claim then finds its lease in the view and the pool hears of the grant once.
    const ordered = [...ops.filter((op) => op.kind === LEASE_KIND), ...ops.filter((op) => op.kind !== LEASE_KIND)]
    for (const op of ordered) {
      if (op.kind !== LEASE_KIND && op.kind !== CLAIM_KIND) continue
      if (seen[op.kind] >= rev) continue
      if (op.op === 'put') (op.kind === LEASE_KIND ? setLease : setClaim)(op.id, op.value, rev)
      else removeIfOlder(op.kind, op.id, rev)
    }
  }

  /** Lists both kinds and watches from the revision before the list, so no change falls between them. */
  const startWatch = async (): Promise<void> => {
    const rev = await store.revision()
    const [leaseDocs, claimDocs] = await Promise.all([store.list(LEASE_KIND), store.list(CLAIM_KIND)])
    const listedClaims = new Set(claimDocs.map((e) => e.id))
    for (const ip of [...claims.keys()]) if (!listedClaims.has(ip)) claims.delete(ip)
    for (const key of [...unreadable.keys()]) if (key.startsWith(`${CLAIM_KIND}/`) && !listedClaims.has(key.slice(CLAIM_KIND.length + 1))) unreadable.delete(key)
    for (const e of leaseDocs) setLease(e.id, e.value, e.modRevision)
    for (const e of claimDocs) setClaim(e.id, e.value, e.modRevision)
    seen[LEASE_KIND] = seen[CLAIM_KIND] = rev
    const onError = (err: Error): void => {
      if (closed) return
      log.warn({ err }, `lease store watch ended (${reasonOf(err)}); listing again on the next retry`)
      for (const w of watches) w.close()
      watches = []
    }
    watches = [LEASE_KIND, CLAIM_KIND].map((kind) => store.watch({ kind, fromRevision: rev + 1 }, onEvent, onError))
  }

  /** Reads `ops`' documents again after a conflict: the store's answer replaces whatever this book believed. */
  const refresh = async (ops: readonly StoreOp[]): Promise<void> => {
    const read = (op: StoreOp): Promise<StoreEntry | undefined> => store.get(op.kind, op.id)
    for (const op of ops) {
      const e = await read(op).catch((err: unknown) => {
        setDown(err)
        throw new LeaseUnavailableError(store.location, reasonOf(err))
      })
      if (e === undefined) {
        ;(op.kind === LEASE_KIND ? leases : claims).delete(op.id)
        unreadable.delete(`${op.kind}/${op.id}`)
      } else (op.kind === LEASE_KIND ? setLease : setClaim)(e.id, e.value, e.modRevision, true)
    }
  }

  /** Commits `ops`; a failure other than a conflict marks the store down and becomes LeaseUnavailableError. */
  const write = async (ops: readonly StoreOp[], wopts: WriteOptions): Promise<void> => {
    let rev: number
    try {
      rev = await store.batch(ops, wopts)
    } catch (err) {
      if (err instanceof StoreConflictError) {
        setUp() // it answered
        throw err
      }
      setDown(err)
      throw new LeaseUnavailableError(store.location, reasonOf(err))
    }
    setUp()
    applyCommitted(ops, rev)
  }

  /** The client's record as this appliance answers it: a queued renewal over the stored one. */
  const byMac = (mac: string): LeaseRecord | undefined => pending.get(mac) ?? leases.get(mac)?.value
  /** Who holds `ip` live at `t` (a queued renewal counts), if anyone. */
  const liveHolder = (ip: string, t: number): string | undefined => {
    const claim = claims.get(ip)?.value
    if (claim === undefined) return undefined
    const queued = pending.get(claim.mac)
    const expires = queued?.ip === ip ? Math.max(queued.expires, claim.expires) : claim.expires
    return expires > t ? claim.mac : undefined
  }

  /** The guarded batch that makes `r` the client's lease; LeaseTakenError when another client holds the address. */
  const leaseOps = (r: LeaseRecord): StoreOp[] => {
    const holder = liveHolder(r.ip, now())
    if (holder !== undefined && holder !== r.mac) throw new LeaseTakenError(r.ip, holder)
    const held = leases.get(r.mac)
    // A grant of another address to this client made after this request (its `at`; appliances' clocks agree, as
    // for expiry) wins: without this a REQUEST whose commit waited out an etcd election, conflicted with the newer
    // grant and was retried moved the client's lease, and freed the address the client had been ACKed meanwhile.
    if (held !== undefined && held.value.ip !== r.ip && held.value.at > r.at) throw new LeaseSupersededError(r.ip, r.mac, held.value.ip)
    const ops: StoreOp[] = [
      { op: 'put', kind: CLAIM_KIND, id: r.ip, value: { mac: r.mac, expires: r.expires } satisfies AddressClaim, ifRevision: revOf(CLAIM_KIND, r.ip) },
      { op: 'put', kind: LEASE_KIND, id: r.mac, value: r, ifRevision: revOf(LEASE_KIND, r.mac) },
    ]
    const old = held?.value.ip
    const oldClaim = old === undefined || old === r.ip ? undefined : claims.get(old)
    if (old !== undefined && oldClaim?.value.mac === r.mac) ops.push({ op: 'delete', kind: CLAIM_KIND, id: old, ifRevision: oldClaim.rev })
    return ops
  }

  /** Runs `build`'s batch, reading the keys again and rebuilding after each conflict with a stale view. */
  const commit = async (what: string, build: () => StoreOp[] | undefined, wopts: WriteOptions = DURABLE): Promise<boolean> => {
    for (let attempt = 1; ; attempt++) {
      const ops = build()
      if (ops === undefined) return false
      try {
        await write(ops, wopts)
        return true
      } catch (err) {
        if (!(err instanceof StoreConflictError)) throw err
        if (attempt >= ATTEMPTS) throw new LeaseUnavailableError(store.location, `${what}: still conflicting with other writers after ${attempt} attempts`)
        await refresh(ops)
      }
    }
  }

  const grant = async (r: LeaseRecord): Promise<void> => {
    await commit(`lease of ${r.ip} to ${r.mac}`, () => leaseOps(r))
    const queued = pending.get(r.mac)
    if (queued !== undefined && queued.at <= r.at) pending.delete(r.mac)
  }

  const end = async (mac: string, ip: string, at: number): Promise<LeaseRecord | undefined> => {
    let ended: LeaseRecord | undefined
    const done = await commit(`end of the lease of ${ip} to ${mac}`, () => {
      const cur = byMac(mac)
      if (cur === undefined || cur.ip !== ip) return undefined
      const record = endedLease(cur, at)
      ended = record
      const claim = claims.get(ip)
      const ops: StoreOp[] = [{ op: 'put', kind: LEASE_KIND, id: mac, value: record, ifRevision: revOf(LEASE_KIND, mac) }]
      if (claim?.value.mac === mac) ops.push({ op: 'delete', kind: CLAIM_KIND, id: ip, ifRevision: claim.rev })
      return ops
    })
    if (!done) return undefined
    pending.delete(mac) // the end is written, so a renewal queued before it is void
    return ended
  }

  /** Writes queued renewals, restarts a lost watch, probes an unreachable store. One tick at a time. */
  const tick = async (): Promise<void> => {
    if (ticking || closed) return
    ticking = true
    try {
      if (watches.length === 0) await startWatch()
      for (const [mac, r] of [...pending]) {
        if (pending.get(mac) !== r) continue
        try {
          await grant(r)
          log.info({ mac, ip: r.ip }, `renewal of ${r.ip} for ${mac}, ACKed while the store was unreachable, written`)
        } catch (err) {
          if (!(err instanceof LeaseTakenError)) throw err
          pending.delete(mac)
          log.error({ mac, ip: r.ip, holder: err.holder }, `the renewal of ${r.ip} for ${mac} ACKed while the store was unreachable is lost: ${err.message} now (its lease expired at another appliance meanwhile)`)
        }
      }
      if (!up) {
        if (health === undefined) await store.revision()
        else if (!health.up) throw new Error('the shared store does not answer')
        setUp()
      }
    } catch (err) {
      setDown(err)
    } finally {
      ticking = false
    }
  }

  await startWatch()
  const timer = setInterval(() => void tick(), opts.retryMs ?? 2000)
  timer.unref()
  const unfollow = health?.onUpChange((isUp) => (isUp ? void tick() : setDown(new Error('the shared store does not answer'))))
  if (health?.up === false) setDown(new Error('the shared store does not answer'))

  return {
    backend: 'store',
    location: store.location,
    problems,
    get up() {
      return up
    },
    byMac,
    byAddress(ip) {
      const mac = claims.get(ip)?.value.mac ?? lastHolder.get(ip)
      const r = mac === undefined ? undefined : byMac(mac)
      return r?.ip === ip ? r : undefined
    },
    all: () => [...new Set([...leases.keys(), ...pending.keys()])].map((mac) => byMac(mac)!),
    grant,
    async renew(r) {
      const t = now()
      // Known down: do not wait for the store's timeout per packet; the retry tick finds out when it is back.
      if (up) {
        try {
          await grant(r)
          return { queued: false }
        } catch (err) {
          if (!(err instanceof LeaseUnavailableError) || liveHolder(r.ip, t) !== r.mac) throw err
        }
      } else if (liveHolder(r.ip, t) !== r.mac) {
        throw new LeaseUnavailableError(store.location, 'the store is unreachable and this lease is not live here')
      }
      pending.set(r.mac, r)
      lastHolder.set(r.ip, r.mac)
      return { queued: true }
    },
    release: end,
    decline: end,
    async expire(t) {
      let freed = 0
      for (const [ip, claim] of [...claims]) {
        if (liveHolder(ip, t) !== undefined) continue
        try {
          // Not durable: a free lost in a power cut leaves an expired claim, which a grant takes over anyway.
          await write([{ op: 'delete', kind: CLAIM_KIND, id: ip, ifRevision: claim.rev }], {})
          freed++
        } catch (err) {
          if (!(err instanceof StoreConflictError)) return freed
        }
      }
      return freed
    },
    onChange(listener) {
      listeners.add(listener)
      return () => listeners.delete(listener)
    },
    async close() {
      closed = true
      clearInterval(timer)
      unfollow?.()
      for (const w of watches) w.close()
      watches = []
      while (ticking) await new Promise((r) => setTimeout(r, 5))
    },
  }
}
