/**
 * The shared catalog (issue 17): with a store other appliances write to (etcd), the API-written groups and profiles
 * one appliance writes are served by every other within about a second. Each appliance follows the store's watch of
 * the `group` and `profile` kinds from the revision it read them at, and applies each change through the overlay
 * (BootOverlay.follow: checked like an API edit, one group re-indexed alone, a profile trial-loaded), so nothing
 * reloads whole. Changes apply one at a time, in revision order, after any API edit already queued.
 *
 * A watch the store can no longer serve (its history was compacted while this appliance was cut off) re-lists both
 * kinds, applies the difference, and watches again from the revision of that list.
 */
import { silentLogger, type Logger } from '../host/log.js'
import { StoreCompactedError, type Store, type StoreWatch } from '../store/index.js'
import type { BootOverlay, OverlayKind } from './overlay.js'

/** A running follow. */
export interface OverlayFollow {
  /** The revision of the last change applied (or of the list it started from). */
  revision(): number
  close(): void
}

const KINDS: readonly OverlayKind[] = ['group', 'profile']

/**
 * Follow `store`'s group and profile changes from `fromRevision` (the revision the overlay was read at, plus one)
 * into `overlay`.
 */
export function followOverlay(store: Store, overlay: Pick<BootOverlay, 'follow' | 'ids'>, fromRevision: number, logger: Logger = silentLogger): OverlayFollow {
  const log = logger.child({ component: 'boot-overlay' })
  let applied = fromRevision - 1
  let watches: StoreWatch[] = []
  let closed = false
  /** Bumped by each start: a failure of an older pair of watches (both fail together) is already handled. */
  let generation = 0

  const apply = (kind: OverlayKind, id: string, value: unknown, revision: number): void => {
    void overlay.follow(kind, id, value).then((result) => {
      if (revision > applied) applied = revision
      if (!result.ok) log.error({ kind, id, revision, errors: result.errors }, `shared ${kind} ${id} does not load on this appliance; not served here: ${result.errors.join('; ')}`)
    })
  }

  /** After a compacted watch: the store's entries now, applied as changes (removals for ids gone). */
  const relist = async (): Promise<void> => {
    const revision = await store.revision()
    // Profiles first: a listed group may name a profile that is new in the same list.
    for (const kind of ['profile', 'group'] as const) {
      const entries = await store.list(kind)
      const present = new Set(entries.map((e) => e.id))
      for (const e of entries) apply(kind, e.id, e.value, revision)
      for (const id of overlay.ids(kind)) if (!present.has(id)) apply(kind, id, undefined, revision)
    }
    start(revision + 1)
  }

  const failed = (gen: number, err: Error): void => {
    if (closed || gen !== generation) return
    generation++
    for (const w of watches) w.close()
    watches = []
    if (err instanceof StoreCompactedError) {
      log.warn({ err: err.message }, 'shared catalog: the store no longer has the changes since the last one applied; listing groups and profiles again')
    } else {
      log.warn({ err: err.message }, 'shared catalog: the store watch ended; listing groups and profiles again')
    }
    const retry = (): void => {
      if (closed) return
      relist().catch((again: Error) => {
        log.warn({ err: again.message }, 'shared catalog: listing failed; trying again in 2 s')
        setTimeout(retry, 2000).unref()
      })
    }
    retry()
  }

  const start = (from: number): void => {
    if (closed) return
    const gen = ++generation
    watches = KINDS.map((kind) => store.watch({ kind, fromRevision: from }, (e) => apply(kind, e.id, e.type === 'put' ? e.value : undefined, e.revision), (err) => failed(gen, err)))
  }

  start(fromRevision)
  return {
    revision: () => applied,
    close() {
      closed = true
      for (const w of watches) w.close()
      watches = []
    },
  }
}
