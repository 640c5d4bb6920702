/**
 * The address tracker's table in the Store: one document (kind `observations`, id `table`), the tracker's snapshot
 * as observed.json held it. A `<data_dir>/observed.json` written by the release before the Store is imported on first
 * start and kept as `observed.json.migrated` (store/migrate.ts).
 *
 * A snapshot the tracker cannot restore (an older or damaged layout) is kept under `table.corrupt-<time>` for
 * inspection, reported, and tracking starts empty, as a corrupt observed.json was moved aside; a legacy file that does
 * not parse is moved aside as before (`observed.json.corrupt-<time>`, durable-file.ts).
 */
import { readJsonFile } from '../host/durable-file.js'
import type { Logger } from '../host/log.js'
import { stringifyFieldsInSlices } from '../host/json-slices.js'
import { RawJson, retireLegacyFile, type Store } from '../store/index.js'
import type { AddressTracker, TrackerSnapshot } from './tracker.js'

/** Store kind and id of the tracker's table. */
export const OBSERVATIONS_KIND = 'observations'
const TABLE = 'table'

const EMPTY: TrackerSnapshot = { version: 1, bindings: [], macSeen: [], uuids: [], servers: [], claims: [] }

/** Restore the tracker from the store (importing `legacyFile` once when it is there). Never throws for bad data. */
export async function loadObservations(store: Store, tracker: AddressTracker, log: Logger, legacyFile?: string): Promise<void> {
  if (legacyFile !== undefined) {
    const read = await readJsonFile(legacyFile)
    if (read.state === 'corrupt') {
      log.warn({ file: legacyFile, err: read.reason, moved_to: read.movedTo }, `observed address table ${legacyFile} is corrupt (${read.reason}); ${read.movedTo === undefined ? 'left in place' : `moved to ${read.movedTo}`}, not imported`)
    } else if (read.state === 'ok') {
      // Imported as it is: a table restore() refuses is then kept aside by the store load below, like any other.
      await store.put(OBSERVATIONS_KIND, TABLE, read.value, { durable: true })
      const kept = await retireLegacyFile(legacyFile)
      log.info({ file: legacyFile, kept }, `imported the observed address table from ${legacyFile} into ${store.location}; the old file is kept as ${kept}`)
    }
  }
  const entry = await store.get(OBSERVATIONS_KIND, TABLE)
  if (entry === undefined) return
  try {
    const snap = entry.value as TrackerSnapshot
    if (snap?.version !== 1 || !Array.isArray(snap.bindings)) throw new Error('not a version 1 address table')
    tracker.restore(snap)
    log.info({ store: store.location, bindings: snap.bindings.length }, 'observed address table loaded')
  } catch (err) {
    tracker.restore(EMPTY)
    const aside = `${TABLE}.corrupt-${new Date().toISOString().replace(/[:.]/g, '-')}`
    await store.batch([
      { op: 'put', kind: OBSERVATIONS_KIND, id: aside, value: entry.value },
      { op: 'delete', kind: OBSERVATIONS_KIND, id: TABLE },
    ])
    const reason = (err as Error).message
    log.warn({ store: store.location, err: reason, moved_to: aside }, `observed address table in ${store.location} is unusable (${reason}); kept as ${OBSERVATIONS_KIND} ${aside}, starting empty`)
  }
}

/**
 * Save the tracker's table (replacing the previous one), serialized a slice of entries at a time (json-slices.ts): a
 * flooded table stringified in one go held the event loop, and DHCP offers waited behind it.
 */
export async function saveObservations(store: Store, tracker: AddressTracker): Promise<void> {
  const text = await stringifyFieldsInSlices({ version: 1 }, Object.entries(tracker.snapshotFields()))
  await store.put(OBSERVATIONS_KIND, TABLE, new RawJson(text.toString('utf8')))
}
