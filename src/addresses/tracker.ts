/**
 * The address tracker: fed what pxebox sees on the PXE VLAN (client DHCP broadcasts on 67, the site server's
 * broadcast OFFER/ACK on 68, ARP), it keeps a table of MAC -> IP bindings and derives findings from it
 * (pxe-protocol.md "Watching addresses"). It holds no sockets and reads no clock of its own: the tracking service
 * (service.ts) feeds it and calls `evaluate()` on a timer, tests drive it with a fake clock.
 *
 * Findings are recomputed from the evidence on every evaluation, so each one clears by itself when its condition
 * ends (the claims age out of the conflict window, the stray MAC shows up again, the rogue server falls silent).
 *
 * Every table is bounded, because every entry comes from an unauthenticated packet (200k DISCOVERs from new MACs, or
 * 50k spoofed ACKs with random server ids, must not grow memory, observed.json and the log without limit):
 * - MACs seen, their labels and the UUID table: MACs without a binding age out after the conflict window; beyond
 *   `maxMacs` the least recently seen go first. A UUID keeps at most 16 MACs (a chassis has a few NICs).
 * - bindings and the per-address claims: at most `maxBindings` each, least recently seen first.
 * - DHCP servers: at most `maxServers`, silent ones age out; servers beyond the cap are not listed one by one but
 *   counted in one summary finding.
 * - findings: at most `maxFindings` per kind; the rest are summarized in one `<kind>:more` finding. Findings already
 *   listed are kept first, so under a flood the listed set stays stable and the warn log (one line per new finding)
 *   stays bounded.
 * Evictions are counted (`evictions`).
 */
import {
  DhcpMessageType,
  DhcpOptionCode,
  clientUuid,
  ipv4Option,
  macAddress,
  messageType,
  textOption,
  vendorClass,
  type DhcpPacket,
} from '../dhcp/index.js'
import { silentLogger, type Logger } from '../host/log.js'
import { createLogGate } from '../host/log-limit.js'
import type { ArpObservation, Binding, BindingState, Evidence, Finding, FindingKind, Machine } from './model.js'
import { FINDING_KINDS } from './model.js'

/** The settings a running tracker can take anew (config `tracking`, applied on SIGHUP through `configure`). */
export interface TrackerSettings {
  /** A leased MAC silent this long (no DHCP, no ARP) is a stray (config tracking.stray_after, in ms here). */
  strayAfterMs: number
  /** Claims, PXE boots and server sightings older than this no longer count (ms). */
  conflictWindowMs?: number
  /** DHCP servers allowed to hand out addresses; empty: any one server, a second is reported. */
  allowedServers: readonly string[]
  /** Bound on bindings (and on addresses with claims) kept; the least recently seen go first. */
  maxBindings?: number
  /** Bound on MACs (and UUIDs) remembered; the least recently seen go first. */
  maxMacs?: number
  /** Bound on DHCP servers listed; more are counted in one summary finding. */
  maxServers?: number
  /** Bound on findings listed per kind; more are counted in one `<kind>:more` finding. */
  maxFindings?: number
}

/** Tracker options: its settings plus what is fixed for its life. */
export interface TrackerOptions extends TrackerSettings {
  /** Our own server identifiers (authoritative mode): never rogue. */
  ownServers?: readonly string[]
  /**
   * Secure Boot in proxy mode (issue 19): pxebox's TFTP address, and whether a MAC's group boots `loader: shim-grub`.
   * GRUB takes its TFTP server from the site ACK's siaddr, so such a machine's site ACK naming another next-server
   * is a `next-server` finding: the machine cannot boot.
   */
  shimGrub?: { readonly server: string; readonly isShimGrub: (mac: string) => boolean }
  /**
   * Ask a silent address whether anything answers ARP for it (answers reach the tracker through the ARP capture).
   * Without it a stray is declared on silence alone.
   */
  verify?: (ip: string) => void
  /** How long after a verify probe silence counts as confirmed (ms). */
  verifyGraceMs?: number
  now?: () => number
  logger?: Logger
  /**
   * New-finding warn lines let through per window; the rest are counted into one summary line per window (defaults
   * 10 per 60 s). Spoofed replies with fresh server ids or addresses open new findings as fast as old ones age out.
   */
  findingLog?: { maxPerWindow?: number; windowMs?: number }
}

/** Entries dropped to keep the tables bounded, by table. */
export interface TrackerEvictions {
  bindings: number
  claims: number
  macs: number
  uuids: number
  /** Server sightings not recorded because the server table was full. */
  servers: number
}

/** Serializable state, for persistence across restarts. */
export interface TrackerSnapshot {
  version: 1
  bindings: StoredBinding[]
  macSeen: [string, number][]
  uuids: [string, [string, number][]][]
  servers: [string, ServerSighting][]
  claims: [string, Claim[]][]
}

