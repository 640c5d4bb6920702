/**
 * The Store: everything pxebox writes itself (machine records and timelines, install-once state, API-written groups
 * and profiles, authoritative leases when the store is shared; tracker observations are to follow) goes through this one interface, a namespaced document store shaped like
 * etcd's key space so the embedded backend (sqlite.ts) and the etcd backend (issue 17) pass one contract suite
 * (test/store/contract.ts):
 *
 * - documents are JSON values addressed by `kind` (a namespace: `machine`, `group`, ...) and `id`;
 * - every committed write advances one store-wide `revision` (etcd's header revision): all operations of one
 *   `batch` share it, and each document carries the revision of its last change (`modRevision`, etcd's mod_revision);
 * - `create` is create-if-absent (etcd's `Txn(If(CreateRevision(key) == 0)).Then(Put)`): of two writers racing on
 *   one id exactly one succeeds, which is what authoritative address allocation across appliances needs; a batch op
 *   may carry the same kind of guard (`ifRevision`, compare-and-swap on modRevision) so a claim and the records it
 *   goes with commit together;
 * - `watch` delivers every change from a revision on, in revision order, then live ones: a reader that remembers
 *   the last revision it applied resumes without a gap (etcd watch with start_revision). A backend keeps a bounded
 *   history; asking for a revision older than it kept fails with StoreCompactedError, as etcd's ErrCompacted.
 *
 * Values are plain data (what JSON.stringify keeps). The layers that own the types wrap this in typed facades
 * (machines/records-store.ts, catalog/overlay-store.ts); nothing here knows them.
 * Every method is async: the embedded backend answers synchronously inside, etcd over the network.
 */

/** One stored document. */
export interface StoreEntry {
  readonly kind: string
  readonly id: string
  readonly value: unknown
  /** The store revision that last changed it. */
  readonly modRevision: number
  /** The store revision that created it (a delete and a new put start again). */
  readonly createRevision: number
}

/** One change as a watcher sees it. `value` is absent for a delete. */
export type StoreEvent =
  | { readonly type: 'put'; readonly kind: string; readonly id: string; readonly value: unknown; readonly revision: number }
  | { readonly type: 'delete'; readonly kind: string; readonly id: string; readonly revision: number }

/**
 * One operation of a batch. `ifRevision` guards it: the document's current modRevision must equal it (0: the document
 * must be absent), else the whole batch writes nothing and rejects with StoreConflictError (etcd: a Txn with a
 * `ModRevision(key) == n` compare per guarded op). It is what a lease needs beyond create-if-absent: claiming an
 * address and writing the lease in one commit, and freeing an expired address only if nobody renewed it meanwhile
 * (addresses/store-lease-book.ts).
 */
export type StoreOp =
  | { readonly op: 'put'; readonly kind: string; readonly id: string; readonly value: unknown; readonly ifRevision?: number }
  | { readonly op: 'delete'; readonly kind: string; readonly id: string; readonly ifRevision?: number }

/** How strongly a write must be on disk when it resolves. */
export interface WriteOptions {
  /**
   * `true`: the write survives a power cut once it resolves (SQLite synchronous=FULL: the WAL is fsynced at commit),
   * for writes acknowledged to someone (an operator action, an install-once stamp). Default: survives a crash of
   * pxebox (kill -9) but a power cut may lose the last moments (synchronous=NORMAL in WAL mode), for boot events.
   */
  readonly durable?: boolean
}

/** Where a watch starts and what it sees. */
export interface WatchOptions {
  /** Only this kind (all kinds when absent). */
  readonly kind?: string
  /** Deliver changes with revision >= this first (history), then live ones. Absent: live changes only. */
  readonly fromRevision?: number
}

/** Where a page of one kind starts and how many documents it holds (Store.page). */
export interface PageOptions {
  /** Documents whose id sorts after this one (it need not exist); absent: from the first. */
  readonly after?: string
  /** The most documents in the page: an integer >= 1. */
  readonly limit: number
  /**
   * Read at this store revision, the `revision` of an earlier page, so that the pages of one listing are one snapshot
   * (etcd: a range at that revision). Absent: the current revision. A backend that no longer holds the state at that
   * revision fails with StoreCompactedError (etcd once compacted; the embedded store and the outage layer's copy hold
   * only their current state); a revision after the current one fails with StoreError PXEBOX_STORE_REVISION.
   */
  readonly revision?: number
}

