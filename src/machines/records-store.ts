/**
 * Machine records in the Store: two documents per machine, so recording a boot event rewrites that machine's rows
 * only, where machines.json was rewritten whole (O(all machines) per flush):
 * - kind `machine` (id its MAC): the record without its timeline (identity, addresses, labels, install-once state,
 *   counters; ~500 bytes). Read whole at start: the boot path needs `installed_at` (boot_once) and the inventory
 *   (group matching) before the first answer.
 * - kind `machine-timeline` (same id): the current attempt's entries, the past attempts and the syslog lines (COLD_KEYS;
 *   ~1.8 KB for one UEFI install, up to ~40 KB at RECORD_LIMITS). Read per machine after start (store.ts fills them
 *   in slices, and first for a machine that needs its own): reading and parsing them all at start was 2.3 KB x
 *   100,000 rows, 7 s of CPU, most of it garbage collection.
 * The install-once state is written durably (synchronous=FULL) by the operator actions that change it.
 *
 * Loading checks every document against the schema it was written in and applies RECORD_LIMITS and the record cap,
 * as the file loader did. A `machine` document that still holds its timeline (written before the split) is read
 * whole and written back split. A `machines/machines.json` written by an earlier pxebox is imported once on first
 * start and kept as `machines.json.migrated` (store/migrate.ts).
 */
import { join } from 'node:path'
import { Type } from '@sinclair/typebox'
import { TypeCompiler } from '@sinclair/typebox/compiler'
import type { Logger } from '../host/log.js'
import { readJsonFile } from '../host/durable-file.js'
import { retireLegacyFile, StoreConflictError, StoreError, storeHealth, type QueuedMerge, type Store, type StoreEntry, type StoreOp } from '../store/index.js'
import { mergeCold, mergeHot } from './merge.js'
import { MachineRecordSchema, type MachineRecord } from './model.js'
import { boundRecord } from './timeline.js'

/** The Store kind of machine records without their timelines. */
export const MACHINE_KIND = 'machine'
/** The Store kind of machine timelines (COLD_KEYS of the record). */
export const TIMELINE_KIND = 'machine-timeline'
/** The record's fields kept in the timeline document, read after start. */
export const COLD_KEYS = ['timeline', 'history', 'log', 'log_dropped'] as const

/** machines.json's format version (the file before the Store). */
const LEGACY_VERSION = 1
/** Invalid records named one by one at load; the rest are counted (a bad store must not flood the log). */
const MAX_LISTED_PROBLEMS = 20
/** Operations per transaction when writing many records: the loop gets a turn between batches. */
const BATCH = 500

// Compiled once: checking 100,000 records at start through Value.Check took most of the load time.
const recordCheck = TypeCompiler.Compile(MachineRecordSchema)
const hotCheck = TypeCompiler.Compile(Type.Omit(MachineRecordSchema, COLD_KEYS))
const coldCheck = TypeCompiler.Compile(Type.Pick(MachineRecordSchema, COLD_KEYS))

/** A record's timeline document. */
export type MachineTimeline = Pick<MachineRecord, (typeof COLD_KEYS)[number]>

/** Whether `value` is a record document (a `machine` without its timeline) as this pxebox writes it. */
export const isRecordDocument = (value: unknown): value is Omit<MachineRecord, (typeof COLD_KEYS)[number]> => hotCheck.Check(value)
/** Whether `value` is a timeline document as this pxebox writes it. */
export const isTimelineDocument = (value: unknown): value is MachineTimeline => coldCheck.Check(value)

/** What loading found: records least recently seen first, what to write back, and problems in words. */
export interface LoadedRecords {
  /** Records whose MAC is in `withoutTimeline` hold an empty timeline until loadTimeline fills it. */
  readonly records: MachineRecord[]
  /** Records read without their timeline document. */
  readonly withoutTimeline: Set<string>
  /** Records cut to RECORD_LIMITS at load: written back in their bounded form. */
  readonly rewrite: string[]
  /** Records dropped at load (invalid, or over the cap): removed from the store. */
  readonly remove: string[]
  readonly problems: string[]
  /** Each loaded record document's modRevision: the guard of its next write. */
  readonly revisions: Map<string, number>
  /** The store's revision before the listing: a follow of other writers starts after it. */
  readonly revision: number
}