/** The tables of a TrackerSnapshot as lazily rendered iterables, in the snapshot's key order. */
export type SnapshotFields = { [K in Exclude<keyof TrackerSnapshot, 'version'>]: Iterable<TrackerSnapshot[K][number]> }

interface StoredBinding {
  mac: string
  ip: string
  server?: string
  first: number
  last: number
  hostname?: string
  dhcp: boolean
  arp: boolean
  state: BindingState
  expires?: number
  /** When DHCP last confirmed it (REQUEST/ACK): silence is measured from here or the last frame, whichever is later. */
  leasedAt?: number
  probedAt?: number
}

interface Claim {
  mac: string
  time: number
  kind: 'request' | 'ack' | 'arp' | 'decline'
  what: string
}

interface ServerSighting {
  first: number
  last: number
  evidence: Evidence[]
}

/** The tracker's interface. */
export interface AddressTracker {
  /** Feed one DHCP packet seen on the VLAN (`via` 67: client broadcast, 68: server reply, 'self': our own reply). */
  observeDhcp(packet: DhcpPacket, via: 67 | 68 | 'self'): void
  /** Feed one ARP frame. */
  observeArp(arp: ArpObservation): void
  /** Recompute findings; logs new ones (warn) and cleared ones (info). Returns the current list. */
  evaluate(): Finding[]
  /** The binding table, most recently seen first. */
  leases(): Binding[]
  /**
   * The MAC of the binding on `ip` seen most recently, from an index: the machine store asks this for every event
   * without a MAC (each TFTP request), and building leases() for it scanned, sorted and formatted the whole table
   * per request, most of pxebox's CPU under a TFTP flood (bench/abuse, issue 13).
   */
  macForIp(ip: string): string | undefined
  /** Addresses with a binding for `mac` in a DHCP state of `states` (any when omitted), most recently seen first. */
  ipsOf(mac: string, states?: readonly BindingState[]): string[]
  /** Machines: MACs grouped by UUID. */
  machines(): Machine[]
  /** Current findings (as of the last evaluate). */
  findings(): Finding[]
  /** Current findings counted by kind (every kind present, 0 when none). */
  counts(): Record<FindingKind, number>
  /** The state to persist, whole (tests; the service saves `snapshotFields()` in slices). */
  snapshot(): TrackerSnapshot
  /**
   * The snapshot's tables, rendered lazily: the keys of each table are copied now (and `dirty` cleared), each entry
   * is put in its stored form only when its iterable reaches it, and an entry gone by then is left out. The service
   * serializes these a slice at a time (host/json-slices.ts): built and stringified in one go, the snapshot of a
   * flooded tracker (50k UUIDs, tens of thousands of bindings) held the event loop 100-250 ms every save, and DHCP
   * offers waited behind it (bench/abuse, issue 13).
   */
  snapshotFields(): SnapshotFields
  /**
   * Take new settings (a reload): the next evaluate() judges silence and the window by them; tables over a lowered
   * bound are trimmed now, least recently seen first, and counted in `evictions` (servers already listed stay until
   * they fall silent for the window).
   */
  configure(settings: TrackerSettings): void
  /** Replace the state with a snapshot (at start, before any observation). */
  restore(s: TrackerSnapshot): void
  /** True when something changed since the last `snapshot()`. */
  readonly dirty: boolean
  /** Entries dropped to keep the tables bounded, since start. */
  readonly evictions: Readonly<TrackerEvictions>
}

const MAX_EVIDENCE = 8
const MAX_MACS_PER_UUID = 16

/** Re-inserts `key` so a Map's iteration order is least recently touched first (the eviction order). */
const touch = <K, V>(m: Map<K, V>, key: K, value: V): void => {
  m.delete(key)
  m.set(key, value)
}

/**
 * Deletes the least recently touched entries once there are more than `max`, down to 7/8 of `max`; returns how many.
 * In batches because a Map's iteration walks the slots its deletions left until it rehashes: evicting one entry per
 * insert would walk them all every time (150 us per packet at a 20k cap under a new-MAC flood).
 */
const trim = <K, V>(m: Map<K, V>, max: number, onEvict?: (key: K) => void): number => {
  if (m.size <= max) return 0
  const low = max - Math.floor(max / 8)
  let n = 0
  for (const key of m.keys()) {
    if (m.size <= low) break
    m.delete(key)
    onEvict?.(key)
    n++
  }
  return n
}
/** The latest PXE boot in a UUID's MAC table (at most MAX_MACS_PER_UUID entries). */
const newestBoot = (macs: ReadonlyMap<string, number>): number => {
  let newest = 0
  for (const at of macs.values()) newest = Math.max(newest, at)
  return newest
}
const iso = (ms: number): string => new Date(ms).toISOString()
const seconds = (ms: number): string => `${Math.round(ms / 1000)} s`