/** One page of a kind. */
export interface StorePage {
  /** In id order (bytewise, as etcd orders keys). */
  readonly entries: StoreEntry[]
  /** The id to pass as `after` for the next page; absent when no document follows this page. */
  readonly next?: string
  /** The revision the page was read at: pass it as `revision` to read the next page from the same snapshot. */
  readonly revision: number
}

/** A running watch. */
export interface StoreWatch {
  /** Stop delivering; events already queued are dropped. */
  close(): void
}

/** Called for each change, in revision order; an error ends the watch (compacted history, a closed store). */
export interface WatchListener {
  (event: StoreEvent): void
}

/**
 * A store that knows whether its shared backend answers (the outage layer, mirrored.ts): its own calls may succeed
 * from a local copy while the backend is down, so a caller that must not act without the backend (a lease grant)
 * asks this rather than probing with a call.
 */
export interface StoreHealth {
  readonly up: boolean
  /** Calls `fn` on each change of `up`; returns the unsubscribe. */
  onUpChange(fn: (up: boolean) => void): () => void
}

/** The store's health when it reports one (the outage layer), else undefined (a call's failure is the signal). */
export function storeHealth(store: Store): StoreHealth | undefined {
  const h = store as Partial<StoreHealth>
  return typeof h.onUpChange === 'function' && typeof h.up === 'boolean' ? (store as Store & StoreHealth) : undefined
}

/** The document store every backend implements (see the file comment for the semantics). */
export interface Store {
  /** `sqlite`, `etcd`: for logs and the banner. */
  readonly backend: string
  /** Where it lives, for messages (`/var/lib/pxebox/pxebox.db`, an etcd prefix). */
  readonly location: string
  /** What opening found and set aside (a corrupt database moved away); empty when all was well. */
  readonly problems: readonly string[]
  /**
   * The most operations one `batch` may hold (etcd refuses a Txn over its --max-txn-ops, 128 by default; SQLite has
   * no such bound: Infinity). Writers of many independent documents split their work by it.
   */
  readonly maxBatchOps: number
  get(kind: string, id: string): Promise<StoreEntry | undefined>
  /** Every document of `kind`, in id order (one snapshot; etcd reads it in pages, see etcd-range.ts). */
  list(kind: string): Promise<StoreEntry[]>
  /**
   * Up to `limit` documents of `kind` after `after`, in id order: a kind too large for one answer (100,000 machine
   * records) read a page at a time. Throws StoreError PXEBOX_STORE_PAGE for a bad limit or `after`.
   */
  page(kind: string, opts: PageOptions): Promise<StorePage>
  /** Create or replace; resolves with the new revision. */
  put(kind: string, id: string, value: unknown, opts?: WriteOptions): Promise<number>
  /** Create only if absent; resolves with the new revision, or undefined when the id exists (nothing written). */
  create(kind: string, id: string, value: unknown, opts?: WriteOptions): Promise<number | undefined>
  /** Remove; resolves with the new revision, or undefined when there was nothing to remove. */
  delete(kind: string, id: string, opts?: WriteOptions): Promise<number | undefined>
  /**
   * All operations or none, under one revision (returned); the current revision when `ops` is empty (or changes
   * nothing). Rejects with StoreConflictError, writing nothing, when an op's `ifRevision` does not hold.
   */
  batch(ops: readonly StoreOp[], opts?: WriteOptions): Promise<number>
  /** The latest committed revision (0 for an empty store). */
  revision(): Promise<number>
  /**
   * Deliver changes to `listener` (see WatchOptions). `onError` gets StoreCompactedError when `fromRevision` is older
   * than the kept history; no event is delivered then.
   */
  watch(opts: WatchOptions, listener: WatchListener, onError?: (err: Error) => void): StoreWatch
  /** Finish pending work and close; later calls reject with StoreClosedError. */
  close(): Promise<void>
}

