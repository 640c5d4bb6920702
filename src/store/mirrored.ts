/**
 * The outage layer of issue 17 ("Outage behaviour, safety first"): a Store over the shared store (etcd) that keeps
 * the last state it saw on local disk (mirror-copy.ts) and queues machine events while the shared store is
 * unreachable, so every consumer keeps using the one Store interface.
 *
 * - Reads (get, list, revision) answer from the copy, which the remote's watch keeps current: a running appliance
 *   keeps booting the machines it knows when etcd is gone, and one that restarts during an outage starts from the
 *   last state it saw instead of waiting. A write resolves once the watch brought it into the copy (at most
 *   `catchUpMs`), so a read after one's own write sees it.
 * - Revisions and watches are the remote's. A consumer's watch is the remote's watch (mirror-watches.ts): open ones
 *   end with StoreError PXEBOX_STORE_UNAVAILABLE when the remote goes down (the consumer re-lists, here from the
 *   copy, and watches again), and one opened while it is down waits and attaches when it is back, missing nothing.
 * - Writes go to the remote. While it is unreachable, unguarded writes whose every kind is in `queued` (machine
 *   records and timelines) are applied to the copy and appended to its outbox, then flushed in order when the remote
 *   answers (a write that now conflicts is logged, counted and dropped, never retried). Every other write (API
 *   groups/profiles, lease claims, anything guarded by `ifRevision`: its guard needs the current state, which an
 *   outage cannot promise) rejects with StoreError PXEBOX_STORE_UNAVAILABLE, which the API answers with 503.
 *   Queued-kind writes are serialized, so a write issued while the outage is being discovered cannot overtake one
 *   queued before it.
 * - `up` turns false on the first remote call or watch that fails as unreachable, or when the health probe (a cheap
 *   `revision()` every `probeMs`, while up too: etcd's watches reconnect silently, so an idle appliance would
 *   otherwise never notice an outage) fails; true after a probe succeeded and the outbox is flushed. One log line per
 *   change. It is the one health flag of a shared store: `pxebox_store_up`, the API's 503 and the banner read it.
 *
 * Bounds: the outbox holds at most `maxOutbox` writes (default 10,000; the daemon's machine writes are batches of at
 * most 500 records); beyond it the oldest are dropped, counted and logged. The copy holds what the remote holds
 * (bounded there: the machine record cap, the lease pool) plus the documents of queued writes.
 */
import type { Logger } from '../host/log.js'
import { silentLogger } from '../host/log.js'
import { openMirrorCopy, type MirrorCopy, type OutboxEntry } from './mirror-copy.js'
import { fillCopy } from './mirror-fill.js'
import { flushOutbox, type FlushHooks, type QueuedMerge } from './outbox-flush.js'
import { checkCurrent, checkKey, checkPage, StoreClosedError, StoreCompactedError, StoreConflictError, StoreError, type Store, type StoreHealth, type StoreEvent, type StoreOp, type StoreWatch, type WriteOptions } from './store.js'
import { consumerWatches } from './mirror-watches.js'

/** Options for openMirroredStore. */
export interface MirroredStoreOptions {
  /** The shared store (etcd); the mirrored store owns it and closes it. */
  readonly remote: Store
  /** The copy: `<data_dir>/store-cache.db`. */
  readonly file: string
  /** Kinds whose unguarded writes are queued during an outage (machine records and timelines). */
  readonly queued: readonly string[]
  /**
   * Kinds listed to fill a new copy, and re-listed when the remote compacted the history the copy needs (the copy's
   * own kinds are too). Without them a new copy watches from the remote's first revision.
   */
  readonly kinds?: readonly string[]
  readonly logger?: Logger
  /** How often the remote is probed (ms): its health while up, its return while down. Default 3000. */
  readonly probeMs?: number
  /**
   * Merges queued writes with what the remote holds when they are flushed (outbox-flush.ts), for kinds several
   * appliances write (machine records). Without it a flushed put replaces the remote's document.
   */
  readonly mergeQueued?: QueuedMerge
  /** The outbox bound (writes). Default 10,000. */
  readonly maxOutbox?: number
  /** How long a write waits for the watch to bring it into the copy (ms). Default 5000. */
  readonly catchUpMs?: number
  readonly now?: () => number
}