/** Import `<legacyDir>/machines.json` if it is there, then read every record from the store. */
export async function loadMachineRecords(store: Store, opts: { legacyDir?: string | undefined; maxMachines: number; logger: Logger }): Promise<LoadedRecords> {
  const problems: string[] = []
  if (opts.legacyDir !== undefined) await importLegacy(store, join(opts.legacyDir, 'machines.json'), problems, opts.logger)
  const where = `${store.location} (${MACHINE_KIND})`
  const byMac = new Map<string, MachineRecord>()
  const withoutTimeline = new Set<string>()
  const rewrite: string[] = []
  const remove: string[] = []
  const revisions = new Map<string, number>()
  let invalid = 0
  let bounded = 0
  const revision = await store.revision()
  for (const e of await store.list(MACHINE_KIND)) {
    const m = e.value as MachineRecord
    // A whole record (written before the timeline had its own document): kept whole, written back split.
    const whole = Array.isArray((m as { timeline?: unknown } | null)?.timeline)
    const check = whole ? recordCheck : hotCheck
    if (check.Check(m) && m.mac === e.id) {
      // Equal times as one string each (the record keeps 100,000 of them): ~80 B a machine.
      if (m.last_progress === m.last_seen) m.last_progress = m.last_seen
      if (m.attempt_started === m.first_seen) m.attempt_started = m.first_seen
      if (!whole) {
        m.timeline = []
        m.history = []
        withoutTimeline.add(m.mac)
      }
      const cut = boundRecord(m)
      if (cut) bounded++
      if (cut || whole) rewrite.push(m.mac)
      byMac.set(m.mac, m)
      revisions.set(m.mac, e.modRevision)
      continue
    }
    remove.push(e.id)
    if (++invalid <= MAX_LISTED_PROBLEMS) {
      const first = check.Check(m) ? { path: '/mac', message: `does not match its id ${e.id}` } : [...check.Errors(m)][0]
      problems.push(`${where}: ${e.id} skipped: ${first ? `${first.path || '/'} ${first.message}` : 'invalid'}`)
    }
  }
  if (invalid > MAX_LISTED_PROBLEMS) problems.push(`${where}: ${invalid - MAX_LISTED_PROBLEMS} more invalid records skipped`)
  if (bounded > 0) problems.push(`${where}: ${bounded} records held values over the record limits; cut to them`)
  // Least recently seen first: the order eviction needs (MachineStore keeps its map in it).
  const records = [...byMac.values()].sort((a, b) => (a.last_seen < b.last_seen ? -1 : a.last_seen > b.last_seen ? 1 : 0))
  // The cap applies to what was stored too: a store from a larger cap must not load whole.
  if (records.length > opts.maxMachines) {
    const drop = records.splice(0, records.length - opts.maxMachines)
    for (const r of drop) {
      remove.push(r.mac)
      withoutTimeline.delete(r.mac)
      revisions.delete(r.mac)
    }
    problems.push(`${where}: ${drop.length} least recently seen records dropped to keep ${opts.maxMachines} (the record cap)`)
  }
  return { records, withoutTimeline, rewrite, remove, problems, revisions, revision }
}

/** A timeline as read: the document, the guard of its next write, and what was wrong with it (see loadTimeline). */
export interface ReadTimeline {
  readonly timeline: MachineTimeline
  readonly modRevision: number
  readonly problem?: string
}

/**
 * The timeline document of `mac`: checked against the schema and RECORD_LIMITS' bounds (as loadMachineRecords does
 * for the rest), empty when there is none. `problem` names an invalid one (it is replaced by an empty timeline).
 */
export async function loadTimeline(store: Store, mac: string): Promise<ReadTimeline> {
  return checkTimeline(store, mac, await store.get(TIMELINE_KIND, mac))
}

/** A stored timeline document (`e`, undefined when there is none) as loadTimeline reads it. */
export function checkTimeline(store: Store, mac: string, e: StoreEntry | undefined): ReadTimeline {
  if (e === undefined) return { timeline: { timeline: [], history: [] }, modRevision: 0 }
  if (coldCheck.Check(e.value)) return { timeline: e.value, modRevision: e.modRevision }
  const first = [...coldCheck.Errors(e.value)][0]
  return { timeline: { timeline: [], history: [] }, modRevision: e.modRevision, problem: `${store.location} (${TIMELINE_KIND}): ${mac} replaced by an empty timeline: ${first ? `${first.path || '/'} ${first.message}` : 'invalid'}` }
}