/** Creates an empty tracker. */
export function createAddressTracker(opts: TrackerOptions): AddressTracker {
  const now = opts.now ?? Date.now
  const log = (opts.logger ?? silentLogger).child({ proto: 'leases' })
  const graceMs = opts.verifyGraceMs ?? 3000
  // The settings `configure` may replace; everything below reads these, never `opts`, for them.
  let strayAfterMs = 0
  let windowMs = 0
  let maxBindings = 0
  let maxMacs = 0
  let maxServers = 0
  let maxFindings = 0
  let allowed = new Set<string>()
  const settle = (s: TrackerSettings): void => {
    strayAfterMs = s.strayAfterMs
    windowMs = s.conflictWindowMs ?? Math.max(s.strayAfterMs, 300_000)
    maxBindings = s.maxBindings ?? 50_000
    maxMacs = s.maxMacs ?? 50_000
    maxServers = s.maxServers ?? 64
    maxFindings = s.maxFindings ?? 100
    allowed = new Set(s.allowedServers)
  }
  settle(opts)
  // Every finding stays listed in /v1/findings; only its warn line is gated. Under a spoofed-reply flood the listed
  // set turns over as evidence ages out, and one line per new finding was ~140 warn lines a minute (bench/abuse.sh).
  const findingLines = createLogGate({
    maxPerWindow: opts.findingLog?.maxPerWindow ?? 10,
    windowMs: opts.findingLog?.windowMs ?? 60_000,
    now,
    onSummary: (s) =>
      log.warn(
        { suppressed: s.suppressed, kinds: s.kinds },
        `address findings: ${s.suppressed} more new findings in the last ${s.windowMs / 1000} s were not logged one by one; /v1/findings lists them`,
      ),
  })
  const evictions: TrackerEvictions = { bindings: 0, claims: 0, macs: 0, uuids: 0, servers: 0 }
  /** Sightings of servers the full table could not list: how many, and the latest. */
  let unlisted = { count: 0, last: 0, latest: '' }
  const own = new Set(opts.ownServers ?? [])

  let bindings = new Map<string, StoredBinding>() // key mac|ip
  // The keys of `bindings` by IP and by MAC, kept with it (binding(), trim, restore), so lookups by either are O(1).
  let keysByIp = new Map<string, Set<string>>()
  let keysByMac = new Map<string, Set<string>>()
  let macSeen = new Map<string, number>()
  let macInfo = new Map<string, { uuid?: string; hostname?: string }>()
  let uuids = new Map<string, Map<string, number>>() // uuid -> mac -> last PXE boot
  let servers = new Map<string, ServerSighting>()
  let claims = new Map<string, Claim[]>() // ip -> claims
  // mac -> the last site ACK to a shim-grub machine whose siaddr is not pxebox (bounded like macSeen).
  const nextServerMisses = new Map<string, { time: number; server: string; siaddr: string }>()
  let current = new Map<string, Finding>()
  let dirty = false

  const forgetMac = (mac: string): void => void macInfo.delete(mac)
  const seen = (mac: string, t: number): void => {
    touch(macSeen, mac, Math.max(macSeen.get(mac) ?? 0, t))
    if (macSeen.size > maxMacs) evictions.macs += trim(macSeen, maxMacs, forgetMac)
  }

  const addToSet = (m: Map<string, Set<string>>, k: string, key: string): void => {
    const set = m.get(k)
    if (set === undefined) m.set(k, new Set([key]))
    else set.add(key)
  }
  const removeFromSet = (m: Map<string, Set<string>>, k: string, key: string): void => {
    const set = m.get(k)
    if (set === undefined) return
    set.delete(key)
    if (set.size === 0) m.delete(k)
  }
  const indexBinding = (key: string, b: StoredBinding): void => {
    addToSet(keysByIp, b.ip, key)
    addToSet(keysByMac, b.mac, key)
  }
  const unindexBinding = (key: string): void => {
    const bar = key.lastIndexOf('|')
    removeFromSet(keysByMac, key.slice(0, bar), key)
    removeFromSet(keysByIp, key.slice(bar + 1), key)
  }
  /** The bindings under `keys`, most recently seen first. */
  const newestFirst = (keys: Set<string> | undefined): StoredBinding[] =>
    [...(keys ?? [])].map((k) => bindings.get(k) as StoredBinding).sort((a, b) => b.last - a.last)

  const binding = (mac: string, ip: string, t: number): StoredBinding => {
    const key = `${mac}|${ip}`
    let b = bindings.get(key)
    if (b === undefined) {
      b = { mac, ip, first: t, last: t, dhcp: false, arp: false, state: 'arp' }
      indexBinding(key, b)
    }
    touch(bindings, key, b) // least recently seen first: eviction is O(1), not a scan per new binding
    if (bindings.size > maxBindings) evictions.bindings += trim(bindings, maxBindings, unindexBinding)
    b.last = Math.max(b.last, t)
    dirty = true
    return b
  }

  const claim = (ip: string, c: Claim): void => {
    const list = claims.get(ip) ?? []
    const same = list.findIndex((x) => x.mac === c.mac && x.kind === c.kind)
    if (same >= 0) list.splice(same, 1)
    list.push(c)
    if (list.length > 16) list.shift()
    touch(claims, ip, list)
    if (claims.size > maxBindings) evictions.claims += trim(claims, maxBindings)
  }

  const serverSeen = (server: string, e: Evidence, t: number): void => {
    if (!servers.has(server) && servers.size >= maxServers) {
      evictions.servers++
      unlisted = { count: unlisted.count + 1, last: t, latest: server }
      return
    }
    const s = servers.get(server) ?? { first: t, last: t, evidence: [] }
    s.last = Math.max(s.last, t)
    s.evidence.push(e)
    if (s.evidence.length > MAX_EVIDENCE) s.evidence.shift()
    servers.set(server, s)
    dirty = true
  }

  const observeDhcp = (p: DhcpPacket, via: 67 | 68 | 'self'): void => {
    const t = now()
    const mac = macAddress(p)
    if (mac === undefined) return
    const type = messageType(p)
    if (p.op === 1) {
      seen(mac, t)
      const info = macInfo.get(mac) ?? {}
      const uuid = clientUuid(p)?.uuid
      if (uuid !== undefined) info.uuid = uuid
      const hostname = textOption(p, DhcpOptionCode.HOST_NAME)
      if (hostname !== undefined && hostname !== '') info.hostname = hostname
      macInfo.set(mac, info)
      const vc = vendorClass(p) ?? ''
      if (uuid !== undefined && type === DhcpMessageType.DISCOVER && /^(PXEClient|HTTPClient)/.test(vc)) {
        const macs = uuids.get(uuid) ?? new Map<string, number>()
        touch(macs, mac, t)
        trim(macs, MAX_MACS_PER_UUID)
        touch(uuids, uuid, macs)
        if (uuids.size > maxMacs) evictions.uuids += trim(uuids, maxMacs)
        dirty = true
      }
      const requested = ipv4Option(p, DhcpOptionCode.REQUESTED_IP)
      const server = ipv4Option(p, DhcpOptionCode.SERVER_ID)
      if (type === DhcpMessageType.REQUEST) {
        const ip = requested ?? (p.ciaddr !== '0.0.0.0' ? p.ciaddr : undefined)
        if (ip === undefined) return
        const b = binding(mac, ip, t)
        b.dhcp = true
        if (b.state !== 'acked' || b.leasedAt === undefined || t - b.leasedAt > 1000) b.state = 'requested'
        b.leasedAt = t
        if (server !== undefined) b.server = server
        const what = `REQUEST for ${ip}${server === undefined ? '' : ` (server ${server})`}`
        claim(ip, { mac, time: t, kind: 'request', what })
        if (server !== undefined) serverSeen(server, { time: iso(t), source: 'dhcp', mac, ip, what: `${mac} chose server ${server} in a ${what}` }, t)
      } else if (type === DhcpMessageType.DECLINE && requested !== undefined) {
        const b = binding(mac, requested, t)
        b.dhcp = true
        b.state = 'declined'
        claim(requested, { mac, time: t, kind: 'decline', what: `DECLINE of ${requested}: the client found it in use` })
      } else if (type === DhcpMessageType.RELEASE && p.ciaddr !== '0.0.0.0') {
        const b = bindings.get(`${mac}|${p.ciaddr}`)
        if (b !== undefined) b.state = 'released'
        claims.set(p.ciaddr, (claims.get(p.ciaddr) ?? []).filter((c) => c.mac !== mac))
        dirty = true
      }
      return
    }
    // Server replies: only address-bearing ones (a proxy offer has yiaddr 0.0.0.0 and hands out nothing).
    if (p.op !== 2 || p.yiaddr === '0.0.0.0') return
    const server = ipv4Option(p, DhcpOptionCode.SERVER_ID) ?? p.siaddr
    const kind = type === DhcpMessageType.ACK ? 'ACK' : type === DhcpMessageType.OFFER ? 'OFFER' : undefined
    if (kind === undefined) return
    serverSeen(server, { time: iso(t), source: 'dhcp', mac, ip: p.yiaddr, what: `${kind} of ${p.yiaddr} to ${mac} from server ${server}${via === 68 ? ' (seen on port 68)' : ''}` }, t)
    if (kind !== 'ACK') return
    if (opts.shimGrub !== undefined && via !== 'self' && !own.has(server) && opts.shimGrub.isShimGrub(mac)) {
      if (p.siaddr === opts.shimGrub.server) nextServerMisses.delete(mac)
      else {
        touch(nextServerMisses, mac, { time: t, server, siaddr: p.siaddr })
        trim(nextServerMisses, maxMacs)
      }
    }
    const ip = p.yiaddr
    const lease = getLeaseSeconds(p)
    // A server re-leasing an expired address to a new MAC is normal reuse, not a conflict: drop the old holders.
    const list = (claims.get(ip) ?? []).filter((c) => {
      if (c.mac === mac) return true
      const old = bindings.get(`${c.mac}|${ip}`)
      return !(old?.expires !== undefined && old.expires <= t)
    })
    claims.set(ip, list)
    const b = binding(mac, ip, t)
    b.dhcp = true
    b.state = 'acked'
    b.leasedAt = t
    b.server = server
    if (lease !== undefined) b.expires = t + lease * 1000
    claim(ip, { mac, time: t, kind: 'ack', what: `ACK of ${ip} from server ${server}${lease === undefined ? '' : `, lease ${lease} s`}` })
  }

  const observeArp = (a: ArpObservation): void => {
    seen(a.senderMac, a.time)
    dirty = true
    if (a.senderIp === '0.0.0.0') return // an RFC 5227 probe claims nothing yet
    const b = binding(a.senderMac, a.senderIp, a.time)
    b.arp = true
    const what =
      a.op === 'reply'
        ? `ARP reply ${a.senderIp} is-at ${a.senderMac}`
        : a.targetIp === a.senderIp
          ? `gratuitous ARP: ${a.senderMac} announces ${a.senderIp}`
          : `ARP request from ${a.senderMac} using ${a.senderIp} (who-has ${a.targetIp})`
    claim(a.senderIp, { mac: a.senderMac, time: a.time, kind: 'arp', what })
  }

  const machineOf = (mac: string): string => {
    const uuid = macInfo.get(mac)?.uuid
    return uuid === undefined ? `mac:${mac}` : `uuid:${uuid}`
  }

  const evidenceOf = (ip: string, c: Claim): Evidence => ({
    time: iso(c.time),
    source: c.kind === 'arp' ? 'arp' : 'dhcp',
    mac: c.mac,
    ip,
    what: c.what,
  })

  /**
   * Ages out what no finding can use any more: unbound MACs, old PXE boots and silent servers past the window.
   * macSeen and uuids are kept in touch order (least recently seen first), so each walk stops at the first entry
   * still inside the window: a 5 s evaluation no longer walks 50k MACs and 50k UUIDs of a new-MAC flood (tens of ms
   * of event loop, bench/abuse). Only bound MACs older than the window are stepped over (at most maxBindings).
   */
  const prune = (t: number): void => {
    for (const [mac, at] of macSeen) {
      if (t - at <= windowMs) break
      if (keysByMac.has(mac)) continue
      macSeen.delete(mac)
      macInfo.delete(mac)
    }
    // Labels of MACs neither seen lately nor bound (a binding evicted after its MAC aged out, a restored UUID's MACs)
    // are only scanned for when macInfo outgrows the two tables it annotates, so it stays within their bounds.
    if (macInfo.size > macSeen.size + keysByMac.size) {
      for (const mac of macInfo.keys()) if (!macSeen.has(mac) && !keysByMac.has(mac)) macInfo.delete(mac)
    }
    for (const [uuid, macs] of uuids) {
      if (t - newestBoot(macs) <= windowMs) break
      uuids.delete(uuid)
    }
    for (const [server, s] of servers) if (t - s.last > windowMs) servers.delete(server)
  }

  /** At most `maxFindings` per kind, those already listed first; the rest become one `<kind>:more` summary. */
  const bounded = (all: Map<string, Finding>, t: number): Map<string, Finding> => {
    const out = new Map<string, Finding>()
    for (const kind of FINDING_KINDS) {
      const ofKind = [...all.values()].filter((f) => f.kind === kind)
      if (ofKind.length <= maxFindings) {
        for (const f of ofKind) out.set(f.id, f)
        continue
      }
      const kept = [...ofKind.filter((f) => current.has(f.id)), ...ofKind.filter((f) => !current.has(f.id))].slice(0, maxFindings)
      for (const f of kept) out.set(f.id, f)
      const id = `${kind}:more`
      out.set(id, {
        id,
        kind,
        macs: [],
        since: current.get(id)?.since ?? iso(t),
        explanation:
          `${ofKind.length - kept.length} more ${kind} findings are not listed (at most ${maxFindings} per kind, ` +
          'tracking.max_findings): many at once usually means spoofed traffic on the PXE VLAN.',
        evidence: [],
      })
    }
    return out
  }

  const evaluate = (): Finding[] => {
    const t = now()
    prune(t)
    const next = new Map<string, Finding>()
    const add = (f: Omit<Finding, 'since'>): void => {
      next.set(f.id, { ...f, since: current.get(f.id)?.since ?? iso(t) })
    }

    // Duplicates: one IP claimed by two machines within the window, or declined by a client.
    for (const [ip, list] of claims) {
      const only = list.length === 1 ? list[0] : undefined
      if (only !== undefined && only.kind !== 'decline') {
        // One claim is no duplicate: only its age matters (no arrays per address per evaluation).
        if (t - only.time > windowMs) claims.delete(ip)
        continue
      }
      const live = list.filter((c) => t - c.time <= windowMs)
      if (live.length === 0) {
        claims.delete(ip)
        continue
      }
      if (live.length !== list.length) claims.set(ip, live)
      const machines = new Set(live.filter((c) => c.kind !== 'decline').map((c) => machineOf(c.mac)))
      const declines = live.filter((c) => c.kind === 'decline')
      if (machines.size < 2 && declines.length === 0) continue
      const macs = [...new Set(live.map((c) => c.mac))].sort()
      const explanation =
        machines.size >= 2
          ? `${ip} is claimed by ${macs.length} MACs (${macs.join(', ')}): two machines on one address. ` +
            'Find the one that should not have it (a static address, or a leaked lease) and move it.'
          : `${declines.map((d) => d.mac).join(', ')} declined ${ip} (RFC 2131 DECLINE: another host answered ARP for ` +
            'it); some machine uses that address without a lease.'
      add({ id: `duplicate:${ip}`, kind: 'duplicate', ip, macs, explanation, evidence: live.slice(-MAX_EVIDENCE).map((c) => evidenceOf(ip, c)) })
    }

    // Strays: a live DHCP lease whose MAC never shows up on the wire again, or whose address answers from another MAC.
    for (const b of bindings.values()) {
      if (!b.dhcp || (b.state !== 'acked' && b.state !== 'requested')) continue
      if (b.expires !== undefined && b.expires <= t) continue
      // Leased within stray_after: no stray, whatever macSeen says (spares a lookup per binding per evaluation).
      if (t - (b.leasedAt ?? b.first) < strayAfterMs) continue
      const since = Math.max(b.leasedAt ?? b.first, macSeen.get(b.mac) ?? 0)
      if (t - since < strayAfterMs) continue
      if (opts.verify !== undefined && (b.probedAt === undefined || b.probedAt < since)) {
        b.probedAt = t
        opts.verify(b.ip)
        continue
      }
      if (opts.verify !== undefined && t - (b.probedAt ?? 0) < graceMs) continue
      const others = (claims.get(b.ip) ?? []).filter((c) => c.mac !== b.mac && c.kind === 'arp' && c.time > (b.leasedAt ?? b.first))
      const otherMacs = [...new Set(others.map((c) => c.mac))].sort()
      const probed = b.probedAt === undefined ? '' : `; an ARP probe at ${iso(b.probedAt)} got no answer from it`
      const explanation =
        otherMacs.length > 0
          ? `${b.ip} was leased to ${b.mac}, but ARP for it is answered only by ${otherMacs.join(', ')}: the lease was taken ` +
            'by one NIC (a bond or trunk member?) and the address is used from another.'
          : `${b.ip} was leased to ${b.mac}${b.server === undefined ? '' : ` by ${b.server}`}, and ${b.mac} has not been seen on ` +
            `the wire for ${seconds(t - since)}${probed}: a leaked lease (an interface that took an address it never uses).`
      const evidence: Evidence[] = [
        { time: iso(b.leasedAt ?? b.first), source: 'dhcp', mac: b.mac, ip: b.ip, what: `lease ${b.state === 'acked' ? 'ACKed' : 'REQUESTed'}${b.server === undefined ? '' : ` from ${b.server}`}` },
        { time: iso(since), source: 'dhcp', mac: b.mac, what: `last frame from ${b.mac}` },
        ...(b.probedAt === undefined ? [] : [{ time: iso(b.probedAt), source: 'probe' as const, ip: b.ip, what: `ARP probe for ${b.ip}` }]),
        ...others.slice(-4).map((c) => evidenceOf(b.ip, c)),
      ]
      add({ id: `stray:${b.mac}:${b.ip}`, kind: 'stray', ip: b.ip, macs: [b.mac, ...otherMacs], ...(b.server === undefined ? {} : { server: b.server }), explanation, evidence })
    }

    // Multi-NIC boot: one UUID PXE-booting from several MACs.
    for (const [uuid, macs] of uuids) {
      if (macs.size < 2) continue // nearly every UUID of a new-MAC flood: no array per UUID per evaluation
      const live = [...macs].filter(([, at]) => t - at <= windowMs)
      if (live.length < 2) continue
      const list = live.map(([m]) => m).sort()
      add({
        id: `multi-nic:${uuid}`,
        kind: 'multi-nic',
        uuid,
        macs: list,
        explanation:
          `machine ${uuid} PXE-booted from ${list.length} NICs (${list.join(', ')}): each may take a lease; check the ` +
          'firmware boot order, or expect one address per NIC.',
        evidence: live.map(([m, at]) => ({ time: iso(at), source: 'dhcp', mac: m, what: `PXE DISCOVER with option 97 ${uuid}` })),
      })
    }

    // Secure Boot in proxy mode: GRUB will ask the site ACK's next-server for its config, not pxebox.
    for (const [mac, miss] of nextServerMisses) {
      if (t - miss.time > windowMs) {
        nextServerMisses.delete(mac)
        continue
      }
      const pxebox = opts.shimGrub?.server ?? '?'
      const named = miss.siaddr === '0.0.0.0' ? 'no next-server (siaddr 0.0.0.0)' : `next-server ${miss.siaddr}`
      add({
        id: `next-server:${mac}`,
        kind: 'next-server',
        macs: [mac],
        server: miss.server,
        explanation:
          `${mac} boots with loader: shim-grub, but DHCP server ${miss.server} ACKs it with ${named}: GRUB loads its config ` +
          `from the ACK's next-server, so this machine cannot boot. Set next-server = ${pxebox} on the site DHCP server ` +
          `(ISC dhcpd next-server ${pxebox}; dnsmasq dhcp-boot=shimx64.efi,,${pxebox}), or run pxebox with dhcp.mode: authoritative.`,
        evidence: [{ time: iso(miss.time), source: 'dhcp', mac, what: `ACK from ${miss.server} with siaddr ${miss.siaddr}` }],
      })
    }

    // Rogue or second DHCP servers.
    const active = [...servers].filter(([, s]) => t - s.last <= windowMs).sort((a, b) => a[1].first - b[1].first)
    for (const [server, s] of active) {
      if (own.has(server)) continue
      let explanation: string | undefined
      if (allowed.size > 0 || own.size > 0) {
        if (!allowed.has(server)) {
          const list = [...allowed, ...own]
          explanation = `DHCP server ${server} hands out addresses on the PXE VLAN but is not allowed (${list.join(', ')}): a rogue or misconfigured server.`
        }
      } else if (active[0]?.[0] !== server) {
        explanation =
          `a second DHCP server ${server} hands out addresses beside ${active[0]?.[0] ?? '?'}; set tracking.allowed_servers ` +
          'to name the legitimate one(s).'
      }
      if (explanation === undefined) continue
      const macs = [...new Set(s.evidence.map((e) => e.mac).filter((m): m is string => m !== undefined))].sort()
      add({ id: `rogue-server:${server}`, kind: 'rogue-server', server, macs, explanation, evidence: [...s.evidence] })
    }

    if (unlisted.count > 0 && t - unlisted.last <= windowMs) {
      add({
        id: 'rogue-server:unlisted',
        kind: 'rogue-server',
        macs: [],
        explanation:
          `${unlisted.count} sightings of DHCP servers beyond the ${maxServers} listed (tracking.max_servers), the latest ` +
          `${unlisted.latest}: that many server ids at once is spoofed traffic, or a misconfigured relay.`,
        evidence: [],
      })
    } else if (unlisted.count > 0) unlisted = { count: 0, last: 0, latest: '' }

    const listed = bounded(next, t)
    for (const [id, f] of listed) {
      if (!current.has(id) && findingLines.admit(id, f.kind)) log.warn({ finding: f }, `address finding: ${f.explanation}`)
    }
    for (const [id, f] of current) if (!listed.has(id)) log.info({ finding_id: id, kind: f.kind }, `address finding cleared: ${id}`)
    current = listed
    return [...listed.values()]
  }

  const snapshotFields = (): SnapshotFields => {
    dirty = false
    const bindingKeys = [...bindings.keys()]
    const macKeys = [...macSeen.keys()]
    const uuidKeys = [...uuids.keys()]
    const serverKeys = [...servers.keys()]
    const claimKeys = [...claims.keys()]
    return {
      bindings: rendered(bindingKeys, (key) => {
        const b = bindings.get(key)
        if (b === undefined) return undefined
        const info = macInfo.get(b.mac)
        return { ...b, ...(info?.hostname === undefined ? {} : { hostname: info.hostname }), ...(info?.uuid === undefined ? {} : { uuid: info.uuid }) }
      }),
      // Silence is measured only for bound MACs (strays): the rest is not worth a line in observed.json.
      macSeen: rendered(macKeys, (mac) => {
        const at = macSeen.get(mac)
        return at === undefined || !keysByMac.has(mac) ? undefined : [mac, at]
      }),
      uuids: rendered(uuidKeys, (uuid) => {
        const macs = uuids.get(uuid)
        return macs === undefined ? undefined : [uuid, [...macs]]
      }),
      servers: rendered(serverKeys, (server) => {
        const sighting = servers.get(server)
        return sighting === undefined ? undefined : [server, sighting]
      }),
      claims: rendered(claimKeys, (ip) => {
        const list = claims.get(ip)
        return list === undefined ? undefined : [ip, list]
      }),
    }
  }

  const toBinding = (b: StoredBinding): Binding => {
    const info = macInfo.get(b.mac) ?? {}
    return {
      mac: b.mac,
      ip: b.ip,
      ...(b.server === undefined ? {} : { server: b.server }),
      firstSeen: iso(b.first),
      lastSeen: iso(Math.max(b.last, macSeen.get(b.mac) ?? 0)),
      ...(info.hostname === undefined ? {} : { hostname: info.hostname }),
      ...(info.uuid === undefined ? {} : { uuid: info.uuid }),
      source: b.dhcp && b.arp ? 'both' : b.dhcp ? 'dhcp' : 'arp',
      state: b.state,
      ...(b.expires === undefined ? {} : { leaseExpires: iso(b.expires) }),
      machine: machineOf(b.mac),
    }
  }

  return {
    observeDhcp,
    observeArp,
    evaluate,
    leases: () => [...bindings.values()].sort((a, b) => b.last - a.last).map(toBinding),
    macForIp: (ip) => newestFirst(keysByIp.get(ip))[0]?.mac,
    ipsOf: (mac, states) =>
      newestFirst(keysByMac.get(mac))
        .filter((b) => states === undefined || states.includes(b.state))
        .map((b) => b.ip),
    machines() {
      const out = new Map<string, Machine>()
      for (const mac of new Set([...macInfo.keys(), ...[...bindings.values()].map((b) => b.mac)])) {
        const id = machineOf(mac)
        const m = out.get(id) ?? { id, ...(id.startsWith('uuid:') ? { uuid: id.slice(5) } : {}), macs: [] }
        m.macs.push(mac)
        out.set(id, m)
      }
      for (const m of out.values()) m.macs.sort()
      return [...out.values()]
    },
    findings: () => [...current.values()],
    configure(next) {
      settle(next)
      // trim() cuts to 7/8 of a bound once over it; a lowered bound is enforced at once, not at the next insert.
      evictions.bindings += trim(bindings, maxBindings, unindexBinding)
      evictions.claims += trim(claims, maxBindings)
      evictions.macs += trim(macSeen, maxMacs, forgetMac)
      evictions.uuids += trim(uuids, maxMacs)
      dirty = true
    },
    counts() {
      const c = Object.fromEntries(FINDING_KINDS.map((k) => [k, 0])) as Record<FindingKind, number>
      for (const f of current.values()) c[f.kind]++
      return c
    },
    snapshot() {
      const f = snapshotFields()
      return { version: 1, bindings: [...f.bindings], macSeen: [...f.macSeen], uuids: [...f.uuids], servers: [...f.servers], claims: [...f.claims] }
    },
    snapshotFields,
    restore(s) {
      bindings = new Map()
      keysByIp = new Map()
      keysByMac = new Map()
      macInfo = new Map()
      for (const raw of s.bindings.slice(-maxBindings)) {
        const { uuid, hostname, ...b } = raw as StoredBinding & { uuid?: string }
        bindings.set(`${b.mac}|${b.ip}`, b)
        indexBinding(`${b.mac}|${b.ip}`, b)
        const info = macInfo.get(b.mac) ?? {}
        if (uuid !== undefined) info.uuid = uuid
        if (hostname !== undefined) info.hostname = hostname
        macInfo.set(b.mac, info)
      }
      // In time order, as touch() keeps them (prune() stops at the first entry inside the window); a file saved in
      // slices can hold an entry touched while it was written a little out of place.
      macSeen = new Map(s.macSeen.slice(-maxMacs).sort((a, b) => a[1] - b[1]))
      uuids = new Map(
        s.uuids
          .slice(-maxMacs)
          .map(([u, m]): [string, Map<string, number>] => [u, new Map(m.slice(-MAX_MACS_PER_UUID))])
          .sort((a, b) => newestBoot(a[1]) - newestBoot(b[1])),
      )
      for (const [u, m] of uuids) for (const mac of m.keys()) macInfo.set(mac, { ...macInfo.get(mac), uuid: u })
      servers = new Map(s.servers.slice(-maxServers))
      claims = new Map(s.claims.slice(-maxBindings))
      current = new Map()
      dirty = false
    },
    get dirty() {
      return dirty
    },
    evictions,
  }
}

/** The entries `render` gives for `keys`, skipping keys it finds gone. */
function* rendered<K, V>(keys: readonly K[], render: (key: K) => V | undefined): Generator<V> {
  for (const key of keys) {
    const value = render(key)
    if (value !== undefined) yield value
  }
}

function getLeaseSeconds(p: DhcpPacket): number | undefined {
  const data = p.options.find((o) => o.code === DhcpOptionCode.LEASE_TIME)?.data
  return data !== undefined && data.length === 4 ? data.readUInt32BE(0) : undefined
}