/** The Store plus the outage state. */
export interface MirroredStore extends Store, StoreHealth {
  /** Whether the shared store answers (and nothing is left to flush). */
  readonly up: boolean
  /** Writes waiting in the outbox. */
  readonly queuedWrites: number
  /** Queued writes dropped: over the outbox bound, or refused by the remote when flushed. */
  readonly droppedWrites: number
  /** The local copy: its file, the remote revision it holds, and when the remote last answered while it followed. */
  copyState(): { file: string; revision: number; currentAt: string | undefined }
}

/** How often at most `currentAt` is written while the remote answers (a meta row update in the copy). */
const CURRENT_EVERY_MS = 10_000

/** The error of a write or watch refused while the shared store is unreachable (the API's 503). */
export function storeUnavailable(location: string, what: string, reason?: string): StoreError {
  return new StoreError('PXEBOX_STORE_UNAVAILABLE', `the shared store ${location} is unreachable${reason === undefined ? '' : ` (${reason})`}: ${what} refused until it answers again`)
}

/** A failure that says the remote did not answer, as opposed to an answer (a conflict, a bad key, compaction). */
function unreachable(err: unknown): boolean {
  if (!(err instanceof StoreError)) return true
  return err.code === 'PXEBOX_STORE_UNAVAILABLE' || err.code === 'PXEBOX_STORE_WATCH'
}

const reasonOf = (err: unknown): string => (err instanceof Error ? err.message : String(err))

/** Opens the copy, then connects to `remote`; an unreachable remote leaves it down, serving the copy. */
export async function openMirroredStore(opts: MirroredStoreOptions): Promise<MirroredStore> {
  const { remote } = opts
  const copy = await openMirrorCopy(opts.file, `${remote.backend}:${remote.location}`)
  const store = mirroredStore(opts, copy)
  await store.start()
  return store
}

