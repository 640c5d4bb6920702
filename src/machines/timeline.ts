/**
 * Building a machine's boot timeline from boot events, and reading it: which stage it reached, whether it failed,
 * finished or stopped. Pure functions over a MachineRecord; the store (store.ts) owns attribution and persistence.
 *
 * Attempts: a machine boots many times. A new attempt starts when DHCP (or, with DHCP not seen, an iPXE script)
 * arrives after the current attempt already got past the boot script, or after a long silence. The chainload
 * pattern (ROM DHCP -> TFTP iPXE -> iPXE's own DHCP -> script) therefore stays one attempt.
 */
import type { BootEvent } from './events.js'
import { textFromHex } from '../host/hex-text.js'
import { Value } from '@sinclair/typebox/value'
import { InventorySchema, MAX_LOG_LINES, RECORD_LIMITS, STAGES, type Inventory, type MachineRecord, type MachineStatus, type MachineView, type Stage, type TimelineEntry } from './model.js'

/** Entries kept per attempt; a machine retrying a missing file should not grow its record without bound. */
export const MAX_ENTRIES = 80
/** Past attempts kept per machine: enough to see a reinstall loop. */
export const MAX_HISTORY = 10
/** Silence after which any boot-start event opens a new attempt. */
const NEW_ATTEMPT_AFTER_MS = 30 * 60_000

const stageIndex = (s: Stage | undefined): number => (s === undefined ? -1 : STAGES.indexOf(s))

/** Map an HTTP event step to its stage. `asset`, `metadata` and `generic` are shown but reach no stage. */
const HTTP_STAGES: Readonly<Record<string, Stage>> = {
  script: 'script',
  ipxe: 'script',
  'local-boot': 'script',
  firmware: 'tftp',
  kernel: 'kernel',
  initrd: 'initrd',
  ignition: 'ignition',
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v : undefined
}

/** A timeline line cut to RECORD_LIMITS.whatLength (a request path can be kilobytes long). */
function clip(what: string): string {
  return what.length > RECORD_LIMITS.whatLength ? `${what.slice(0, RECORD_LIMITS.whatLength - 1)}…` : what
}

function pathOnly(path: string): string {
  const q = path.indexOf('?')
  return q >= 0 ? path.slice(0, q) : path
}

/** One timeline entry for a boot event. */
export function entryFromEvent(e: BootEvent): TimelineEntry {
  const d = e.detail
  let stage: Stage | undefined
  let what: string
  let outcome = e.outcome
  if (e.kind === 'dhcp') {
    // In authoritative mode pxebox also leases to the booted OS (an installer's or the installed system's own DHCP,
    // renewals hours later): without a boot file that exchange is no boot stage, so it neither opens a new boot
    // attempt after the kernel nor shows as one.
    const osLease = d.mode === 'authoritative' && d.boot_file === undefined
    if ((e.step === 'offer' || e.step === 'ack') && !osLease) stage = 'dhcp'
    const facts = [str(d.arch_label) ?? (d.arch !== undefined ? `arch ${String(d.arch)}` : undefined), str(d.client_class)].filter(Boolean)
    what = `${e.step}${str(d.boot_file) ? ` ${String(d.boot_file)}` : ''}${facts.length ? ` (${facts.join(', ')})` : ''}`
  } else if (e.kind === 'tftp') {
    // A profile's kernel and initrd come over TFTP on the Secure Boot path (the signed GRUB has no HTTP).
    stage = e.step === 'kernel' || e.step === 'initrd' ? e.step : 'tftp'
    const file = str(d.file) ?? '?'
    // UEFI asks for the size first and aborts that transfer on purpose (tsize probe); it is not a failure.
    if (d.tsize_probe === true) {
      outcome = 'ok'
      what = `${file} (size probe)`
    } else what = `${e.step === 'local-boot' ? 'local disk boot via ' : ''}${file}${typeof d.bytes === 'number' ? ` ${d.bytes} bytes` : ''}`
  } else {
    stage = HTTP_STAGES[e.step]
    const path = str(d.path) ?? e.step
    if (e.step === 'report' && Value.Check(InventorySchema, d.inventory)) what = `reported ${describeInventory(d.inventory)}`
    else if (e.step === 'hold') what = `waiting for assignment (holding script, ${pathOnly(path)})`
    else what = `${e.step === 'local-boot' ? 'local disk boot via ' : ''}${pathOnly(path)}${typeof d.status === 'number' ? ` ${d.status}` : ''}`
  }
  return {
    time: e.time,
    source: e.kind,
    step: e.step,
    ...(stage !== undefined ? { stage } : {}),
    outcome: clip(outcome),
    ...(e.ip !== undefined && e.ip !== '0.0.0.0' ? { ip: e.ip } : {}),
    what: clip(what),
  }
}

