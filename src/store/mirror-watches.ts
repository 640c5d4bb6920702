/**
 * Consumers' watches through the outage layer (mirrored.ts): each is the remote's own watch while the remote is up,
 * or waits, unattached, while it is down.
 *
 * - Opened while down, a watch waits and attaches when the remote is up again, from its `fromRevision` (or, given
 *   none, after the copy's revision when it was opened), so it misses nothing the remote holds. Ending it at once
 *   instead would spin a consumer that re-lists from the copy (which succeeds) and watches again, for the whole
 *   outage.
 * - Attached watches end with the layer's unavailable error when the remote goes down: resuming one without a gap needs
 *   what its consumer applied, and every consumer already handles an ended watch (compaction, a lost connection) by
 *   re-listing and watching again, which then waits.
 * - An attached watch that the remote itself ends as unreachable tells the layer (`onUnreachable`), which goes down.
 */
import type { Store, StoreWatch, WatchListener, WatchOptions } from './store.js'

interface ConsumerWatch {
  readonly opts: WatchOptions
  readonly listener: WatchListener
  /** The remote's watch; undefined while waiting for the remote. */
  w: StoreWatch | undefined
  fail(err: Error): void
}

/** The consumers' watches of one mirrored store. */
export interface ConsumerWatches {
  /** A consumer's watch: attached now when `up`, else from `from` (when `opts` names no revision) once attachAll runs. */
  open(opts: WatchOptions, listener: WatchListener, fail: (err: Error) => void, up: boolean, from: number): StoreWatch
  /** The remote is up: every waiting watch attaches. */
  attachAll(): void
  /** The remote went down: every attached watch ends with `err(reason)`; waiting ones keep waiting. */
  endAttached(err: () => Error): void
  /** Close them all, attached or waiting (the store closes). */
  closeAll(): void
}

/**
 * Watches over `remote`. `unreachable` tells a remote failure that means "no answer" from a refusal;
 * `onUnreachable` is called with such a failure before the consumer hears of it.
 */
export function consumerWatches(remote: Store, unreachable: (err: unknown) => boolean, onUnreachable: (err: Error) => void): ConsumerWatches {
  const watches = new Set<ConsumerWatch>()
  const attach = (c: ConsumerWatch): void => {
    const w = remote.watch(c.opts, c.listener, (err) => {
      if (c.w !== w || !watches.delete(c)) return
      if (unreachable(err)) onUnreachable(err)
      c.fail(err)
    })
    c.w = w
  }
  return {
    open(opts, listener, fail, up, from) {
      const c: ConsumerWatch = { opts: up || opts.fromRevision !== undefined ? opts : { ...opts, fromRevision: from }, listener, w: undefined, fail }
      watches.add(c)
      if (up) attach(c)
      return {
        close() {
          watches.delete(c)
          c.w?.close()
        },
      }
    },
    attachAll() {
      for (const c of watches) if (c.w === undefined) attach(c)
    },
    endAttached(err) {
      for (const c of [...watches]) {
        if (c.w === undefined) continue
        watches.delete(c)
        c.w.close()
        c.fail(err())
      }
    },
    closeAll() {
      for (const c of watches) c.w?.close()
      watches.clear()
    },
  }
}