function mirroredStore(opts: MirroredStoreOptions, copy: MirrorCopy): MirroredStore & { start(): Promise<void> } {
  const { remote } = opts
  const log = (opts.logger ?? silentLogger).child({ component: 'store-mirror' })
  const now = opts.now ?? Date.now
  const queuedKinds = new Set(opts.queued)
  const maxOutbox = opts.maxOutbox ?? 10_000
  const catchUpMs = opts.catchUpMs ?? 5000
  const location = remote.location
  const listeners = new Set<(up: boolean) => void>()
  // A consumer's watch that the remote ends as unreachable takes the store down (markDown, below).
  const consumers = consumerWatches(remote, unreachable, (err) => markDown(err))
  let waiters: { revision: number; done: () => void }[] = []
  let buffered: StoreEvent[] = []
  let mirrorWatch: StoreWatch | undefined
  let up = false
  let downSince = now()
  let closed = false
  /** Set once the first connection was tried: its outcome is the start's log line, not a change. */
  let started = false
  let dropped = 0
  let flushed = 0
  let probe: NodeJS.Timeout | undefined
  let recovering = false
  let checking = false
  /** Changes of `up` so far. */
  let flips = 0
  let markedCurrent = 0
  /** A re-list after a compacted watch, while it runs. */
  let resyncing: Promise<void> | undefined
  // Queued-kind writes and the outbox flush run one at a time, in order.
  let chain: Promise<unknown> = Promise.resolve()
  const serial = <T>(fn: () => Promise<T>): Promise<T> => {
    const run = chain.then(fn)
    chain = run.catch(() => undefined)
    return run
  }

  const release = (): void => {
    const applied = copy.applied()
    const still = waiters.filter((w) => w.revision > applied)
    for (const w of waiters) if (w.revision <= applied) w.done()
    waiters = still
  }
  /** Remote events, coalesced per turn of the loop: one transaction, and a batch's events land together. */
  const applyBuffered = (): void => {
    if (buffered.length === 0 || closed) return
    copy.applyEvents(buffered)
    buffered = []
    release()
  }
  /** Resolves once the copy applied `revision` (or after catchUpMs, or at once when no watch feeds the copy). */
  const caughtUp = (revision: number): Promise<void> => {
    if (copy.applied() >= revision || mirrorWatch === undefined) return Promise.resolve()
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        waiters = waiters.filter((w) => w !== waiter)
        log.warn({ revision, applied: copy.applied() }, `the store watch has not delivered revision ${revision} after ${catchUpMs} ms; answering from the copy as it is`)
        resolve()
      }, catchUpMs)
      const waiter = { revision, done: () => (clearTimeout(timer), resolve()) }
      waiters.push(waiter)
    })
  }

  const setUp = (value: boolean, line: () => void): void => {
    if (up === value) return
    up = value
    flips++
    line()
    if (value) consumers.attachAll()
    for (const fn of listeners) fn(value)
  }

  const noteCurrent = (force = false): void => {
    const t = now()
    if (!force && t - markedCurrent < CURRENT_EVERY_MS) return
    markedCurrent = t
    copy.markCurrent(new Date(t))
  }

  /** While up: finds an outage that no consumer call is there to find (an idle appliance). */
  const checkHealth = async (): Promise<void> => {
    if (checking || closed) return
    checking = true
    const at = flips
    try {
      await remote.revision()
      if (up && !closed) noteCurrent()
    } catch (err) {
      // Only if nothing changed meanwhile: a probe that was slow to fail must not undo a recovery that followed.
      if (up && at === flips && unreachable(err)) markDown(err)
    } finally {
      checking = false
    }
  }
  const startProbe = (): void => {
    probe ??= setInterval(() => void (up ? checkHealth() : tryRecover()), opts.probeMs ?? 3000)
  }

  const startWatch = (): void => {
    mirrorWatch?.close()
    if (closed) return
    const w = remote.watch(
      { fromRevision: copy.applied() + 1 },
      (e) => {
        if (buffered.length === 0) setImmediate(applyBuffered)
        buffered.push(e)
      },
      (err) => {
        if (mirrorWatch !== w || closed) return
        mirrorWatch = undefined
        if (!(err instanceof StoreCompactedError)) return markDown(err)
        resyncing = resync('compacted')
          .catch((e: unknown) => markDown(e))
          .finally(() => (resyncing = undefined))
      },
    )
    mirrorWatch = w
  }

  /** A new copy, or the remote compacted past the copy: list every kind, then watch from that listing's revision. */
  const resync = async (why: 'new copy' | 'compacted'): Promise<void> => {
    const kinds = [...new Set([...(opts.kinds ?? []), ...copy.kinds()])]
    const filled = await fillCopy(remote, copy, kinds, () => closed)
    if (filled === undefined || closed) return
    const { revision, documents } = filled
    if (why === 'new copy') log.info({ revision, kinds, documents }, `a new copy of the shared store: listed ${kinds.length} kinds (${documents} documents) at revision ${revision}`)
    else log.info({ revision, kinds, documents }, `the shared store compacted the history this copy needed; listed ${kinds.length} kinds (${documents} documents) again at revision ${revision}`)
    startWatch()
    release()
  }

  const markDown = (err: unknown): void => {
    if (closed) return
    mirrorWatch?.close()
    mirrorWatch = undefined
    applyBuffered()
    for (const w of waiters) w.done()
    waiters = []
    consumers.endAttached(() => storeUnavailable(location, 'the watch', reasonOf(err)))
    setUp(false, () => {
      downSince = now()
      log.warn({ err: reasonOf(err) }, `the shared store ${location} is unreachable: serving reads from the local copy (revision ${copy.applied()}), queuing writes of ${[...queuedKinds].join(', ')}, refusing other writes`)
    })
    startProbe()
  }

  const flushHooks: FlushHooks = {
    flushed: () => void flushed++,
    refused(e, why) {
      dropped++
      log.warn({ ops: e.ops.map((op) => `${op.op} ${op.kind}/${op.id}`).slice(0, 10), queued_ops: e.ops.length }, `a write queued during the outage was refused by the shared store (${why}); dropped`)
    },
    unreachable,
  }

  /** Probe, flush the outbox in order, read back what was written locally, watch again: then up. */
  const recover = async (): Promise<void> => {
    await remote.revision()
    await serial(async () => {
      const queued = copy.queued()
      const before = flushed
      const droppedBefore = dropped
      await flushOutbox(copy, remote, flushHooks, opts.mergeQueued)
      for (const { kind, id } of copy.pending()) copy.settle(kind, id, await remote.get(kind, id))
      // A new copy with its kinds named is filled by listing them: a watch from revision 1 would replay the
      // remote's whole history (every heartbeat of every appliance, when etcd does not compact).
      if (copy.applied() === 0 && opts.kinds !== undefined) await resync('new copy')
      else startWatch()
      const target = await remote.revision()
      await resyncing
      await caughtUp(target)
      await resyncing
      if (mirrorWatch === undefined) throw storeUnavailable(location, 'recovery', 'the watch ended')
      noteCurrent(true)
      setUp(true, () => {
        const sent = flushed - before
        if (!started) return log.info({ revision: copy.applied(), flushed: sent }, `following the shared store ${location} from revision ${copy.applied()} (copy: ${copy.file})${sent > 0 ? `; ${sent} writes queued before the restart flushed` : ''}`)
        const s = ((now() - downSince) / 1000).toFixed(1)
        log.info({ down_s: Number(s), flushed: flushed - before, dropped: dropped - droppedBefore, queued }, `the shared store ${location} answers again after ${s} s; ${flushed - before} queued writes flushed${dropped > droppedBefore ? `, ${dropped - droppedBefore} dropped` : ''}`)
      })
    })
  }
  const tryRecover = async (): Promise<void> => {
    if (up || recovering || closed) return
    recovering = true
    try {
      await recover()
    } catch (err) {
      if (!unreachable(err)) log.warn({ err }, 'the shared store answered the probe but recovery failed; trying again')
      mirrorWatch?.close()
      mirrorWatch = undefined
    } finally {
      recovering = false
    }
  }

  const open = (): void => {
    if (closed) throw new StoreClosedError(location)
  }
  const validate = (ops: readonly StoreOp[]): void => {
    for (const op of ops) {
      checkKey(op.kind, op.id)
      if (op.op === 'put' && JSON.stringify(op.value) === undefined) throw new StoreError('PXEBOX_STORE_VALUE', `store value for ${op.kind}/${op.id} is not JSON data`)
    }
  }
  const queueable = (ops: readonly StoreOp[]): boolean => ops.length > 0 && ops.every((op) => queuedKinds.has(op.kind) && op.ifRevision === undefined)

  /** Apply locally and queue; the revision is the last one seen (a queued write has none of its own yet). */
  const enqueue = (call: OutboxEntry['call'], ops: readonly StoreOp[], wopts: WriteOptions): number | undefined => {
    if (call === 'create' && copy.get(ops[0]!.kind, ops[0]!.id) !== undefined) return undefined
    const effective = ops.filter((op) => op.op === 'put' || copy.get(op.kind, op.id) !== undefined)
    if (effective.length === 0) return undefined
    const over = copy.queue(call, ops, wopts, maxOutbox)
    if (over > 0) {
      dropped += over
      log.warn({ dropped: over, total_dropped: dropped, max_outbox: maxOutbox }, `the outbox is over its bound of ${maxOutbox} writes: the oldest ${over} dropped`)
    }
    return copy.applied()
  }

  /** One write: to the remote when it answers; queued or refused when it does not. */
  const write = async (call: 'create' | 'batch' | 'delete', ops: readonly StoreOp[], wopts: WriteOptions = {}): Promise<number | undefined> => {
    open()
    validate(ops)
    const direct = async (): Promise<number | undefined> => {
      const op = ops[0]!
      let revision: number | undefined
      try {
        revision = call === 'batch' ? await remote.batch(ops, wopts) : call === 'create' ? await remote.create(op.kind, op.id, op.op === 'put' ? op.value : undefined, wopts) : await remote.delete(op.kind, op.id, wopts)
      } catch (err) {
        // A writer that lost a compare-and-swap reads the document again: the copy must show the write that won.
        if (err instanceof StoreConflictError) await caughtUp(await remote.revision())
        throw err
      }
      // Nothing written (it exists, it was absent): the copy still has to show what the remote holds.
      await caughtUp(revision ?? (await remote.revision()))
      return revision
    }
    if (!queueable(ops)) {
      if (!up) throw storeUnavailable(location, `writing ${ops.map((op) => `${op.kind}/${op.id}`).slice(0, 3).join(', ')}`)
      try {
        return await direct()
      } catch (err) {
        if (!unreachable(err)) throw err
        markDown(err)
        throw storeUnavailable(location, `writing ${ops.map((op) => `${op.kind}/${op.id}`).slice(0, 3).join(', ')} (not confirmed)`, reasonOf(err))
      }
    }
    return serial(async () => {
      if (!up || copy.queued() > 0) return enqueue(call === 'create' ? 'create' : 'batch', ops, wopts)
      try {
        return await direct()
      } catch (err) {
        if (!unreachable(err)) throw err
        // It may have committed before the connection broke: replaying a put or delete is harmless, a replayed
        // create finds its own document and is dropped with a log line.
        markDown(err)
        return enqueue(call === 'create' ? 'create' : 'batch', ops, wopts)
      }
    })
  }

  return {
    backend: remote.backend,
    maxBatchOps: remote.maxBatchOps,
    location,
    get problems() {
      return [...remote.problems, ...copy.problems]
    },
    get up() {
      return up
    },
    get queuedWrites() {
      return copy.queued()
    },
    get droppedWrites() {
      return dropped
    },
    onUpChange(fn) {
      listeners.add(fn)
      return () => void listeners.delete(fn)
    },
    copyState: () => ({ file: copy.file, revision: copy.applied(), currentAt: copy.currentAt() }),
    async start() {
      try {
        await recover()
        started = true
      } catch (err) {
        started = true
        mirrorWatch?.close()
        mirrorWatch = undefined
        downSince = now()
        const at = copy.currentAt()
        log.warn(
          { err: reasonOf(err), copy: copy.file, revision: copy.applied(), current_at: at },
          `the shared store ${location} is unreachable at start: serving the last state seen from ${copy.file} (revision ${copy.applied()}${at === undefined ? '' : `, current at ${at}`}, ${copy.queued()} queued writes); probing every ${opts.probeMs ?? 3000} ms`,
        )
      }
      startProbe()
    },
    async get(kind, id) {
      open()
      return copy.get(kind, id)
    },
    async list(kind) {
      open()
      return copy.list(kind)
    },
    async page(kind, popts) {
      open()
      checkPage(kind, popts)
      checkCurrent(kind, popts.revision, copy.applied())
      const entries = copy.page(kind, popts.after, popts.limit + 1)
      const revision = copy.applied()
      if (entries.length <= popts.limit) return { entries, revision }
      entries.pop()
      return { entries, next: entries[entries.length - 1]!.id, revision }
    },
    async revision() {
      open()
      return copy.applied()
    },
    async put(kind, id, value, wopts) {
      return (await write('batch', [{ op: 'put', kind, id, value }], wopts))!
    },
    create: (kind, id, value, wopts) => write('create', [{ op: 'put', kind, id, value }], wopts),
    delete: (kind, id, wopts) => write('delete', [{ op: 'delete', kind, id }], wopts),
    async batch(ops, wopts) {
      open()
      if (ops.length === 0) return copy.applied()
      return (await write('batch', ops, wopts)) ?? copy.applied()
    },
    watch(wopts, listener, onError) {
      const fail = (err: Error): void => queueMicrotask(() => (onError ? onError(err) : log.warn({ err }, 'store watch ended')))
      if (closed) {
        fail(new StoreClosedError(location))
        return { close: () => undefined }
      }
      // Opened while down: it attaches when the remote is up, from where the copy stands now (nothing is missed).
      return consumers.open(wopts, listener, fail, up, copy.applied() + 1)
    },
    async close() {
      if (closed) return
      closed = true
      clearInterval(probe)
      mirrorWatch?.close()
      mirrorWatch = undefined
      if (up) noteCurrent(true)
      consumers.closeAll()
      for (const w of waiters) w.done()
      waiters = []
      await chain
      copy.close()
      await remote.close()
    },
  }
}
