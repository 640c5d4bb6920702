/**
 * The authoritative DHCP service (config `dhcp.mode: authoritative`, for a dedicated PXE VLAN): the DHCP server
 * (src/dhcp/server.ts) wired to the address pool, the lease book and the ARP probe, with PXE boot answers from
 * the proxy policy. Port 4011 keeps answering exactly as in proxy mode.
 *
 * The lease book (addresses/lease-book.ts) is the lease log in data_dir on a single appliance, or the shared Store
 * when several appliances serve one VLAN: then an address is the client's only once the store committed its claim,
 * leases granted by the other appliances reach the pool through the store's watch, and while the store is
 * unreachable no new address is offered or ACKed (renewals of live leases still are; the book writes them later).
 *
 * Per message (RFC 2131 section 4.3):
 * - DISCOVER: choose an address (pool.ts), hold it, and unless the client already held it, probe it (RFC 5227
 *   style: does anything answer ARP for it?); an answered address is marked bad for `decline_hold` and the next one
 *   is tried. OFFER with lease options and, for PXE clients, the boot fields.
 * - REQUEST: for another server (option 54 not ours): forget the offer. Else, if the pool agrees, commit the lease
 *   to the book and wait for it (the log's fsync, the store's durable commit) BEFORE sending the ACK (no acknowledged
 *   lease is ever lost); otherwise NAK. The address is reserved in the pool in the same tick as the check, before the
 *   commit, so a second REQUEST for it arriving meanwhile is NAKed, not ACKed too. A failed commit (ENOSPC, store
 *   unreachable) undoes the reservation and sends nothing; an address another appliance claimed first gets a NAK.
 * - DECLINE: the client found the address in use: bad for `decline_hold`, the client's lease ends. Accepted only with
 *   our server id (option 54) from the client that holds or was offered the address (RFC 2131 4.3.3): DHCP has no
 *   authentication, and without this check a few spoofed DECLINEs block the whole pool and NAK the holders' renewals.
 * - RELEASE: the lease ends now (the address stays the client's first choice while nobody else takes it).
 */
import { join } from 'node:path'
import {
  DhcpMessageType,
  DhcpOptionCode,
  clientUuid,
  ipv4Option,
  macAddress,
  messageType,
  startDhcpServer,
  textOption,
  type DhcpPacket,
  type DhcpRequest,
} from '../dhcp/index.js'
import { silentLogger } from '../host/log.js'
import type { ProbeResult } from '../addresses/arp-probe.js'
import type { LeaseRecord } from '../addresses/lease-log.js'
import { LeaseTakenError, type LeaseBook, type LeaseBookProblem } from '../addresses/lease-book.js'
import { openLogLeaseBook } from '../addresses/log-lease-book.js'
import { openStoreLeaseBook } from '../addresses/store-lease-book.js'
import type { Store } from '../store/index.js'
import { createAddressPool, type AddressPool, type Reservation } from '../addresses/pool.js'
import { leaseReply, nakReply, type LeaseParameters } from './authoritative.js'
import { decidePxeBoot, decideProxyReply, type ProxyContext } from './proxy-policy.js'
import { dhcpServerOptions, type ProxyDhcpOptions } from './dhcp-service.js'

/** The lease log's file name inside data_dir. */
export const LEASE_LOG_FILE = 'leases.log'

/**
 * Where leases are kept: `log`, the lease log in data_dir (a single appliance: the fastest durable write); `store`,
 * the Store the daemon opened, when it is shared by several appliances (etcd).
 */
export type LeaseBookChoice = { readonly book: 'log' } | { readonly book: 'store'; readonly store: Store }

/**
 * What the daemon passes in: everything the proxy service takes (interface, address, pinning, boot URLs, machine
 * lookup, events, test hooks) plus the pool, the lease book and the ARP probe.
 */
export interface AuthoritativeDhcpOptions extends ProxyDhcpOptions {
  /** The lease log's folder (the `log` book). */
  dataDir: string
  /** Which lease book; default the lease log. */
  leaseBook?: LeaseBookChoice
  /** How often the book frees the addresses of expired leases (ms; the store's claims). Default 60 s. */
  expireEveryMs?: number
  /** How often, at most, the line saying why new clients get no address while the store is down is logged (ms). Default 60 s. */
  outageLogEveryMs?: number
  range: { start: string; end: string }
  reservations: readonly Reservation[]
  leaseSeconds: number
  netmask: string
  router?: string
  dns: readonly string[]
  /** Option 7 (log server) in every OFFER/ACK: pxebox's syslog address, when it receives syslog on port 514. */
  logServer?: string
  /** How long a DECLINEd or ARP-answered address is not offered (seconds). */
  declineHoldSeconds: number
  /** The ARP probe; undefined: offer without probing. */
  probe?: (ip: string) => Promise<ProbeResult>
  /** Every reply sent on 67 (the address tracker records our own leases). */
  onReply?: (reply: DhcpPacket) => void
  now?: () => number
}

