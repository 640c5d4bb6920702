/**
 * The etcd Store backend (issue 17): the same documents as the embedded one, shared by every appliance that names the
 * same cluster and prefix. A document is the key `<prefix>/<kind>/<id>` with its JSON text as value, so etcdctl shows
 * what pxebox keeps (`etcdctl get --prefix /pxebox/group/`).
 *
 * The Store's semantics map onto etcd's own, which is why the interface was shaped this way (store.ts):
 * - the store revision is etcd's header revision (cluster-wide: a write under another prefix advances it too, so
 *   revisions are increasing but not consecutive), a document's modRevision/createRevision are its mod_revision and
 *   create_revision;
 * - `create` is `Txn(If(CreateRevision(key) == 0)).Then(Put)`; `batch` is one Txn, so all of its operations commit
 *   under one revision or none do, with a `ModRevision(key) == ifRevision` compare per guarded op (etcd refuses a
 *   Txn over --max-txn-ops, 128 by default: `maxBatchOps`; two operations on one key are merged, the last wins, as
 *   the embedded backend applies them);
 * - `watch` is an etcd watch on the kind's prefix from a start revision; the client re-attaches after a lost
 *   connection from the revision after the last event it delivered (not etcd3's own resume point, see startWatch). A start revision etcd compacted away cancels the watch; that is
 *   reported as StoreCompactedError (a range read at the revision tells compaction apart from other cancels).
 *   A watch without `fromRevision` starts after the latest revision this handle has seen (its open, its writes and
 *   reads), not at whatever etcd's revision is when the watch reaches it, so a change this handle writes right after
 *   `watch()` returned is never missed.
 *
 * A kind is read in pages at one revision (etcd-range.ts): one range answer over a few thousand machine records is
 * over the gRPC client's 4 MiB receive limit. `list` starts over when etcd compacts its revision midway.
 *
 * Durability: etcd commits through Raft to a quorum, each member fsyncing its WAL, for every write, so `durable` has
 * nothing to add. An unreachable cluster fails calls with StoreUnavailableError after the call deadline.
 */
import type { Etcd3, IEvent, IKeyValue, IRangeRequest, IRequestOp, IResponseHeader, Watcher } from 'etcd3'
import { silentLogger } from '../host/log.js'
import { clientOptions, etcd3, prefixEnd, unreachable, type EtcdStoreOptions } from './etcd-client.js'
import { walkRange } from './etcd-range.js'
import { checkKey, checkPage, StoreClosedError, StoreCompactedError, StoreConflictError, StoreError, StoreUnavailableError, type Store, type StoreEntry, type StoreEvent, type StorePage, type StoreOp, type StoreWatch, type WatchListener, type WatchOptions } from './store.js'

export type { EtcdStoreOptions, EtcdTls } from './etcd-client.js'

/** An open etcd store: the Store, plus the client for what only etcd has (leases: the appliance registry). */
export interface EtcdStore extends Store {
  readonly backend: 'etcd'
  /** The etcd3 client (shared connection); closed with the store. */
  readonly client: Etcd3
  /** `<prefix>/<kind>/<id>`, the key of a document. */
  key(kind: string, id: string): string
}

const text = (b: Buffer | string): string => (typeof b === 'string' ? b : b.toString('utf8'))

/**
 * Connect to the cluster and check it answers (a read of the current revision). Rejects with StoreUnavailableError
 * when no member answers within the call timeout, StoreError for bad options (a TLS file that cannot be read).
 */
export async function openEtcdStore(opts: EtcdStoreOptions): Promise<EtcdStore> {
  const store = connectEtcdStore(opts)
  try {
    await store.revision()
  } catch (err) {
    await store.close()
    throw err
  }
  return store
}

/**
 * The store over the cluster without a first round trip: every call, including the first, fails with
 * StoreUnavailableError while no member answers (the client connects on demand and keeps trying). For the outage
 * layer (mirrored.ts), which must start from its local copy when etcd is down at start. Throws StoreError for bad
 * options (the prefix, a TLS file that cannot be read).
 */
