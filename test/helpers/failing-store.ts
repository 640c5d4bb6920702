/**
 * A Store that can be made unreachable (matchbox's BrokenStore, switchable): while `down` is set every call rejects
 * as an etcd client does when no member answers; watches of the store underneath keep running (a real outage would
 * end them, which the lease book also handles, and a test can `breakWatches()` for that). `watchDelayMs` delivers
 * each watch event that much later, in order, as a watch over the network does: SQLite's own watch arrives within
 * the same tick, which hides races that etcd's latency exposes.
 */
import { StoreError, type Store, type StoreWatch } from '../../src/store/index.js'

/** The wrapper: the Store plus the switch. */
export interface FailingStore extends Store {
  down: boolean
  /** Calls that were refused while down. */
  readonly refused: number
  /** Ends every watch opened through the wrapper with an error, as a lost connection does. */
  breakWatches(): void
}

/** Wraps `inner` (which stays the caller's to close). */
export function failingStore(inner: Store, opts: { watchDelayMs?: number } = {}): FailingStore {
  let refused = 0
  const watches = new Set<{ w: StoreWatch; onError?: (err: Error) => void }>()
  const gate = <T>(call: () => Promise<T>): Promise<T> => {
    if (!wrapper.down) return call()
    refused++
    return Promise.reject(new StoreError('PXEBOX_STORE_UNAVAILABLE', `store ${inner.location} unreachable (test: switched off)`))
  }
  const wrapper: FailingStore = {
    down: false,
    get refused() {
      return refused
    },
    backend: inner.backend,
    location: inner.location,
    problems: inner.problems,
    maxBatchOps: inner.maxBatchOps,
    get: (kind, id) => gate(() => inner.get(kind, id)),
    list: (kind) => gate(() => inner.list(kind)),
    page: (kind, popts) => gate(() => inner.page(kind, popts)),
    put: (kind, id, value, opts) => gate(() => inner.put(kind, id, value, opts)),
    create: (kind, id, value, opts) => gate(() => inner.create(kind, id, value, opts)),
    delete: (kind, id, opts) => gate(() => inner.delete(kind, id, opts)),
    batch: (ops, opts) => gate(() => inner.batch(ops, opts)),
    revision: () => gate(() => inner.revision()),
    watch(wopts, listener, onError) {
      const delay = opts.watchDelayMs
      const deliver: typeof listener = delay === undefined ? listener : (e) => void setTimeout(() => listener(e), delay)
      const entry: { w: StoreWatch; onError?: (err: Error) => void } = { w: inner.watch(wopts, deliver, onError), ...(onError === undefined ? {} : { onError }) }
      watches.add(entry)
      return {
        close() {
          watches.delete(entry)
          entry.w.close()
        },
      }
    },
    breakWatches() {
      for (const e of [...watches]) {
        e.w.close()
        watches.delete(e)
        e.onError?.(new StoreError('PXEBOX_STORE_UNAVAILABLE', 'watch connection lost (test)'))
      }
    },
    close: () => Promise.resolve(),
  }
  return wrapper
}
