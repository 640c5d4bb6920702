/**
 * Merging two versions of one machine record (issue 17): with a shared store two appliances can see one machine (both
 * on its VLAN, or each during an outage) and each writes what it saw. Neither version may lose the other's events, so
 * a writer that finds the stored document changed under it (a StoreConflictError, a followed change, a queued write
 * flushed after an outage) merges instead of overwriting.
 *
 * The merge works per stored document (records-store.ts: `machine` and `machine-timeline`), since each is written and
 * watched on its own. Both merges are commutative and idempotent (merging a version into itself, or into a merge that
 * already holds it, changes nothing), so two appliances that each merge and write back settle on one value instead of
 * rewriting each other forever:
 * - timeline document: entries, past attempts and syslog lines are unions ordered by time, exact duplicates once, cut
 *   to the same bounds the timeline ring keeps (MAX_ENTRIES, MAX_HISTORY, MAX_LOG_LINES);
 * - record document: what the machine is and where it stands (identity, addresses, group, the site and appliance that
 *   saw it, the current attempt) from the version seen more recently; first_seen the earliest; counters the larger;
 *   the inventory from the later report; operator-set fields (labels, install-once state) from the version the
 *   operator changed last (`labels_at`, `install_state_at`: a version without a stamp is older than one with).
 */
import { isDeepStrictEqual } from 'node:util'
import { MAX_LOG_LINES, type MachineRecord } from './model.js'
import { MAX_ENTRIES, MAX_HISTORY } from './timeline.js'

/** The record document: the record without its timeline fields. */
export type MachineHot = Omit<MachineRecord, 'timeline' | 'history' | 'log' | 'log_dropped'>
/** The timeline document. */
export type MachineCold = Pick<MachineRecord, 'timeline' | 'history' | 'log' | 'log_dropped'>

const cmp = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0)
const maxOf = (a: string, b: string): string => (a < b ? b : a)
const minOf = (a: string, b: string): string => (a < b ? a : b)

/**
 * Whether `b` is the version seen more recently. Ties fall to a total order of the rest, so that merge(a, b) and
 * merge(b, a) pick the same one.
 */
function bIsNewer(a: MachineHot, b: MachineHot): boolean {
  return (cmp(a.last_seen, b.last_seen) || cmp(a.attempt_started, b.attempt_started) || cmp(a.appliance ?? '', b.appliance ?? '') || cmp(JSON.stringify(a), JSON.stringify(b))) < 0
}

/** The version whose `stamp` is later (no stamp: older than any); a tie goes to `newer`. */
function byStamp<K extends 'labels_at' | 'install_state_at' | 'reported_at'>(stamp: K, older: MachineHot, newer: MachineHot): MachineHot {
  return cmp(older[stamp] ?? '', newer[stamp] ?? '') > 0 ? older : newer
}

/** Two versions of a machine's record document, merged (see the file comment). */
export function mergeHot(a: MachineHot, b: MachineHot): MachineHot {
  const [older, newer] = bIsNewer(a, b) ? [a, b] : [b, a]
  const out: MachineHot = { ...older, ...newer }
  out.first_seen = minOf(a.first_seen, b.first_seen)
  out.last_seen = maxOf(a.last_seen, b.last_seen)
  out.last_progress = maxOf(a.last_progress, b.last_progress)
  out.boots = Math.max(a.boots, b.boots)
  out.installs = Math.max(a.installs, b.installs)
  out.reinstalls = Math.max(a.reinstalls, b.reinstalls)
  out.ips = [...new Set([...newer.ips, ...older.ips])].slice(0, 4)
  const labels = byStamp('labels_at', older, newer)
  out.labels = { ...labels.labels }
  setOrDelete(out, 'labels_at', labels.labels_at)
  const install = byStamp('install_state_at', older, newer)
  setOrDelete(out, 'installed_at', install.installed_at)
  setOrDelete(out, 'install_state_at', install.install_state_at)
  const report = byStamp('reported_at', older, newer)
  setOrDelete(out, 'inventory', report.inventory)
  setOrDelete(out, 'reported_at', report.reported_at)
  return out
}

function setOrDelete<K extends keyof MachineHot>(r: MachineHot, key: K, value: MachineHot[K] | undefined): void {
  if (value === undefined) delete r[key]
  else r[key] = value
}

/** A flat object's text with its keys sorted: one entry read back from JSON and made in memory compare equal. */
const flatKey = (x: object): string => JSON.stringify(x, Object.keys(x).sort())

/** `a` and `b` as one list ordered by `time` (then by text), exact duplicates once, the last `max`. */
function union<T extends object>(a: readonly T[], b: readonly T[], time: (x: T) => string, max: number): T[] {
  const seen = new Set<string>()
  const out: T[] = []
  for (const x of [...a, ...b]) {
    const key = flatKey(x)
    if (seen.has(key)) continue
    seen.add(key)
    out.push(x)
  }
  // Ties by the entry's text: the order must not depend on which version came first (merge is commutative).
  out.sort((x, y) => cmp(time(x), time(y)) || cmp(flatKey(x), flatKey(y)))
  return out.length > max ? out.slice(out.length - max) : out
}

/** Two versions of a machine's timeline document, merged (see the file comment). */
export function mergeCold(a: MachineCold, b: MachineCold): MachineCold {
  const out: MachineCold = {
    timeline: union(a.timeline, b.timeline, (e) => e.time, MAX_ENTRIES),
    history: union(a.history, b.history, (h) => h.started, MAX_HISTORY),
  }
  if (a.log !== undefined || b.log !== undefined) out.log = union(a.log ?? [], b.log ?? [], (l) => l.time, MAX_LOG_LINES)
  if (a.log_dropped !== undefined || b.log_dropped !== undefined) out.log_dropped = Math.max(a.log_dropped ?? 0, b.log_dropped ?? 0)
  return out
}

/** Two whole versions of a machine record, merged document by document. */
export function mergeRecords(a: MachineRecord, b: MachineRecord): MachineRecord {
  return { ...mergeHot(hotOf(a), hotOf(b)), ...mergeCold(coldOf(a), coldOf(b)) }
}

/** The record document of a record. */
export function hotOf(r: MachineRecord | MachineHot): MachineHot {
  const { timeline: _t, history: _h, log: _l, log_dropped: _d, ...hot } = r as MachineRecord
  return hot
}

/** The timeline document of a record. */
export function coldOf(r: MachineCold): MachineCold {
  return { timeline: r.timeline, history: r.history, ...(r.log !== undefined ? { log: r.log } : {}), ...(r.log_dropped !== undefined ? { log_dropped: r.log_dropped } : {}) }
}

/** Whether two versions of a document hold the same data (key order aside). */
export function sameDocument(a: unknown, b: unknown): boolean {
  return isDeepStrictEqual(a, b)
}