/** A record split into its two documents. */
function split(r: MachineRecord): { hot: Omit<MachineRecord, (typeof COLD_KEYS)[number]>; cold: MachineTimeline } {
  const { timeline, history, log, log_dropped, ...hot } = r
  return { hot, cold: { timeline, history, ...(log !== undefined ? { log } : {}), ...(log_dropped !== undefined ? { log_dropped } : {}) } }
}

/**
 * How a write guards itself against other appliances' writes of the same machine (issue 17): each `put` carries the
 * modRevision this appliance last read or wrote of that document (`ifRevision`; 0: it knows of none), so a document
 * another appliance changed meanwhile fails the batch with StoreConflictError instead of being overwritten. The writer
 * then reads the batch's documents, hands the changed ones to `takeIn` (which merges them into the record in memory and
 * notes their revision) and writes the merged records, at most MAX_ATTEMPTS times.
 */
export interface WriteGuard {
  /** The modRevision of `mac`'s document of `kind` as last read or written; undefined when none is known. */
  revision(kind: string, mac: string): number | undefined
  /** `kind`/`mac` was written at `revision` (undefined: removed, or queued during an outage with no revision yet). */
  wrote(kind: string, mac: string, revision: number | undefined): void
  /** The stored document changed under this appliance (undefined: removed): merge it into the record in memory. */
  takeIn(kind: string, mac: string, entry: StoreEntry | undefined): void
}

/** Tries of one guarded batch: each conflict merges what the other writers did, so a retry only races new writes. */
const MAX_ATTEMPTS = 8

/**
 * Write `macs`' current records (or their removal, for MACs `current` no longer has), a transaction per BATCH.
 * A record given `withTimeline: false` (its timeline not read yet) has its `machine` document written only.
 * With `guard`, puts are compare-and-swap on the revision last seen, merged and retried on conflict (WriteGuard). While
 * the shared store does not answer (the outage layer is down) they go unguarded, to be queued (a guard needs the
 * current state, which an outage cannot give): the outbox flush merges them instead (store/outbox-flush.ts).
 * Removals are never guarded: a forgotten machine goes, whoever saw it last.
 */
export async function writeMachineRecords(store: Store, macs: Iterable<string>, current: (mac: string) => { record: MachineRecord; withTimeline: boolean } | undefined, durable = false, guard?: WriteGuard): Promise<void> {
  const perBatch = Math.max(1, Math.floor((Math.min(BATCH, store.maxBatchOps) - 1) / 2))
  let chunk: string[] = []
  const commit = async () => {
    await writeChunk(store, chunk, current, durable, guard)
    chunk = []
  }
  for (const mac of macs) {
    chunk.push(mac)
    // Up to two operations per machine: commit before the next could pass the store's bound (etcd --max-txn-ops).
    if (chunk.length >= perBatch) {
      await commit()
      await new Promise((resolve) => setImmediate(resolve))
    }
  }
  if (chunk.length > 0) await commit()
}

function opsFor(macs: readonly string[], current: (mac: string) => { record: MachineRecord; withTimeline: boolean } | undefined, guard: WriteGuard | undefined): StoreOp[] {
  const ops: StoreOp[] = []
  const put = (kind: string, mac: string, value: unknown): void => {
    ops.push(guard === undefined ? { op: 'put', kind, id: mac, value } : { op: 'put', kind, id: mac, value, ifRevision: guard.revision(kind, mac) ?? 0 })
  }
  for (const mac of macs) {
    const c = current(mac)
    if (c === undefined) {
      ops.push({ op: 'delete', kind: MACHINE_KIND, id: mac }, { op: 'delete', kind: TIMELINE_KIND, id: mac })
    } else {
      const { hot, cold } = split(c.record)
      put(MACHINE_KIND, mac, hot)
      if (c.withTimeline) put(TIMELINE_KIND, mac, cold)
    }
  }
  return ops
}