/** `QEMU Standard PC (Q35 + ICH9, 2009), serial SN-1, 2 NICs`. */
export function describeInventory(inv: Inventory): string {
  const model = [inv.manufacturer, inv.product].filter(Boolean).join(' ') || 'unknown model'
  const parts = [model, ...(inv.serial ? [`serial ${inv.serial}`] : []), `${inv.nics.length} NIC${inv.nics.length === 1 ? '' : 's'}`]
  return parts.join(', ')
}

type Identity = Partial<Pick<MachineRecord, 'uuid' | 'serial' | 'hostname' | 'arch' | 'group' | 'profile' | 'inventory' | 'reported_at'>>

/**
 * Identity facts an event carries: labels from an HTTP query, the arch and group a DHCP decision used, the inventory
 * a holding machine reported (its uuid and serial become the record's too).
 */
export function identityFromEvent(e: BootEvent): Identity {
  const d = e.detail
  const out: Identity = {}
  if (e.kind === 'http' && e.step === 'report') {
    // The report's query carries the facts as hex; only the parsed inventory counts.
    if (!Value.Check(InventorySchema, d.inventory)) return out
    const inv = d.inventory
    out.inventory = inv
    out.reported_at = e.time
    if (inv.uuid !== undefined) out.uuid = inv.uuid
    if (inv.serial !== undefined) out.serial = inv.serial
    if (inv.buildarch !== undefined) out.arch = inv.buildarch
    return out
  }
  const group = str(d.group)
  const profile = str(d.profile)
  if (group) out.group = group
  if (profile) out.profile = profile
  if (e.kind === 'dhcp') {
    const arch = str(d.arch_label)
    if (arch) out.arch = arch
  }
  const path = str(d.path)
  if (e.kind === 'http' && path?.includes('?')) {
    const q = new URLSearchParams(path.slice(path.indexOf('?') + 1))
    for (const key of ['uuid', 'serial', 'hostname', 'arch'] as const) {
      // /boot.ipxe sends the serial as hex (host/hex-text.ts says why).
      const hex = key === 'serial' ? q.get('serial_hex') : null
      const v = hex ? textFromHex(hex, RECORD_LIMITS.identityLength) : q.get(key)
      // iPXE leaves a variable empty when the firmware has no value; SMBIOS placeholders are not identities either.
      // Longer values are not identities but an attempt to grow the record (issue 13 item 9).
      if (v && v.length <= RECORD_LIMITS.identityLength && !/^\$\{/.test(v) && v !== 'To be filled by O.E.M.') out[key] = v
    }
  }
  return out
}

/**
 * Apply RECORD_LIMITS to a record read back from disk (written by an older pxebox, or edited): over-long identity
 * values are removed, timeline lines cut, surplus labels dropped. Returns whether anything changed.
 */
export function boundRecord(r: MachineRecord): boolean {
  let changed = false
  for (const key of ['uuid', 'serial', 'hostname', 'arch'] as const) {
    if ((r[key]?.length ?? 0) > RECORD_LIMITS.identityLength) {
      delete r[key]
      changed = true
    }
  }
  for (const e of r.timeline) {
    if (e.what.length > RECORD_LIMITS.whatLength || e.outcome.length > RECORD_LIMITS.whatLength) {
      e.what = clip(e.what)
      e.outcome = clip(e.outcome)
      changed = true
    }
  }
  const labels = Object.entries(r.labels)
  const kept = labels.filter(([, v]) => v.length <= RECORD_LIMITS.labelValueLength).slice(0, RECORD_LIMITS.labels)
  if (kept.length !== labels.length) {
    r.labels = Object.fromEntries(kept)
    changed = true
  }
  if (r.timeline.length > MAX_ENTRIES) {
    r.timeline.splice(0, r.timeline.length - MAX_ENTRIES)
    changed = true
  }
  if (r.history.length > MAX_HISTORY) {
    r.history.splice(0, r.history.length - MAX_HISTORY)
    changed = true
  }
  if ((r.log?.length ?? 0) > MAX_LOG_LINES) {
    r.log!.splice(0, r.log!.length - MAX_LOG_LINES)
    changed = true
  }
  if (r.ips.length > 4) {
    r.ips = r.ips.slice(0, 4)
    changed = true
  }
  return changed
}

/** Furthest stage reached with outcome ok in these entries. */
export function reachedStage(entries: readonly TimelineEntry[]): Stage | undefined {
  let best: Stage | undefined
  for (const e of entries) if (e.stage !== undefined && e.outcome === 'ok' && stageIndex(e.stage) > stageIndex(best)) best = e.stage
  return best
}

/** A fresh record for a MAC first seen at `time`. */
export function newRecord(mac: string, time: string, nicVendor: string | undefined): MachineRecord {
  return {
    mac,
    ...(nicVendor !== undefined ? { nic_vendor: nicVendor } : {}),
    ips: [],
    labels: {},
    first_seen: time,
    last_seen: time,
    boots: 0,
    attempt_started: time,
    timeline: [],
    last_progress: time,
    history: [],
    installs: 0,
    reinstalls: 0,
  }
}

function opensAttempt(r: MachineRecord, entry: TimelineEntry): boolean {
  if (r.boots === 0) return true
  const last = r.timeline[r.timeline.length - 1]
  if (last === undefined) return false
  const reached = stageIndex(reachedStage(r.timeline))
  if (entry.stage === 'dhcp' && reached >= stageIndex('script')) return true
  if (entry.stage === 'script' && entry.step !== 'local-boot' && reached >= stageIndex('kernel')) return true
  const starts = entry.stage === 'dhcp' || entry.stage === 'tftp' || entry.stage === 'script'
  return starts && Date.parse(entry.time) - Date.parse(last.time) > NEW_ATTEMPT_AFTER_MS
}

/** Add one entry (and the identity its event carried) to a record, opening a new attempt when it starts one. */
export function applyEntry(r: MachineRecord, entry: TimelineEntry, identity: ReturnType<typeof identityFromEvent> = {}): void {
  if (opensAttempt(r, entry)) {
    if (r.timeline.length > 0) {
      const last = r.timeline[r.timeline.length - 1]!
      const reached = reachedStage(r.timeline)
      r.history.push({ started: r.attempt_started, ended: last.time, ...(reached ? { reached } : {}), outcome: lastStaged(r.timeline)?.outcome ?? 'ok' })
      if (r.history.length > MAX_HISTORY) r.history.splice(0, r.history.length - MAX_HISTORY)
    }
    r.boots += 1
    r.timeline = []
    r.attempt_started = entry.time
    r.last_progress = entry.time
  }
  // A kernel fetched after the machine said it was installed: the installer is running again.
  if (entry.stage === 'kernel' && entry.outcome === 'ok' && r.installed_at !== undefined && !r.timeline.some((e) => e.stage === 'kernel' && e.outcome === 'ok')) {
    r.reinstalls += 1
  }
  // A machine in the holding script polls every few seconds for hours: one line that moves, not a line per poll.
  const previous = r.timeline[r.timeline.length - 1]
  if (entry.step === 'hold' && previous?.step === 'hold' && previous.source === entry.source && previous.time <= entry.time) r.timeline.pop()
  // Keep time order: events attributed late (TFTP by IP) may be older than the newest entry.
  let at = r.timeline.length
  while (at > 0 && r.timeline[at - 1]!.time > entry.time) at--
  r.timeline.splice(at, 0, entry)
  if (r.timeline.length > MAX_ENTRIES) r.timeline.splice(0, r.timeline.length - MAX_ENTRIES)
  if (entry.stage !== undefined && entry.outcome === 'ok' && entry.time > r.last_progress) r.last_progress = entry.time
  if (entry.time > r.last_seen) r.last_seen = entry.time
  if (entry.ip !== undefined) {
    r.ips = [entry.ip, ...r.ips.filter((ip) => ip !== entry.ip)].slice(0, 4)
  }
  Object.assign(r, identity)
}

function lastStaged(entries: readonly TimelineEntry[]): TimelineEntry | undefined {
  for (let i = entries.length - 1; i >= 0; i--) if (entries[i]!.stage !== undefined) return entries[i]
  return undefined
}

/** What a machine's profile means for its timeline. */
export interface ProfileFacts {
  /** The profile has `boot_once: true`. */
  readonly bootOnce: boolean
  /** The last stage a boot of this profile reaches. */
  readonly finalStage: Stage
}

/** `3 s`, `4 min`, `2 h 5 min`. */
export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds))
  if (s < 90) return `${s} s`
  const m = Math.round(s / 60)
  if (m < 90) return `${m} min`
  return `${Math.floor(m / 60)} h ${m % 60} min`
}

