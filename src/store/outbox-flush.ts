/**
 * Sending the writes queued during an outage (mirror-copy.ts's outbox) to the shared store once it answers, oldest
 * first, one at a time: machine events reach the other appliances in the order they happened. A write the store
 * refuses (a queued create whose document another appliance made meanwhile, a value it will not take) is reported and
 * removed, never retried: the copy is read back from the store afterwards (mirrored.ts), so it shows what won. A
 * write the store does not answer stays first in the outbox and the flush stops; it runs again on the next probe.
 * A write whose answer was lost may already be in the store: a replayed put or delete is harmless, a replayed
 * create finds its own document and is reported as refused.
 *
 * Queued writes of documents that several appliances write (machine records: two appliances can boot one machine
 * during an outage) would overwrite each other's: a `merge` hook, supplied by the layer that owns those kinds (store/
 * knows no types), rewrites a queued batch against what the store holds now, each put guarded by the revision it read,
 * and a batch that conflicts (another writer between the read and the write) is merged and sent again, a bounded
 * number of times.
 */
import type { MirrorCopy, OutboxEntry } from './mirror-copy.js'
import { StoreConflictError, type Store, type StoreEntry, type StoreOp } from './store.js'

/**
 * Rewrites queued `ops` against the shared store's documents now (`read`): the ops to send, puts merged with what is
 * stored and guarded (`ifRevision`) by the revision read. Ops of kinds it does not own go through unchanged.
 */
export type QueuedMerge = (ops: readonly StoreOp[], read: (kind: string, id: string) => Promise<StoreEntry | undefined>) => Promise<readonly StoreOp[]>

/** Tries of one merged batch before it is refused (each conflict means another writer got in between). */
const MERGE_ATTEMPTS = 8

/** What the flush reports back. */
export interface FlushHooks {
  /** The store took `e`. */
  flushed(e: OutboxEntry): void
  /** The store refused `e` for good (it is dropped). */
  refused(e: OutboxEntry, why: string): void
  /** Whether `err` says the store did not answer (then the flush stops and rethrows it). */
  unreachable(err: unknown): boolean
}

/** Sends every queued write of `copy` to `remote`, in order; rejects with the first failure that is no answer. */
export async function flushOutbox(copy: MirrorCopy, remote: Store, hooks: FlushHooks, merge?: QueuedMerge): Promise<void> {
  for (let e = copy.nextQueued(); e !== undefined; e = copy.nextQueued()) {
    try {
      if (await send(remote, e, merge)) hooks.flushed(e)
      else hooks.refused(e, 'the document exists in the shared store')
    } catch (err) {
      if (hooks.unreachable(err)) throw err
      hooks.refused(e, err instanceof Error ? err.message : String(err))
    }
    copy.unqueue(e.seq)
  }
}

async function send(remote: Store, e: OutboxEntry, merge: QueuedMerge | undefined): Promise<boolean> {
  if (e.call === 'batch' && merge !== undefined) {
    for (let attempt = 1; ; attempt++) {
      try {
        await remote.batch(await merge(e.ops, (kind, id) => remote.get(kind, id)), e.opts)
        return true
      } catch (err) {
        if (!(err instanceof StoreConflictError) || attempt >= MERGE_ATTEMPTS) throw err
      }
    }
  }
  if (e.call === 'batch') {
    await remote.batch(e.ops, e.opts)
    return true
  }
  const op = e.ops[0]!
  return (await remote.create(op.kind, op.id, op.op === 'put' ? op.value : undefined, e.opts)) !== undefined
}
