/**
 * The shared catalog (issue 17): with a store other appliances write to (etcd), the API-written groups and profiles
 * one appliance writes are served by every other within about a second. Each appliance follows the store's watch of
 * the `group` and `profile` kinds from the revision it read them at, and applies each change through the overlay
 * (BootOverlay.follow: checked like an API edit, one group re-indexed alone, a profile trial-loaded), so nothing
 * reloads whole. Changes apply one at a time, in revision order, after any API edit already queued.
 *
 * The `ignition`/`generic` files profiles name are followed the same way. The kinds are separate watches, so a
 * profile can arrive before the file it names (or a group before its profile): a change that does not load is held,
 * not dropped, and tried again after each later change that applied, until it loads or a newer change of that
 * entry replaces it. Held changes are one per entry (kind and id), so they stay bounded by what the store holds.
 *
 * A watch the store can no longer serve (its history was compacted while this appliance was cut off) re-lists both
 * kinds, applies the difference, and watches again from the revision of that list.
 */
import { silentLogger, type Logger } from '../host/log.js'
import { StoreCompactedError, type Store, type StoreWatch } from '../store/index.js'
import type { BootOverlay, OverlayKind } from './overlay.js'
import { OVERLAY_KINDS } from './overlay-store.js'

/** A running follow. */
export interface OverlayFollow {
  /** The revision of the last change applied (or of the list it started from). */
  revision(): number
  close(): void
}

/** Files first, then profiles, then groups: on a re-list what an entry names is usually there before it. */
const RELIST_ORDER: readonly OverlayKind[] = ['ignition', 'generic', 'profile', 'group']

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
  /** Changes that did not load, by `kind id`: tried again after the next change that applies. */
  const held = new Map<string, { kind: OverlayKind; id: string; value: unknown; revision: number }>()
  /** Entries with a retry in flight, and those of them a newer change has overtaken (its outcome then decides). */
  const retrying = new Set<string>()
  const overtaken = new Set<string>()

  const apply = (kind: OverlayKind, id: string, value: unknown, revision: number, retry = false): void => {
    const key = `${kind} ${id}`
    // A newer change of the entry replaces a held one (the held one is then stale, never applied after it).
    if (!retry) {
      held.delete(key)
      if (retrying.has(key)) overtaken.add(key)
    } else retrying.add(key)
    void overlay.follow(kind, id, value).then((result) => {
      if (revision > applied) applied = revision
      const stale = retry && overtaken.delete(key)
      if (retry) retrying.delete(key)
      if (result.ok) {
        if (retry) log.info({ kind, id, revision }, `shared ${kind} ${id} loads now; served here`)
        retryHeld()
        return
      }
      if (stale) return
      const first = !retry
      held.set(key, { kind, id, value, revision })
      if (first) {
        log.error(
          { kind, id, revision, errors: result.errors },
          `shared ${kind} ${id} does not load on this appliance; held, not served, until a later change lets it load: ${result.errors.join('; ')}`,
        )
      }
    })
  }

  /** Try each held change again (once per applied change; one that still fails stays held, silently). */
  const retryHeld = (): void => {
    if (held.size === 0) return
    const again = [...held.values()]
    held.clear()
    for (const h of again) apply(h.kind, h.id, h.value, h.revision, true)
  }

  /** After a compacted watch: the store's entries now, applied as changes (removals for ids gone). */
  const relist = async (): Promise<void> => {
    const revision = await store.revision()
    for (const kind of RELIST_ORDER) {
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
    watches = OVERLAY_KINDS.map((kind) => store.watch({ kind, fromRevision: from }, (e) => apply(kind, e.id, e.type === 'put' ? e.value : undefined, e.revision), (err) => failed(gen, err)))
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