export function connectEtcdStore(opts: EtcdStoreOptions): EtcdStore {
  const prefix = opts.prefix.replace(/\/+$/, '')
  if (!/^\/[A-Za-z0-9_.@:/-]*$/.test(prefix) || prefix.includes('//')) throw new StoreError('PXEBOX_STORE_PREFIX', `etcd prefix "${opts.prefix}" must start with / and use only [A-Za-z0-9_.@:/-]`)
  const location = `etcd ${opts.endpoints.join(',')} ${prefix}`
  let client: Etcd3
  try {
    // etcd3 loads here, on the first store made (etcd-client.ts).
    client = new (etcd3().Etcd3)(clientOptions(opts))
  } catch (err) {
    throw new StoreError('PXEBOX_STORE_OPEN', `cannot set up the etcd client for ${location}: ${(err as Error).message}`)
  }
  return etcdStore(client, prefix, location, opts)
}

interface EtcdWatch {
  closed: boolean
  watcher: Watcher | undefined
  /** The revision after the last event delivered: where the watch stands. */
  next: number
}

function etcdStore(client: Etcd3, prefix: string, location: string, opts: EtcdStoreOptions): EtcdStore {
  const logger = (opts.logger ?? silentLogger).child({ component: 'store', backend: 'etcd' })
  const maxTxnOps = opts.maxTxnOps ?? 128
  const watches = new Set<EtcdWatch>()
  let closed = false
  /** The latest revision any answer to this handle carried: where a live watch starts. */
  let seen = 0
  /** Per kind, bytes per document of the last page read (etcd-range.ts): a Store.page then takes one round trip. */
  const perKey = new Map<string, number>()

  const key = (kind: string, id: string): string => `${prefix}/${kind}/${id}`
  const kindPrefix = (kind: string | undefined): string => (kind === undefined ? `${prefix}/` : `${prefix}/${kind}/`)
  const parse = (kv: IKeyValue): { kind: string; id: string } | undefined => {
    const rest = text(kv.key).slice(prefix.length + 1)
    const slash = rest.indexOf('/')
    return slash <= 0 ? undefined : { kind: rest.slice(0, slash), id: rest.slice(slash + 1) }
  }
  const note = (header: IResponseHeader): number => {
    const revision = Number(header.revision)
    if (revision > seen) seen = revision
    return revision
  }
  const open = (): void => {
    if (closed) throw new StoreClosedError(location)
  }
  /**
   * One call to etcd, its failure translated: unreachable, or the cluster's own refusal with its message. `retry`:
   * the call is idempotent (a read, a put, a delete) and is tried once more after a deadline or a lost member. A
   * write in flight at a follower when the leader dies waits for etcd's own request timeout (5 s + 2 election
   * timeouts) and may or may not have committed; the second try goes to a cluster with a new leader.
   */
  const call = async <T>(what: string, fn: () => Promise<T>, retry = true): Promise<T> => {
    open()
    for (let attempt = 0; ; attempt++) {
      try {
        return await fn()
      } catch (err) {
        if (err instanceof StoreError) throw err
        if (closed) throw new StoreClosedError(location)
        if (!unreachable(err)) throw new StoreError('PXEBOX_STORE_ETCD', `${location}: ${what} failed: ${(err as Error).message}`)
        if (!retry || attempt >= 1) throw new StoreUnavailableError(location, `${what}: ${(err as Error).message}`)
        // Debug, not warn: during an outage the outage layer's probe lands here every few seconds, and the outage
        // itself is logged once, by whoever sees it (mirrored.ts, the registry, the lease book).
        logger.debug({ err: (err as Error).message }, `etcd ${what}: no answer; trying once more`)
      }
    }
  }
  const encode = (op: StoreOp): IRequestOp => {
    if (op.op === 'delete') return { request_delete_range: { key: Buffer.from(key(op.kind, op.id)) } }
    const json = JSON.stringify(op.value)
    if (json === undefined) throw new StoreError('PXEBOX_STORE_VALUE', `store value for ${op.kind}/${op.id} is not JSON data`)
    return { request_put: { key: Buffer.from(key(op.kind, op.id)), value: Buffer.from(json) } }
  }
  const entry = (kv: IKeyValue): StoreEntry | undefined => {
    const where = parse(kv)
    if (where === undefined) return undefined
    return { ...where, value: JSON.parse(text(kv.value)) as unknown, modRevision: Number(kv.mod_revision), createRevision: Number(kv.create_revision) }
  }
  /** Documents of `kind` after `after` into `out`, in pages at one revision (etcd-range.ts). */
  const walk = async (kind: string, after: string | undefined, rev: number | undefined, maxKeys: number | undefined, out: StoreEntry[]) => {
    const from = kindPrefix(kind)
    const start = after === undefined ? Buffer.from(from) : Buffer.from(`${from}${after}\0`)
    const range = (req: IRangeRequest) => call(`list ${kind}`, () => client.kv.range(req))
    const hint = perKey.get(kind)
    const walked = await walkRange(range, { start, end: prefixEnd(from), ...(rev === undefined ? {} : { revision: rev }), ...(maxKeys === undefined ? {} : { maxKeys }), ...(hint === undefined ? {} : { perKey: hint }) }, (kvs) => {
      for (const kv of kvs) {
        const e = entry(kv)
        if (e !== undefined && e.kind === kind) out.push(e)
      }
    }).catch((err: unknown) => {
      if (/future revision/i.test((err as Error).message)) throw new StoreError('PXEBOX_STORE_REVISION', `a page of ${kind} at revision ${rev}: after etcd's current revision`)
      throw err
    })
    if (walked.revision > seen) seen = walked.revision
    perKey.set(kind, walked.perKey)
    return walked
  }
  const revision = (): Promise<number> =>
    call('read the revision', async () => note((await client.kv.range({ key: Buffer.from(`${prefix}/`), count_only: true })).header))

  /** Whether etcd compacted `rev` away: a read at a compacted revision fails with ErrCompacted. */
  const compactedAt = async (rev: number): Promise<boolean> => {
    try {
      await client.kv.range({ key: Buffer.from(`${prefix}/`), count_only: true, revision: rev })
      return false
    } catch (err) {
      if (/compacted/i.test((err as Error).message)) return true
      throw err
    }
  }

  const startWatch = (w: EtcdWatch, opts: WatchOptions, from: number, listener: WatchListener, fail: (err: Error) => void): void => {
    // The Watcher is built, and its listeners are on, before etcd answers. With etcd3's `create()` they went on a few
    // promise hops after the `created` answer, and a response queued right behind that answer (a busy prefix, a slow
    // reader) is emitted on process.nextTick, which runs before promise callbacks: it would have reached no one.
    // Not seen in a test (test/store/etcd.test.ts's burst test passed on the old code too): a window closed, not a
    // bug reproduced.
    const builder = client.watch().prefix(kindPrefix(opts.kind)).startRevision(String(from))
    // Fragments: a watch catching up sends up to 1,000 revisions in one response, which after 4 MiB of machine
    // records written while this appliance was away is over the gRPC client's receive limit; the stream then broke
    // and re-attached at the same revision, forever, and the copy never caught up. With `fragment` etcd (3.4+)
    // splits a response over --max-request-bytes (1.5 MiB) into several, each event whole; their events are
    // delivered as they come. etcd3's builder has no setter for it: its request is set before the watcher is made.
    ;(builder as unknown as { request: { fragment?: boolean } }).request.fragment = true
    const watcher = builder.watcher()
    w.watcher = watcher
    // A fragment may end inside a revision (a batch's events split between responses): the events of its last
    // revision wait for the next response, so a batch is delivered whole and `next` never points inside one.
    let held: IEvent[] = []
    watcher.on('data', (res) => {
      if (w.closed) return
      let events = held.length === 0 ? res.events : [...held, ...res.events]
      held = []
      if (res.fragment === true && events.length > 0) {
        const last = events[events.length - 1]!.kv.mod_revision
        let cut = events.length
        while (cut > 0 && events[cut - 1]!.kv.mod_revision === last) cut--
        held = events.slice(cut)
        events = events.slice(0, cut)
      }
      for (const ev of events) {
        const where = parse(ev.kv)
        if (where === undefined) continue
        const rev = Number(ev.kv.mod_revision)
        if (rev > seen) seen = rev
        w.next = rev + 1
        let event: StoreEvent
        if (ev.type === 'Delete') event = { type: 'delete', ...where, revision: rev }
        else {
          try {
            event = { type: 'put', ...where, value: JSON.parse(text(ev.kv.value)) as unknown, revision: rev }
          } catch (err) {
            logger.warn({ err, key: text(ev.kv.key) }, 'etcd value under the pxebox prefix is not JSON; skipped')
            continue
          }
        }
        try {
          listener(event)
        } catch (err) {
          logger.warn({ err, kind: event.kind, id: event.id }, 'store watch listener failed')
        }
      }
    })
    watcher.on('disconnected', (err: Error) => {
      if (w.closed) return
      // etcd3 re-attaches from the header revision of the last response it saw, plus one (Watcher.updateRevision),
      // and etcd stamps a response with its current revision, not its last event's: a watch still catching up on
      // history (etcd sends it 1,000 revisions per 100 ms round, each stamped with the newest revision; the
      // `created` answer moves it too) that lost its member resumed past events it never got. It resumes from the
      // revision after the last event it delivered instead; etcd3 re-attaches after this event.
      watcher.request.start_revision = String(w.next)
      held = []
      logger.warn({ err: err.message, kind: opts.kind, from: w.next }, 'etcd watch disconnected; it resumes from the revision after the last one it delivered when a member answers')
    })
    watcher.on('error', (err: Error) => void classify(err))
    const classify = async (err: Error): Promise<void> => {
      if (w.closed) return
      w.closed = true
      watches.delete(w)
      const at = w.next
      // etcd's cancel does not reach us with its compact_revision (the client drops it): `at` itself is the lower bound.
      const compacted = await compactedAt(at).catch(() => false)
      fail(compacted ? new StoreCompactedError(at, at) : new StoreError('PXEBOX_STORE_WATCH', `${location}: watch ended: ${err.message}`))
    }
  }

  const store: EtcdStore = {
    backend: 'etcd',
    location,
    problems: [],
    maxBatchOps: maxTxnOps,
    client,
    key,
    async get(kind, id) {
      checkKey(kind, id)
      const res = await call(`get ${kind}/${id}`, () => client.kv.range({ key: Buffer.from(key(kind, id)) }))
      note(res.header)
      return res.kvs[0] === undefined ? undefined : entry(res.kvs[0])
    },
    async list(kind) {
      checkKey(kind, 'x')
      for (let attempt = 1; ; attempt++) {
        const out: StoreEntry[] = []
        try {
          await walk(kind, undefined, undefined, undefined, out)
          return out
        } catch (err) {
          // A long listing whose revision etcd's auto-compaction removed: read it again at the current one.
          if (!(err instanceof StoreCompactedError) || attempt >= 3) throw err
        }
      }
    },
    async page(kind, popts): Promise<StorePage> {
      checkPage(kind, popts)
      const entries: StoreEntry[] = []
      const { revision, more } = await walk(kind, popts.after, popts.revision, popts.limit, entries)
      const last = entries[entries.length - 1]
      return more && last !== undefined ? { entries, next: last.id, revision } : { entries, revision }
    },
    async put(kind, id, value) {
      return store.batch([{ op: 'put', kind, id, value }])
    },
    async create(kind, id, value) {
      checkKey(kind, id)
      const put = encode({ op: 'put', kind, id, value })
      const k = Buffer.from(key(kind, id))
      const txn = () => client.kv.txn({ compare: [{ key: k, result: 'Equal', target: 'Create', create_revision: 0 }], success: [put], failure: [{ request_range: { key: k } }] })
      let res: Awaited<ReturnType<typeof txn>>
      let retried = false
      try {
        res = await call(`create ${kind}/${id}`, txn, false)
      } catch (err) {
        if (!(err instanceof StoreUnavailableError)) throw err
        // The first try may have committed without its answer reaching us: tried again, a key holding exactly
        // this value is taken as ours (the value names its writer: a lease names its MAC).
        retried = true
        res = await call(`create ${kind}/${id}`, txn, false)
      }
      const rev = note(res.header)
      if (res.succeeded) return rev
      const existing = res.responses[0]?.response_range?.kvs[0]
      if (retried && existing !== undefined && text(existing.value) === text(put.request_put!.value!)) return Number(existing.create_revision)
      return undefined
    },
    async delete(kind, id) {
      checkKey(kind, id)
      const res = await call(`delete ${kind}/${id}`, () => client.kv.deleteRange({ key: Buffer.from(key(kind, id)) }))
      const rev = note(res.header)
      return Number(res.deleted) > 0 ? rev : undefined
    },
    async batch(ops) {
      open()
      for (const op of ops) {
        checkKey(op.kind, op.id)
        if (op.ifRevision !== undefined && !(Number.isSafeInteger(op.ifRevision) && op.ifRevision >= 0)) {
          throw new StoreError('PXEBOX_STORE_REVISION', `ifRevision ${op.ifRevision} for ${op.kind}/${op.id} is not a revision (an integer >= 0)`)
        }
      }
      if (ops.length === 0) return revision()
      // etcd refuses a Txn that names one key twice; applied in order, the last operation on a key is what stays.
      const last = new Map<string, StoreOp>()
      for (const op of ops) {
        const k = key(op.kind, op.id)
        last.delete(k)
        last.set(k, op)
      }
      if (last.size > maxTxnOps) throw new StoreError('PXEBOX_STORE_BATCH', `a batch of ${last.size} operations is over etcd's --max-txn-ops (${maxTxnOps}); split it (Store.maxBatchOps)`)
      // ifRevision: a compare on mod_revision per guarded op (etcd compares an absent key's revisions as 0); the
      // failure branch reads the guarded keys back to say which guard failed and where the document is.
      const guarded = ops.filter((op) => op.ifRevision !== undefined)
      const compare = guarded.map((op) => ({ key: Buffer.from(key(op.kind, op.id)), result: 'Equal' as const, target: 'Mod' as const, mod_revision: op.ifRevision! }))
      const failure = guarded.map((op) => ({ request_range: { key: Buffer.from(key(op.kind, op.id)) } }))
      const success = [...last.values()].map(encode)
      // A guarded batch is not idempotent: one whose answer was lost must not be sent again (it would conflict with itself).
      const res = await call(`batch of ${success.length}`, () => client.kv.txn({ compare, success, failure }), guarded.length === 0)
      const rev = note(res.header)
      if (res.succeeded) return rev
      for (const [i, op] of guarded.entries()) {
        const actual = Number(res.responses[i]?.response_range?.kvs[0]?.mod_revision ?? 0)
        if (actual !== op.ifRevision) throw new StoreConflictError(op.kind, op.id, op.ifRevision!, actual)
      }
      throw new StoreError('PXEBOX_STORE_ETCD', `${location}: a guarded batch failed its compare, yet every guard reads as held (a concurrent change in between)`)
    },
    revision,
    watch(wopts: WatchOptions, listener: WatchListener, onError?: (err: Error) => void): StoreWatch {
      const from = wopts.fromRevision ?? seen + 1
      const w: EtcdWatch = { closed: false, watcher: undefined, next: from }
      const fail = (err: Error) => queueMicrotask(() => (onError ? onError(err) : logger.warn({ err }, 'store watch ended')))
      if (closed) {
        fail(new StoreClosedError(location))
        return { close: () => undefined }
      }
      if (wopts.kind !== undefined) checkKey(wopts.kind, 'x')
      watches.add(w)
      startWatch(w, wopts, from, listener, fail)
      return {
        close() {
          if (w.closed) return
          w.closed = true
          watches.delete(w)
          w.watcher?.cancel().catch(() => undefined)
        },
      }
    },
    async close() {
      if (closed) return
      closed = true
      await Promise.allSettled(
        [...watches].map((w) => {
          w.closed = true
          return w.watcher?.cancel()
        }),
      )
      watches.clear()
      client.close()
    },
  }
  return store
}
