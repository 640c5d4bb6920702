/**
 * The daemon's catalog in one call: config.yaml's sources plus the API-written overlay (in the Store) loaded into
 * one BootStore, and the overlay editing that store. The overlay's files are read first, the store is built over
 * them, and only then is the editor made, bound to the store that exists: no late-bound reload.
 */
import type { Logger } from '../host/log.js'
import type { Store } from '../store/index.js'
import { bootOverlayOver, createBootStoreWithOverlay, mergeBootOverlay, readBootOverlay, type BootOverlay } from './overlay.js'
import type { BootStateOptions, LoadResult } from './state.js'
import type { BootStore } from './boot-store.js'
import { followOverlay } from './overlay-follow.js'

/** Options for openCatalog. */
export interface CatalogOptions {
  /** config.yaml's groups, profiles and folders (config/boot-sources.ts). */
  readonly sources: BootStateOptions
  /** Where API-written groups and profiles live. */
  readonly store: Store
  /** `<data_dir>/boot`, where an earlier pxebox kept them as files: imported once. */
  readonly legacyOverlayDir?: string
  readonly logger: Logger
  /** Quiet period before a watched change reloads (BootStoreOptions.debounceMs). */
  readonly debounceMs?: number
  /**
   * Follow the store's group/profile changes made by other appliances (catalog/overlay-follow.ts): for a store
   * shared between appliances (etcd). The embedded store has one writer, this process, so it is not followed.
   */
  readonly follow?: boolean
}

/** The running catalog. */
export interface Catalog {
  /** What the boot path reads (always a good state). */
  readonly store: BootStore
  /** API-written groups and profiles. */
  readonly overlay: BootOverlay
  /**
   * Load new config.yaml sources (SIGHUP) under the overlay. On failure the previous sources and state stay, and the
   * overlay keeps checking its edits against the previous sources.
   */
  reload(sources: BootStateOptions): Promise<LoadResult>
  /** Stop watching. */
  close(): void
}

/** Read the overlay, load everything (throws BootLoadError when config.yaml alone does not load) and watch. */
export async function openCatalog(opts: CatalogOptions): Promise<Catalog> {
  let sources = opts.sources
  // Read before the entries: a change committed while they are read is delivered again by the follow (and skipped
  // when already held), never missed.
  const readAt = opts.follow === true ? await opts.store.revision() : 0
  const files = await readBootOverlay(opts.store, opts.legacyOverlayDir, opts.logger)
  const store = await createBootStoreWithOverlay(
    sources,
    { merge: (base) => mergeBootOverlay(files, base) },
    opts.logger,
    opts.debounceMs === undefined ? {} : { debounceMs: opts.debounceMs },
  )
  const overlay = bootOverlayOver(files, {
    store: opts.store,
    base: () => sources,
    reload: (s) => store.reload(s),
    editGroups: (changes, next, commit) => store.editGroups(changes, next, commit),
    editFile: (kind, name, text, next, commit) => store.editFile(kind, name, text, next, commit),
    profiles: () => store.get().profiles,
    logger: opts.logger,
  })
  const follow = opts.follow === true ? followOverlay(opts.store, overlay, readAt + 1, opts.logger) : undefined
  return {
    store,
    overlay,
    async reload(next) {
      const result = await store.reload(overlay.merge(next))
      if (result.ok) sources = next
      return result
    },
    close: () => {
      follow?.close()
      store.close()
    },
  }
}