/** Base of the store's errors; `code` is stable for callers and logs. */
export class StoreError extends Error {
  override readonly name: string = 'StoreError'
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message)
  }
}

/** A watch asked for history the backend no longer keeps (etcd ErrCompacted). */
export class StoreCompactedError extends StoreError {
  override readonly name = 'StoreCompactedError'
  constructor(
    readonly requested: number,
    readonly compacted: number,
    what = `a watch from revision ${requested}`,
  ) {
    super('PXEBOX_STORE_COMPACTED', `store history before revision ${compacted + 1} is compacted; ${what} cannot be served (list and watch from the current revision)`)
  }
}

/** A batch whose `ifRevision` guard did not hold: another writer changed (or created, or removed) the document. */
export class StoreConflictError extends StoreError {
  override readonly name = 'StoreConflictError'
  constructor(
    readonly kind: string,
    readonly id: string,
    readonly expected: number,
    readonly actual: number,
  ) {
    super('PXEBOX_STORE_CONFLICT', `store document ${kind}/${id} is at revision ${actual}, the batch expected ${expected}${expected === 0 ? ' (absent)' : ''}; nothing was written`)
  }
}

/**
 * The backend cannot be reached (etcd: no member answered within the call deadline). Nothing was written, or, for a
 * write whose answer was lost, it may have been: callers retry idempotent writes only.
 */
export class StoreUnavailableError extends StoreError {
  override readonly name = 'StoreUnavailableError'
  constructor(location: string, reason: string) {
    super('PXEBOX_STORE_UNAVAILABLE', `the store at ${location} is unreachable: ${reason}`)
  }
}

/** A call on a closed store. */
export class StoreClosedError extends StoreError {
  override readonly name = 'StoreClosedError'
  constructor(location: string) {
    super('PXEBOX_STORE_CLOSED', `the store at ${location} is closed`)
  }
}

/** Kinds and ids are path-like keys in etcd: a safe alphabet keeps them one segment each. */
export const STORE_KEY = /^[A-Za-z0-9_@:.-]{1,200}$/

/** Throws StoreError for a kind or id that is not one STORE_KEY segment. */
export function checkKey(kind: string, id: string): void {
  if (!STORE_KEY.test(kind)) throw new StoreError('PXEBOX_STORE_KEY', `store kind "${kind}" is not 1-200 of [A-Za-z0-9_@:.-]`)
  if (!STORE_KEY.test(id)) throw new StoreError('PXEBOX_STORE_KEY', `store id "${id}" (kind ${kind}) is not 1-200 of [A-Za-z0-9_@:.-]`)
}

/** Throws StoreError PXEBOX_STORE_PAGE for page options no backend can serve (the kind and `after` as keys). */
export function checkPage(kind: string, opts: PageOptions): void {
  if (!Number.isSafeInteger(opts.limit) || opts.limit < 1) throw new StoreError('PXEBOX_STORE_PAGE', `a page of ${kind} needs a limit that is an integer >= 1, not ${opts.limit}`)
  if (opts.after !== undefined && !STORE_KEY.test(opts.after)) throw new StoreError('PXEBOX_STORE_PAGE', `a page of ${kind} cannot start after "${opts.after}": not 1-200 of [A-Za-z0-9_@:.-]`)
  if (opts.revision !== undefined && !(Number.isSafeInteger(opts.revision) && opts.revision >= 0)) throw new StoreError('PXEBOX_STORE_REVISION', `a page of ${kind} at revision ${opts.revision}: not a revision (an integer >= 0)`)
  checkKey(kind, 'x')
}

/**
 * For a store that holds only its current state (the embedded one, the outage layer's copy): a page asked at another
 * revision fails as etcd's does at a compacted or future one.
 */
export function checkCurrent(kind: string, asked: number | undefined, current: number): void {
  if (asked === undefined || asked === current) return
  if (asked > current) throw new StoreError('PXEBOX_STORE_REVISION', `a page of ${kind} at revision ${asked}: the store is at revision ${current}`)
  throw new StoreCompactedError(asked, current - 1, `a page of ${kind} at revision ${asked}`)
}