/** Read a record: status, furthest stage and a one-line summary. */
export function machineView(r: MachineRecord, opts: { now: number; stuckAfterMs: number; profile?: ProfileFacts | undefined }): MachineView {
  const finalStage = opts.profile?.finalStage ?? 'ignition'
  const reached = reachedStage(r.timeline)
  const last = lastStaged(r.timeline)
  const since = Math.max(0, (opts.now - Date.parse(r.last_progress)) / 1000)
  const bootsLocal = opts.profile?.bootOnce === true && r.installed_at !== undefined
  let status: MachineStatus
  let summary: string
  const lastEntry = r.timeline[r.timeline.length - 1]
  if (lastEntry?.source === 'http' && (lastEntry.step === 'hold' || lastEntry.step === 'report')) {
    // In the holding script: nothing failed, it waits for the operator (or a group selecting its facts).
    status = 'discovered'
    summary = `discovered${r.inventory ? `: ${describeInventory(r.inventory)}` : ''}; waiting to be assigned to a group`
  } else if (last === undefined) {
    if (lastEntry?.source === 'dhcp' && lastEntry.step === 'ignore') {
      status = 'ignored'
      summary = `PXE request ignored: ${lastEntry.outcome}`
    } else {
      status = since * 1000 > opts.stuckAfterMs ? 'stuck' : 'booting'
      summary = lastEntry ? `${lastEntry.step}: ${lastEntry.what}` : 'no boot seen yet'
    }
  } else if (last.outcome !== 'ok') {
    status = 'failed'
    summary = `${last.stage}: ${last.outcome} (${last.what})`
  } else if (last.step === 'local-boot') {
    status = 'local-boot'
    summary = `installed ${r.installed_at ?? ''}; booted from local disk`
  } else if (reached !== undefined && (reached === 'installed' || stageIndex(reached) >= stageIndex(finalStage))) {
    status = 'done'
    summary = reached === 'installed' ? 'installed' : `${reached} fetched; boot handed over`
  } else if (since * 1000 > opts.stuckAfterMs) {
    status = 'stuck'
    summary = `no progress after ${reached ?? 'start'} for ${formatDuration(since)}`
  } else {
    status = 'booting'
    summary = `${reached ?? 'started'} ${formatDuration(since)} ago`
  }
  return {
    ...r,
    status,
    ...(reached !== undefined ? { stage: reached } : {}),
    final_stage: finalStage,
    summary,
    seconds_since_progress: Math.round(since),
    boots_local: bootsLocal,
  }
}
