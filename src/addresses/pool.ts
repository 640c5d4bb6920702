/**
 * The authoritative server's address pool: which address a client gets. Pure bookkeeping over the range, the
 * reservations, the durable leases (lease-log.ts), pending offers and addresses marked bad (DECLINEd, or answered on
 * ARP by a squatter); no sockets, no clock of its own.
 *
 * Choice order for a client: its reservation (by MAC, then by option 97 UUID), the address it last held (so a
 * restart, or a reboot after the lease expired, gives a machine the same address while nobody else took it), the
 * address it asks for (option 50) when free, then the next never-leased address, then the longest-expired one.
 */
import type { LeaseRecord } from './lease-log.js'
import { intToIp, ipToInt } from '../host/ipv4.js'

/** A fixed address for one client, by MAC or by option 97 UUID. */
export interface Reservation {
  mac?: string
  uuid?: string
  address: string
  hostname?: string
}

/** Pool settings. */
export interface PoolOptions {
  start: string
  end: string
  /** Addresses in the range never handed out (our own, the router). */
  exclude?: readonly string[]
  reservations?: readonly Reservation[]
  /** Leases recovered from the log. */
  leases?: Iterable<LeaseRecord>
  /** How long an offered address is kept for the client (ms). */
  offerHoldMs?: number
  now?: () => number
}

/** The client asking. */
export interface PoolClient {
  mac: string
  uuid?: string
  requested?: string
}

/** An address chosen for a client. */
export interface PoolChoice {
  ip: string
  /** The client's reservation. */
  reservation?: Reservation
  /** The client already held it (no need to probe: it may be using it). */
  known: boolean
}

/** The pool. */
export interface AddressPool {
  choose(client: PoolClient): PoolChoice | undefined
  /** Keep `ip` for `mac` while its offer is out. */
  hold(ip: string, mac: string): void
  /** Forget a client's pending offer (it chose another server). */
  unhold(mac: string): void
  /** Never hand out `ip` before `until` (ms). */
  markBad(ip: string, until: number): void
  /** May `client` have `ip` (its REQUEST)? */
  canLease(client: PoolClient, ip: string): boolean
  /** Record a durable lease (after the log append). */
  commit(record: LeaseRecord): void
  /**
   * Reserve `record.ip` for `record.mac` now, before the log append's fsync, so a second REQUEST for the same address
   * arriving while the first is being written sees it taken (the check, `canLease`, and this call run in one tick).
   * Returns the undo for a failed append: it restores the client's previous state unless a later change replaced it.
   */
  reserve(record: LeaseRecord): () => void
  /** The address offered to `mac` and still held for it, if any. */
  offerOf(mac: string): string | undefined
  /** The client's current record, expired or not. */
  leaseOf(mac: string): LeaseRecord | undefined
  /** Live leases. */
  active(): LeaseRecord[]
  reservationFor(client: PoolClient): Reservation | undefined
  /** True when `ip` is in the range or reserved. */
  serves(ip: string): boolean
}