async function writeChunk(store: Store, macs: readonly string[], current: (mac: string) => { record: MachineRecord; withTimeline: boolean } | undefined, durable: boolean, guard: WriteGuard | undefined): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    const guarded = guard !== undefined && storeHealth(store)?.up !== false
    const ops = opsFor(macs, current, guarded ? guard : undefined)
    try {
      const revision = await store.batch(ops, { durable })
      // Queued (the outage layer went down under the write): no revision of its own yet; the flush merges it.
      const queued = guard !== undefined && storeHealth(store)?.up === false
      for (const op of ops) guard?.wrote(op.kind, op.id, op.op === 'put' && !queued ? revision : undefined)
      return
    } catch (err) {
      // Down between the health check and the write: the guarded write was refused, the unguarded one is queued.
      const refused = err instanceof StoreError && err.code === 'PXEBOX_STORE_UNAVAILABLE' && guarded
      if (!(err instanceof StoreConflictError || refused) || attempt >= MAX_ATTEMPTS || guard === undefined) throw err
      if (refused) continue
      // Every guarded document of the batch, read again: a conflict names only the first that failed.
      const puts = ops.filter((op): op is StoreOp & { op: 'put'; ifRevision: number } => op.op === 'put' && op.ifRevision !== undefined)
      const now = await Promise.all(puts.map((op) => store.get(op.kind, op.id)))
      puts.forEach((op, i) => {
        if ((now[i]?.modRevision ?? 0) !== op.ifRevision) guard.takeIn(op.kind, op.id, now[i])
      })
    }
  }
}

/**
 * The outbox flush's merge for machine documents (store/outbox-flush.ts): a record or timeline queued during an
 * outage is merged with the one in the store now (another appliance may have booted the machine meanwhile), guarded by
 * the revision read. A stored document that is not a valid one is replaced.
 */
export const mergeQueuedRecords: QueuedMerge = (ops, read) =>
  Promise.all(
    ops.map(async (op): Promise<StoreOp> => {
      if (op.op !== 'put' || (op.kind !== MACHINE_KIND && op.kind !== TIMELINE_KIND)) return op
      const stored = await read(op.kind, op.id)
      if (stored === undefined) return { ...op, ifRevision: 0 }
      const [a, b] = [stored.value, op.value]
      const value = op.kind === MACHINE_KIND ? (isRecordDocument(a) && isRecordDocument(b) ? mergeHot(a, b) : b) : isTimelineDocument(a) && isTimelineDocument(b) ? mergeCold(a, b) : b
      return { ...op, value, ifRevision: stored.modRevision }
    }),
  )

async function importLegacy(store: Store, file: string, problems: string[], logger: Logger): Promise<void> {
  const read = await readJsonFile(file)
  if (read.state === 'missing') return
  if (read.state === 'corrupt') {
    problems.push(`${file} is corrupt (${read.reason})${read.movedTo ? `; moved to ${read.movedTo}` : ''}; its machine records are not imported`)
    return
  }
  const data = read.value as { version?: unknown; machines?: unknown }
  if (data?.version !== LEGACY_VERSION || !Array.isArray(data.machines)) {
    problems.push(`${file}: expected {"version": ${LEGACY_VERSION}, "machines": [...]}; not imported, left in place`)
    return
  }
  // Records that fail the schema are imported as they are and skipped (and named) by the store load, like any other.
  const records = new Map<string, unknown>()
  ;(data.machines as unknown[]).forEach((m, i) => {
    const mac = (m as { mac?: unknown })?.mac
    if (typeof mac === 'string' && /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/.test(mac)) records.set(mac, m)
    else if (i < MAX_LISTED_PROBLEMS) problems.push(`${file}: machines[${i}] skipped: /mac is not a MAC (not imported)`)
  })
  // Whole as they were: the store load checks (and splits) them like any other whole record.
  const ops: StoreOp[] = [...records].map(([mac, value]) => ({ op: 'put', kind: MACHINE_KIND, id: mac, value }))
  for (let i = 0; i < ops.length; i += BATCH) await store.batch(ops.slice(i, i + BATCH), { durable: true })
  const kept = await retireLegacyFile(file)
  logger.info({ file, kept, machines: records.size }, `imported ${records.size} machine records from ${file} into ${store.location}; the old file is kept as ${kept}`)
}