/** Requests dropped, by reason. */
export interface AuthoritativeDrops {
  /** DECLINEs without our server id, or for an address the sender neither holds nor was offered. */
  decline: number
  /** REQUESTs not ACKed because the lease could not be written (full disk, I/O error, store unreachable). */
  leaseWrite: number
  /** DISCOVERs not answered because the lease store is unreachable (no new address without a committed write). */
  storeDown: number
  /** Requests whose giaddr no relay can have (src/dhcp/server.ts). */
  giaddr: number
}

/** A running authoritative server. */
export interface AuthoritativeDhcpService {
  /** Counted drops (metrics, tests). */
  readonly drops: Readonly<AuthoritativeDrops>
  readonly pinned: boolean
  readonly ports: { dhcp: number; pxe: number }
  /** Live leases. */
  leases(): LeaseRecord[]
  /** Problems the lease book had at start (the log's torn tail and corrupt lines; store documents that are no lease). */
  readonly recovered: { file: string; problems: readonly LeaseBookProblem[] }
  close(): Promise<void>
}

const PROBE_TRIES = 8

/** Opens the lease book the options name. */
export function openLeaseBook(opts: Pick<AuthoritativeDhcpOptions, 'dataDir' | 'leaseBook' | 'logger' | 'now'>): Promise<LeaseBook> {
  const logger = opts.logger ?? silentLogger
  const choice = opts.leaseBook ?? { book: 'log' }
  if (choice.book === 'store') return openStoreLeaseBook({ store: choice.store, logger, ...(opts.now === undefined ? {} : { now: opts.now }) })
  return openLogLeaseBook(join(opts.dataDir, LEASE_LOG_FILE), { logger })
}