/** Builds a pool. */
export function createAddressPool(opts: PoolOptions): AddressPool {
  const now = opts.now ?? Date.now
  const start = ipToInt(opts.start) as number
  const end = ipToInt(opts.end) as number
  const holdMs = opts.offerHoldMs ?? 60_000
  const excluded = new Set(opts.exclude ?? [])
  const byMac = new Map<string, LeaseRecord>()
  const byIp = new Map<string, LeaseRecord>()
  const holds = new Map<string, { mac: string; until: number }>()
  const holdOf = new Map<string, string>() // mac -> ip
  const bad = new Map<string, number>()
  const resByMac = new Map<string, Reservation>()
  const resByUuid = new Map<string, Reservation>()
  const reservedIps = new Map<string, Reservation>()
  for (const r of opts.reservations ?? []) {
    if (r.mac !== undefined) resByMac.set(r.mac, r)
    if (r.uuid !== undefined) resByUuid.set(r.uuid.toLowerCase(), r)
    reservedIps.set(r.address, r)
  }
  let cursor = start

  const commit = (r: LeaseRecord): void => {
    const old = byMac.get(r.mac)
    if (old !== undefined && byIp.get(old.ip)?.mac === r.mac) byIp.delete(old.ip)
    byMac.set(r.mac, r)
    byIp.set(r.ip, r)
    if (holdOf.get(r.mac) === r.ip) {
      holds.delete(r.ip)
      holdOf.delete(r.mac)
    }
  }
  for (const r of opts.leases ?? []) commit(r)

  const reservationFor = (c: PoolClient): Reservation | undefined =>
    resByMac.get(c.mac) ?? (c.uuid === undefined ? undefined : resByUuid.get(c.uuid.toLowerCase()))

  /** Free for `mac` at `t`: `fresh` also refuses addresses another MAC ever held (first pass of the scan). */
  const freeFor = (ip: string, c: PoolClient, t: number, fresh = false): boolean => {
    if (excluded.has(ip)) return false
    if ((bad.get(ip) ?? 0) > t) return false
    const h = holds.get(ip)
    if (h !== undefined && h.mac !== c.mac && h.until > t) return false
    const res = reservedIps.get(ip)
    if (res !== undefined && res !== reservationFor(c)) return false
    const l = byIp.get(ip)
    if (l !== undefined && l.mac !== c.mac && (fresh || l.expires > t)) return false
    return true
  }
  const inRange = (ip: string): boolean => {
    const n = ipToInt(ip)
    return n !== undefined && n >= start && n <= end
  }

  const scan = (c: PoolClient, t: number, fresh: boolean): string | undefined => {
    const size = end - start + 1
    for (let i = 0; i < size; i++) {
      const n = start + ((cursor - start + i) % size)
      const ip = intToIp(n)
      if (freeFor(ip, c, t, fresh)) {
        cursor = n + 1 > end ? start : n + 1
        return ip
      }
    }
    return undefined
  }

  return {
    choose(c) {
      const t = now()
      const res = reservationFor(c)
      if (res !== undefined && freeFor(res.address, c, t)) return { ip: res.address, reservation: res, known: byMac.get(c.mac)?.ip === res.address }
      const held = holdOf.get(c.mac)
      if (held !== undefined && inRange(held) && freeFor(held, c, t)) return { ip: held, known: byMac.get(c.mac)?.ip === held }
      const mine = byMac.get(c.mac)
      if (mine !== undefined && inRange(mine.ip) && freeFor(mine.ip, c, t)) return { ip: mine.ip, known: true }
      if (c.requested !== undefined && inRange(c.requested) && freeFor(c.requested, c, t, true)) return { ip: c.requested, known: false }
      const ip = scan(c, t, true) ?? scan(c, t, false)
      return ip === undefined ? undefined : { ip, known: false }
    },
    hold(ip, mac) {
      const prev = holdOf.get(mac)
      if (prev !== undefined && prev !== ip) holds.delete(prev)
      holds.set(ip, { mac, until: now() + holdMs })
      holdOf.set(mac, ip)
    },
    unhold(mac) {
      const ip = holdOf.get(mac)
      if (ip !== undefined) holds.delete(ip)
      holdOf.delete(mac)
    },
    markBad(ip, until) {
      bad.set(ip, until)
      const h = holds.get(ip)
      if (h !== undefined) {
        holds.delete(ip)
        holdOf.delete(h.mac)
      }
    },
    canLease(c, ip) {
      const t = now()
      const res = reservationFor(c)
      if (res !== undefined) return res.address === ip && freeFor(ip, c, t)
      return inRange(ip) && freeFor(ip, c, t)
    },
    commit,
    reserve(r) {
      const before = byMac.get(r.mac)
      const held = holdOf.get(r.mac)
      const hold = held === undefined ? undefined : holds.get(held)
      commit(r)
      return () => {
        if (byMac.get(r.mac) !== r) return
        byMac.delete(r.mac)
        if (byIp.get(r.ip) === r) byIp.delete(r.ip)
        if (before !== undefined) {
          byMac.set(r.mac, before)
          const other = byIp.get(before.ip)
          if (other === undefined || other.mac === r.mac) byIp.set(before.ip, before)
        }
        if (held !== undefined && hold !== undefined && !holds.has(held)) {
          holds.set(held, hold)
          holdOf.set(r.mac, held)
        }
      }
    },
    offerOf(mac) {
      const ip = holdOf.get(mac)
      const h = ip === undefined ? undefined : holds.get(ip)
      return h !== undefined && h.mac === mac && h.until > now() ? ip : undefined
    },
    leaseOf: (mac) => byMac.get(mac),
    active() {
      const t = now()
      return [...byMac.values()].filter((r) => r.expires > t)
    },
    reservationFor,
    serves: (ip) => inRange(ip) || reservedIps.has(ip),
  }
}
