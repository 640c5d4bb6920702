/**
 * The tracking service the daemon starts: an address tracker fed by the DHCP server's packet hook (port 67/4011),
 * a port 68 listener (the site server's broadcast replies) and the ARP capture, evaluated on a timer, persisted in
 * `<data_dir>/observed.json` (write-temp + fsync + rename, every few seconds when something changed, and at stop),
 * serialized a slice of entries at a time so a flooded table never holds the event loop (DHCP offers wait behind it).
 * A corrupt state file is reported, set aside as `observed.json.corrupt-<time>` (durable-file.ts: a second corruption
 * never overwrites the first), and tracking starts empty.
 */
import { join } from 'node:path'
import type { DhcpPacket, PacketObserver } from '../dhcp/index.js'
import { silentLogger, type Logger } from '../host/log.js'
import type { NativeLoad } from '../host/native.js'
import { startArpCapture, type ArpCapture } from './arp-capture.js'
import { arpingProbe, type ArpProbe } from './arp-probe.js'
import { listenClientPort, type ClientPortListener } from './client-port.js'
import { moveCorruptAside, readJsonFile, writeFileDurably } from '../host/durable-file.js'
import { stringifyFieldsInSlices } from '../host/json-slices.js'
import type { Binding, Finding, FindingKind, Machine } from './model.js'
import { createAddressTracker, type AddressTracker, type TrackerOptions, type TrackerSettings, type TrackerSnapshot } from './tracker.js'

/** What the daemon passes in (config `tracking` as tracker settings, the interface, data_dir). */
export interface TrackingOptions extends TrackerSettings {
  interfaceName: string
  dataDir: string
  /** Our own server identifier in authoritative mode. */
  ownServers?: readonly string[]
  /** Proxy mode: report shim-grub machines whose site ACK names another next-server (see TrackerOptions). */
  shimGrub?: TrackerOptions['shimGrub']
  /** Capture ARP with tcpdump and verify silent leases with arping. */
  arp: boolean
  /** Listen on port 68 for the site server's broadcast replies (not in authoritative mode: nothing else serves). */
  listenClientPort: boolean
  logger?: Logger
  now?: () => number
  evaluateEveryMs?: number
  saveEveryMs?: number
  /** The native addon as the daemon loaded it (the port 68 listener's pinning). */
  native?: NativeLoad
  /** Test hooks. */
  clientPort?: number
  probe?: ArpProbe
  pin?: boolean
}

/** The query side the HTTP API and metrics use. */
export interface AddressQueries {
  leases(): Binding[]
  machines(): Machine[]
  findings(): Finding[]
  counts(): Record<FindingKind, number>
  /**
   * Addresses DHCP showed `mac` holding (REQUESTed or ACKed, not released), most recent first: the `AddressBook` shape
   * bind_to_lease uses (src/addresses/observed.ts). ARP is left out on purpose: any host can send ARP for any MAC.
   */
  addressesOf(mac: string): string[]
  /** The MAC most recently seen on `ip` (an index lookup: asked for every event that names no MAC). */
  macForIp(ip: string): string | undefined
}

/** A running tracking service. */
export interface TrackingService extends AddressQueries {
  readonly tracker: AddressTracker
  /** Give this to the DHCP server (`onPacket`). */
  readonly observer: PacketObserver
  /** Feed our own replies (authoritative mode), so our leases are in the table too. */
  observeOwnReply(packet: DhcpPacket): void
  /** Resolves when the ARP capture listens (immediately when ARP is off); rejects if tcpdump cannot start. */
  readonly arpReady: Promise<void>
  /** Apply new settings (SIGHUP): the tracker's, and the evaluation period that follows from stray_after. */
  configure(settings: TrackerSettings): void
  /** Save now (tests, and before stop). */
  save(): Promise<void>
  close(): Promise<void>
}

/** The state file inside data_dir. */
export const OBSERVED_FILE = 'observed.json'