/** Opens the lease book, builds the pool and starts serving 67 and 4011. */
export async function startAuthoritativeDhcp(opts: AuthoritativeDhcpOptions): Promise<AuthoritativeDhcpService> {
  const logger = (opts.logger ?? silentLogger).child({ proto: 'dhcp', mode: 'authoritative' })
  const now = opts.now ?? Date.now
  const book: LeaseBook = await openLeaseBook(opts)
  const pool: AddressPool = createAddressPool({
    start: opts.range.start,
    end: opts.range.end,
    exclude: [opts.address, ...(opts.router === undefined ? [] : [opts.router])],
    reservations: opts.reservations,
    leases: book.all(),
    now,
  })
  // Leases granted, renewed or ended at another appliance: the pool never offers an address claimed elsewhere.
  const unsubscribe = book.onChange((r) => pool.commit(r))
  const expiry = setInterval(() => {
    book.expire(now()).catch((err: unknown) => logger.debug({ err }, 'freeing expired leases failed; retried next round'))
  }, opts.expireEveryMs ?? 60_000)
  expiry.unref()
  const params: LeaseParameters = {
    serverAddress: opts.address,
    leaseSeconds: opts.leaseSeconds,
    netmask: opts.netmask,
    ...(opts.router === undefined ? {} : { router: opts.router }),
    dns: opts.dns,
    ...(opts.logServer === undefined ? {} : { logServer: opts.logServer }),
  }
  const ctx: ProxyContext = {
    serverAddress: opts.address,
    httpBaseUrl: opts.httpBaseUrl,
    ...(opts.firmwareBaseUrl === undefined ? {} : { firmwareBaseUrl: opts.firmwareBaseUrl }),
    lookup: opts.lookup,
    chainloadedRecently: opts.chainloadedRecently,
  }

  const drops: Omit<AuthoritativeDrops, 'giaddr'> = { decline: 0, leaseWrite: 0, storeDown: 0 }
  /** Failed commits since the last good one: the first is an error line, the rest debug, so a full disk logs once. */
  let failedStreak = 0
  /** Clients left without a new address while the store is down: one line per interval, not one per packet. */
  const outage = { lastLogged: -Infinity, unanswered: 0 }
  const outageLogEveryMs = opts.outageLogEveryMs ?? 60_000
  const leftUnanswered = (mac: string): void => {
    outage.unanswered++
    const t = now()
    if (t - outage.lastLogged < outageLogEveryMs) return
    logger.warn(
      { mac, unanswered: outage.unanswered, store: book.location },
      `lease store ${book.location} unreachable: no new address is handed out without a committed write; ${outage.unanswered} DHCP message(s) left unanswered since the last such line (renewals of live leases continue)`,
    )
    outage.lastLogged = t
    outage.unanswered = 0
  }
  /** True when `mac` holds a live lease here (its renewal needs no new address). */
  const holdsLive = (mac: string): boolean => {
    const r = book.byMac(mac)
    return r !== undefined && r.expires > now()
  }

  const record = (mac: string, ip: string, step: string, outcome: string, detail: Record<string, unknown>): void =>
    opts.events.record({ time: new Date(now()).toISOString(), kind: 'dhcp', mac, ip, step, outcome, detail })

  const offer = async (req: DhcpPacket, mac: string, uuid: string | undefined): Promise<DhcpPacket | undefined> => {
    const client = { mac, ...(uuid === undefined ? {} : { uuid }), ...(opt50(req) === undefined ? {} : { requested: opt50(req) as string }) }
    if (!book.up && !holdsLive(mac)) {
      drops.storeDown++
      leftUnanswered(mac)
      return undefined
    }
    for (let i = 0; i < PROBE_TRIES; i++) {
      const choice = pool.choose(client)
      if (choice === undefined) {
        logger.warn({ mac, range: opts.range }, 'address pool exhausted; DISCOVER not answered')
        return undefined
      }
      pool.hold(choice.ip, mac)
      if (!choice.known && opts.probe !== undefined) {
        const result = await opts.probe(choice.ip)
        if (result === 'answered') {
          pool.markBad(choice.ip, now() + opts.declineHoldSeconds * 1000)
          logger.warn({ mac, ip: choice.ip }, `ARP probe: something already answers for ${choice.ip}; not offered for ${opts.declineHoldSeconds} s`)
          continue
        }
        if (result === 'error') logger.debug({ ip: choice.ip }, 'ARP probe could not run; offering without it')
      }
      const boot = decidePxeBoot(req, 'dhcp', ctx)
      const pxe = boot.action === 'boot' ? boot : undefined
      const reply = leaseReply(req, DhcpMessageType.OFFER, choice.ip, params, pxe, choice.reservation?.hostname)
      logger.info({ mac, ip: choice.ip, boot_file: pxe?.bootFile }, 'DHCP offer')
      record(mac, choice.ip, 'offer', 'ok', { mode: 'authoritative', ...(pxe === undefined ? {} : { boot_file: pxe.bootFile, via: pxe.via, client_class: pxe.facts.clientClass }) })
      return reply
    }
    logger.warn({ mac }, `no free address after ${PROBE_TRIES} ARP-answered candidates; DISCOVER not answered`)
    return undefined
  }

  const request = async (req: DhcpPacket, mac: string, uuid: string | undefined): Promise<DhcpPacket | undefined> => {
    const server = ipv4Option(req, DhcpOptionCode.SERVER_ID)
    if (server !== undefined && server !== opts.address) {
      pool.unhold(mac)
      return undefined
    }
    const ip = opt50(req) ?? (req.ciaddr !== '0.0.0.0' ? req.ciaddr : undefined)
    if (ip === undefined) return undefined
    const client = { mac, ...(uuid === undefined ? {} : { uuid }) }
    if (!pool.canLease(client, ip)) {
      // INIT-REBOOT for an address we do not serve and never leased: stay silent unless it is wrong for this network.
      if (server === undefined && !pool.serves(ip) && pool.leaseOf(mac) === undefined) return undefined
      logger.info({ mac, ip }, 'DHCP NAK: address not available to this client')
      record(mac, ip, 'nak', `${ip} not available`, { mode: 'authoritative' })
      return nakReply(req, opts.address, `${ip} is not available to ${mac}`)
    }
    const t = now()
    const hostname = pool.reservationFor(client)?.hostname ?? textOption(req, DhcpOptionCode.HOST_NAME)
    const lease: LeaseRecord = { mac, ip, expires: t + opts.leaseSeconds * 1000, at: t, ...(uuid === undefined ? {} : { uuid }), ...(hostname === undefined ? {} : { hostname }) }
    const held = book.byMac(mac)
    const renewal = held !== undefined && held.ip === ip && held.expires > t
    const undo = pool.reserve(lease) // same tick as canLease: a concurrent REQUEST for ip now sees it taken
    let queued = false
    try {
      // Committed (every byte fsynced, or the store's durable commit) before the ACK leaves.
      if (renewal) queued = (await book.renew(lease)).queued
      else await book.grant(lease)
    } catch (err) {
      undo()
      if (err instanceof LeaseTakenError) {
        logger.info({ mac, ip, holder: err.holder }, 'DHCP NAK: address claimed at another appliance first')
        record(mac, ip, 'nak', `${ip} taken`, { mode: 'authoritative' })
        return nakReply(req, opts.address, `${ip} is not available to ${mac}`)
      }
      drops.leaseWrite++
      if (!book.up) {
        leftUnanswered(mac)
        return undefined
      }
      failedStreak++
      const msg = `cannot write the lease of ${ip} to ${mac} to ${book.location} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); no ACK sent`
      if (failedStreak === 1) logger.error({ err, mac, ip, file: book.location }, `${msg}; further failures are logged at debug until a write succeeds`)
      else logger.debug({ err, mac, ip, failed: failedStreak }, msg)
      return undefined
    }
    if (failedStreak > 0) {
      logger.info({ failed: failedStreak, file: book.location }, `lease ${book.backend} writable again after ${failedStreak} failed commits`)
      failedStreak = 0
    }
    if (queued) logger.info({ mac, ip }, 'renewal ACKed while the lease store is unreachable; written when it answers again')
    const boot = decidePxeBoot(req, 'dhcp', ctx)
    const pxe = boot.action === 'boot' ? boot : undefined
    logger.info({ mac, ip, boot_file: pxe?.bootFile }, 'DHCP ack')
    record(mac, ip, 'ack', 'ok', { mode: 'authoritative', lease_seconds: opts.leaseSeconds, ...(pxe === undefined ? {} : { boot_file: pxe.bootFile, via: pxe.via }) })
    return leaseReply(req, DhcpMessageType.ACK, ip, params, pxe, pool.reservationFor(client)?.hostname)
  }

  const endLease = async (mac: string, ip: string, why: 'released' | 'declined'): Promise<void> => {
    const cur = pool.leaseOf(mac)
    if (cur === undefined || cur.ip !== ip) return
    let ended: LeaseRecord | undefined
    try {
      ended = await (why === 'released' ? book.release(mac, ip, now()) : book.decline(mac, ip, now()))
    } catch (err) {
      // The lease stays as it is on disk; it ends by itself when it expires.
      logger.warn({ err, mac, ip }, `cannot record the end of the lease of ${ip} (${why}); it ends when it expires`)
      return
    }
    if (ended === undefined) return
    pool.commit(ended)
    logger.info({ mac, ip }, `lease ended: ${why}`)
  }

  const handle = async (req: DhcpRequest): Promise<DhcpPacket | undefined> => {
    if (req.port === 'pxe') {
      const d = decideProxyReply(req.packet, 'pxe', ctx)
      if (d.action === 'ignore') return undefined
      logger.info({ mac: d.facts.mac, boot_file: d.bootFile }, 'proxyDHCP ack (4011)')
      return d.reply
    }
    const p = req.packet
    const mac = macAddress(p)
    if (p.op !== 1 || mac === undefined) return undefined
    const uuid = clientUuid(p)?.uuid
    let reply: DhcpPacket | undefined
    switch (messageType(p)) {
      case DhcpMessageType.DISCOVER:
        reply = await offer(p, mac, uuid)
        break
      case DhcpMessageType.REQUEST:
        reply = await request(p, mac, uuid)
        break
      case DhcpMessageType.DECLINE: {
        const ip = opt50(p)
        const server = ipv4Option(p, DhcpOptionCode.SERVER_ID)
        const lease = pool.leaseOf(mac)
        const holds = lease !== undefined && lease.ip === ip && lease.expires > now()
        if (ip === undefined || server !== opts.address || (!holds && pool.offerOf(mac) !== ip)) {
          drops.decline++
          logger.debug({ mac, ip, server }, 'DHCP DECLINE dropped: not our server id, or not an address this client holds or was offered')
          break
        }
        pool.markBad(ip, now() + opts.declineHoldSeconds * 1000)
        logger.warn({ mac, ip }, `DHCP DECLINE: ${mac} found ${ip} in use; not offered for ${opts.declineHoldSeconds} s`)
        record(mac, ip, 'decline', 'address in use', { mode: 'authoritative' })
        await endLease(mac, ip, 'declined')
        break
      }
      case DhcpMessageType.RELEASE:
        if (p.ciaddr !== '0.0.0.0') await endLease(mac, p.ciaddr, 'released')
        break
      default:
        break
    }
    if (reply !== undefined) opts.onReply?.(reply)
    return reply
  }

  let server
  try {
    server = await startDhcpServer(
      dhcpServerOptions(opts),
      handle,
      opts.logger ?? silentLogger,
    )
  } catch (err) {
    clearInterval(expiry)
    unsubscribe()
    await book.close()
    throw err
  }
  return {
    pinned: server.pinned,
    ports: server.ports,
    get drops() {
      return { ...drops, giaddr: server.drops.giaddr }
    },
    leases: () => pool.active(),
    recovered: { file: book.location, problems: book.problems },
    async close() {
      await server.close()
      clearInterval(expiry)
      unsubscribe()
      await book.close()
    },
  }
}

function opt50(p: DhcpPacket): string | undefined {
  return ipv4Option(p, DhcpOptionCode.REQUESTED_IP)
}
