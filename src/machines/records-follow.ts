/**
 * Following other appliances' machine writes (issue 17): with a shared store each appliance watches the `machine` and
 * `machine-timeline` kinds from the revision it loaded them at, as the overlay follower does for groups
 * (catalog/overlay-follow.ts), and hands each change to the machine store, which merges it into the record in memory
 * (machines/merge.ts). So `/v1/machines` on one appliance shows a machine another booted, with that one's timeline.
 *
 * One watch over the whole store, filtered here, rather than one per kind: a record and its timeline are written in
 * one batch (records-store.ts), and one watch delivers them in that order, the record first, so a timeline never
 * arrives for a machine this appliance has not been told of yet.
 *
 * Echoes: a change at or below the revision this appliance last wrote or read of that document is its own (or one it
 * already has) and is skipped; anything newer is merged, which is idempotent, so an echo that overtakes its own write's
 * answer costs one merge and changes nothing.
 *
 * A watch that ends (the outage layer ends consumers' watches when etcd goes; they wait for its return) starts again
 * from the revision after the last change seen, so the writes other appliances flushed after an outage arrive too. A
 * compacted watch lists both kinds again and merges every document.
 */
import { silentLogger, type Logger } from '../host/log.js'
import { StoreClosedError, StoreCompactedError, type Store, type StoreEntry, type StoreWatch } from '../store/index.js'
import { MACHINE_KIND, TIMELINE_KIND } from './records-store.js'

/** What the follow needs of the machine store. */
export interface RecordsFollowTarget {
  /** The revision this appliance last read or wrote of `mac`'s document of `kind`. */
  revision(kind: string, mac: string): number | undefined
  /** Another appliance changed `kind`/`mac` (entry undefined: removed it): merge into memory. */
  takeIn(kind: string, mac: string, entry: StoreEntry | undefined): void
}

/** A running follow. */
export interface RecordsFollow {
  /** The revision of the last change seen. */
  revision(): number
  close(): void
}

/** Pause before watching again after a watch ended for another reason than compaction (ms). */
const REWATCH_MS = 1000

/** Follow the machine kinds of `store` from `fromRevision` into `target`. */
export function followRecords(store: Store, target: RecordsFollowTarget, fromRevision: number, logger: Logger = silentLogger): RecordsFollow {
  const log = logger.child({ component: 'machines-follow' })
  let seen = fromRevision - 1
  let watch: StoreWatch | undefined
  let closed = false
  let timer: NodeJS.Timeout | undefined

  const change = (kind: string, id: string, entry: StoreEntry | undefined, revision: number): void => {
    if (revision > seen) seen = revision
    if (revision <= (target.revision(kind, id) ?? 0)) return
    try {
      target.takeIn(kind, id, entry)
    } catch (err) {
      log.warn({ err, kind, id, revision }, 'a machine record written by another appliance was not taken in')
    }
  }

  const relist = async (): Promise<void> => {
    const revision = await store.revision()
    for (const kind of [MACHINE_KIND, TIMELINE_KIND]) {
      for (const e of await store.list(kind)) change(kind, e.id, e, e.modRevision)
    }
    if (revision > seen) seen = revision
    start()
  }

  const start = (): void => {
    if (closed) return
    const w = store.watch(
      { fromRevision: seen + 1 },
      (e) => {
        if (e.kind !== MACHINE_KIND && e.kind !== TIMELINE_KIND) return
        const entry = e.type === 'put' ? { kind: e.kind, id: e.id, value: e.value, modRevision: e.revision, createRevision: e.revision } : undefined
        change(e.kind, e.id, entry, e.revision)
      },
      (err) => {
        if (closed || watch !== w || err instanceof StoreClosedError) return
        watch = undefined
        const again = (): void => {
          timer = undefined
          if (closed) return
          if (!(err instanceof StoreCompactedError)) return start()
          relist().catch((e: Error) => {
            log.warn({ err: e.message }, `machine records: listing after a compacted watch failed; trying again in ${REWATCH_MS} ms`)
            timer = setTimeout(again, REWATCH_MS)
            timer.unref()
          })
        }
        if (err instanceof StoreCompactedError) log.warn({ err: err.message }, 'machine records: the store no longer has the changes since the last one seen; listing them again')
        timer = setTimeout(again, err instanceof StoreCompactedError ? 0 : REWATCH_MS)
        timer.unref()
      },
    )
    watch = w
  }

  start()
  return {
    revision: () => seen,
    close() {
      closed = true
      clearTimeout(timer)
      watch?.close()
      watch = undefined
    },
  }
}