/** Starts tracking. Only a failing port 68 bind rejects; ARP problems are logged and tracking goes on without ARP. */
export async function startAddressTracking(opts: TrackingOptions): Promise<TrackingService> {
  const log = (opts.logger ?? silentLogger).child({ proto: 'leases' })
  const file = join(opts.dataDir, OBSERVED_FILE)
  const probe = opts.arp ? (opts.probe ?? arpingProbe({ interfaceName: opts.interfaceName, timeoutMs: 1000 })) : undefined
  const tracker = createAddressTracker({
    ...settingsOf(opts),
    ...(opts.ownServers === undefined ? {} : { ownServers: opts.ownServers }),
    ...(opts.shimGrub === undefined ? {} : { shimGrub: opts.shimGrub }),
    ...(probe === undefined ? {} : { verify: (ip: string) => void probe(ip) }),
    ...(opts.now === undefined ? {} : { now: opts.now }),
    logger: opts.logger ?? silentLogger,
  })
  await loadObserved(file, tracker, log)

  let client68: ClientPortListener | undefined
  if (opts.listenClientPort) {
    try {
      client68 = await listenClientPort({
        interfaceName: opts.interfaceName,
        onPacket: (p) => tracker.observeDhcp(p, 68),
        ...(opts.clientPort === undefined ? {} : { port: opts.clientPort }),
        ...(opts.pin === undefined ? {} : { pin: opts.pin }),
        ...(opts.native === undefined ? {} : { native: opts.native }),
        logger: opts.logger ?? silentLogger,
      })
    } catch (err) {
      // A DHCP client on this box holding 68 without SO_REUSEADDR: track without the site server's broadcasts.
      log.warn({ err }, "cannot listen on port 68; the site server's broadcast OFFER/ACKs will not be tracked")
    }
  }
  let capture: ArpCapture | undefined
  if (opts.arp) capture = startArpCapture({ interfaceName: opts.interfaceName, onArp: (a) => tracker.observeArp(a), logger: opts.logger ?? silentLogger })
  const arpReady = capture?.ready ?? Promise.resolve()

  let saving: Promise<void> = Promise.resolve()
  const save = (): Promise<void> => {
    saving = saving.then(async () => {
      if (!tracker.dirty) return
      try {
        await writeFileDurably(file, await stringifyFieldsInSlices({ version: 1 }, Object.entries(tracker.snapshotFields())))
      } catch (err) {
        log.warn({ err, file }, 'cannot save the observed address table')
      }
    })
    return saving
  }
  // A stray is declared at most a quarter of stray_after late (and within 5 s).
  const evaluatePeriod = (strayAfterMs: number): number => opts.evaluateEveryMs ?? Math.min(5000, Math.max(250, strayAfterMs / 4))
  let period = evaluatePeriod(opts.strayAfterMs)
  let evalTimer = setInterval(() => tracker.evaluate(), period)
  const saveTimer = setInterval(() => void save(), opts.saveEveryMs ?? 10_000)
  evalTimer.unref()
  saveTimer.unref()

  return {
    tracker,
    observer: (packet) => tracker.observeDhcp(packet, 67),
    observeOwnReply: (packet) => tracker.observeDhcp(packet, 'self'),
    arpReady,
    leases: () => tracker.leases(),
    machines: () => tracker.machines(),
    findings: () => tracker.findings(),
    counts: () => tracker.counts(),
    addressesOf: (mac) => tracker.ipsOf(mac, ['acked', 'requested']),
    macForIp: (ip) => tracker.macForIp(ip),
    configure(settings) {
      tracker.configure(settingsOf(settings))
      if (evaluatePeriod(settings.strayAfterMs) === period) return
      period = evaluatePeriod(settings.strayAfterMs)
      clearInterval(evalTimer)
      evalTimer = setInterval(() => tracker.evaluate(), period)
      evalTimer.unref()
    },
    save,
    async close() {
      clearInterval(evalTimer)
      clearInterval(saveTimer)
      await Promise.all([client68?.close(), capture?.close()])
      await save()
    },
  }
}

/** Only the settings, so options meant for the service never reach the tracker. */
function settingsOf(s: TrackerSettings): TrackerSettings {
  const { strayAfterMs, conflictWindowMs, allowedServers, maxBindings, maxMacs, maxServers, maxFindings } = s
  return {
    strayAfterMs,
    allowedServers,
    ...(conflictWindowMs === undefined ? {} : { conflictWindowMs }),
    ...(maxBindings === undefined ? {} : { maxBindings }),
    ...(maxMacs === undefined ? {} : { maxMacs }),
    ...(maxServers === undefined ? {} : { maxServers }),
    ...(maxFindings === undefined ? {} : { maxFindings }),
  }
}

async function loadObserved(file: string, tracker: AddressTracker, log: Logger): Promise<void> {
  const read = await readJsonFile(file)
  if (read.state === 'missing') return
  let reason: string
  let movedTo: string | undefined
  if (read.state === 'corrupt') {
    reason = read.reason
    movedTo = read.movedTo
  } else {
    try {
      const snap = read.value as TrackerSnapshot
      if (snap?.version !== 1 || !Array.isArray(snap.bindings)) throw new Error('not a version 1 address table')
      tracker.restore(snap)
      log.info({ file, bindings: snap.bindings.length }, 'observed address table loaded')
      return
    } catch (err) {
      // JSON, but not a table restore() can use: the same treatment as text that does not parse.
      tracker.restore({ version: 1, bindings: [], macSeen: [], uuids: [], servers: [], claims: [] })
      reason = (err as Error).message
      movedTo = await moveCorruptAside(file)
    }
  }
  log.warn({ file, err: reason, moved_to: movedTo }, `observed address table ${file} is corrupt (${reason}); ${movedTo === undefined ? 'left in place' : `moved to ${movedTo}`}, starting empty`)
}
