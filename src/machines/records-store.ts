/**
 * Machine records in the Store: one document per machine (kind `machine`, id its MAC), so recording a boot event
 * rewrites that machine's row only, where machines.json was rewritten whole (O(all machines) per flush). The
 * install-once state (`installed_at`, `installs`) is part of the record and is written durably (synchronous=FULL) by
 * the operator actions that change it.
 *
 * Loading checks every record against the schema it was written in and applies RECORD_LIMITS and the record cap, as
 * the file loader did. A `machines/machines.json` written by an earlier pxebox is imported once on first start and
 * kept as `machines.json.migrated` (store/migrate.ts).
 */
import { join } from 'node:path'
import { TypeCompiler } from '@sinclair/typebox/compiler'
import type { Logger } from '../host/log.js'
import { readJsonFile } from '../host/durable-file.js'
import { retireLegacyFile, type Store, type StoreOp } from '../store/index.js'
import { MachineRecordSchema, type MachineRecord } from './model.js'
import { boundRecord } from './timeline.js'

/** The Store kind of machine records. */
export const MACHINE_KIND = 'machine'

/** machines.json's format version (the file before the Store). */
const LEGACY_VERSION = 1
/** Invalid records named one by one at load; the rest are counted (a bad store must not flood the log). */
const MAX_LISTED_PROBLEMS = 20
/** Operations per transaction when writing many records: the loop gets a turn between batches. */
const BATCH = 500

// Compiled once: checking 100,000 records at start through Value.Check took most of the load time.
const recordCheck = TypeCompiler.Compile(MachineRecordSchema)

/** What loading found: records least recently seen first, what to write back, and problems in words. */
export interface LoadedRecords {
  readonly records: MachineRecord[]
  /** Records cut to RECORD_LIMITS at load: written back in their bounded form. */
  readonly rewrite: string[]
  /** Records dropped at load (invalid, or over the cap): removed from the store. */
  readonly remove: string[]
  readonly problems: string[]
}

/** Import `<legacyDir>/machines.json` if it is there, then read every record from the store. */
export async function loadMachineRecords(store: Store, opts: { legacyDir?: string | undefined; maxMachines: number; logger: Logger }): Promise<LoadedRecords> {
  const problems: string[] = []
  if (opts.legacyDir !== undefined) await importLegacy(store, join(opts.legacyDir, 'machines.json'), problems, opts.logger)
  const where = `${store.location} (${MACHINE_KIND})`
  const byMac = new Map<string, MachineRecord>()
  const rewrite: string[] = []
  const remove: string[] = []
  let invalid = 0
  for (const e of await store.list(MACHINE_KIND)) {
    const m = e.value
    if (recordCheck.Check(m) && m.mac === e.id) {
      if (boundRecord(m)) rewrite.push(m.mac)
      byMac.set(m.mac, m)
      continue
    }
    remove.push(e.id)
    if (++invalid <= MAX_LISTED_PROBLEMS) {
      const first = recordCheck.Check(m) ? { path: '/mac', message: `does not match its id ${e.id}` } : [...recordCheck.Errors(m)][0]
      problems.push(`${where}: ${e.id} skipped: ${first ? `${first.path || '/'} ${first.message}` : 'invalid'}`)
    }
  }
  if (invalid > MAX_LISTED_PROBLEMS) problems.push(`${where}: ${invalid - MAX_LISTED_PROBLEMS} more invalid records skipped`)
  if (rewrite.length > 0) problems.push(`${where}: ${rewrite.length} records held values over the record limits; cut to them`)
  // Least recently seen first: the order eviction needs (MachineStore keeps its map in it).
  const records = [...byMac.values()].sort((a, b) => (a.last_seen < b.last_seen ? -1 : a.last_seen > b.last_seen ? 1 : 0))
  // The cap applies to what was stored too: a store from a larger cap must not load whole.
  if (records.length > opts.maxMachines) {
    const drop = records.splice(0, records.length - opts.maxMachines)
    for (const r of drop) remove.push(r.mac)
    problems.push(`${where}: ${drop.length} least recently seen records dropped to keep ${opts.maxMachines} (the record cap)`)
  }
  return { records, rewrite, remove, problems }
}

/** Write `macs`' current records (or their removal, for MACs `current` no longer has), a transaction per BATCH. */
export async function writeMachineRecords(store: Store, macs: Iterable<string>, current: (mac: string) => MachineRecord | undefined, durable = false): Promise<void> {
  let ops: StoreOp[] = []
  const commit = async () => {
    await store.batch(ops, { durable })
    ops = []
  }
  for (const mac of macs) {
    const r = current(mac)
    ops.push(r === undefined ? { op: 'delete', kind: MACHINE_KIND, id: mac } : { op: 'put', kind: MACHINE_KIND, id: mac, value: r })
    if (ops.length >= BATCH) {
      await commit()
      await new Promise((resolve) => setImmediate(resolve))
    }
  }
  if (ops.length > 0) await commit()
}

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
  await writeMachineRecords(store, records.keys(), (mac) => records.get(mac) as MachineRecord, true)
  const kept = await retireLegacyFile(file)
  logger.info({ file, kept, machines: records.size }, `imported ${records.size} machine records from ${file} into ${store.location}; the old file is kept as ${kept}`)
}
