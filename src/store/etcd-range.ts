/**
 * Ranged reads of the etcd backend (issues 16 and 17): a key range read in pages, every page at one revision.
 *
 * Why pages: etcd answers a range in one gRPC message, and the client refuses a message over its receive limit
 * (grpc-js: 4 MiB by default; "8 RESOURCE_EXHAUSTED: Received message larger than max"): one range over a kind of a
 * few thousand machine records failed, and etcd3 counts that error as recoverable, so it was first retried six
 * times. A page is a range with `limit`, the next one starts at the key after the last one returned (the last key
 * plus a 0 byte: etcd orders keys bytewise), and every page after the first reads at the first one's header revision
 * (`revision`), so the pages together are one snapshot, as a single range would have been. etcd keeps that
 * revision until it is compacted; a page that finds it compacted fails with StoreCompactedError.
 *
 * Page size: etcd's `limit` counts keys, the receive limit counts bytes. The first page asks for FIRST_PAGE keys (or,
 * given an earlier walk's bytes per key, as many as fit); each next one for as many as fit PAGE_BYTES at HEADROOM
 * times the last page's bytes per key, at most MAX_PAGE (etcd 3.4 reads every key of the remaining range's index per
 * page, so very large pages save little). An average, not the largest document seen: one 1 MiB document among
 * 100,000 small ones must not make every later page one key long. A page that still comes back too large (a run of
 * values far larger than the last page's) is asked again at half the size, down to one key, which always fits (etcd
 * refuses a value over --max-request-bytes, 1.5 MiB by default, at write); the client does not retry such an answer
 * (etcd-client.ts), so asking again costs one round trip.
 */
import type { IKeyValue, IRangeRequest, IRangeResponse } from 'etcd3'
import { StoreCompactedError, StoreError } from './store.js'

/** Keys asked for in the first page of a range, before any size is known. */
const FIRST_PAGE = 32
/** The most keys one page asks for. */
export const MAX_PAGE = 2000
/** What one page's keys and values should come to: 3 MiB, under grpc-js's default 4 MiB receive limit. */
const PAGE_BYTES = 3 * 1024 * 1024
/** Pages are sized for documents this many times the last page's average: a run of larger ones still fits. */
const HEADROOM = 2

/** One range call to etcd (the store's call wrapper: deadline, retry, errors translated). */
export type RangeCall = (req: IRangeRequest) => Promise<IRangeResponse>

/** What to read. */
export interface RangeWalk {
  /** The first key (inclusive). */
  readonly start: Buffer
  /** etcd's range_end (exclusive). */
  readonly end: Buffer
  /** Read at this revision; absent: the first page's header revision (the current one). */
  readonly revision?: number
  /** Stop after this many keys (Store.page's limit); absent: the whole range. */
  readonly maxKeys?: number
  /** Bytes per key (key and value) of an earlier walk's last page: the first page is sized by it. */
  readonly perKey?: number
}

/** Where a walk ended. */
export interface RangeWalked {
  /** The revision every page was read at. */
  readonly revision: number
  /** Whether keys are left in the range after the last one delivered (only when `maxKeys` stopped the walk). */
  readonly more: boolean
  /** Bytes per key of the last page read (or the hint): the next walk's `perKey`. */
  readonly perKey: number
}

const tooLarge = (err: unknown): boolean => /RESOURCE_EXHAUSTED|larger than max/i.test((err as Error)?.message ?? '')
const compacted = (err: unknown): boolean => /required revision has been compacted/i.test((err as Error)?.message ?? '')

/**
 * Read [start, end) in pages, calling `onPage` with each page's key-values in key order. Rejects with
 * StoreCompactedError when etcd compacted the walk's revision before its last page, and with the call's own error
 * otherwise (StoreUnavailableError, StoreError).
 */
export async function walkRange(call: RangeCall, walk: RangeWalk, onPage: (kvs: readonly IKeyValue[]) => void): Promise<RangeWalked> {
  let revision = walk.revision
  let from = walk.start
  let left = walk.maxKeys ?? Infinity
  let perKey = walk.perKey ?? 0
  const fit = (): number => Math.max(1, Math.min(MAX_PAGE, Math.floor(PAGE_BYTES / (HEADROOM * Math.max(1, perKey)))))
  let size = perKey > 0 ? fit() : FIRST_PAGE
  while (left > 0) {
    const limit = Math.min(size, left)
    let res: IRangeResponse
    try {
      res = await call({ key: from, range_end: walk.end, limit, ...(revision === undefined ? {} : { revision }) })
    } catch (err) {
      if (revision !== undefined && compacted(err)) throw new StoreCompactedError(revision, revision)
      if (!tooLarge(err)) throw err
      if (limit === 1) throw new StoreError('PXEBOX_STORE_ETCD', `one etcd key from ${from.toString()} is over the client's receive limit: ${(err as Error).message}`)
      size = Math.max(1, Math.floor(limit / 2))
      continue
    }
    revision ??= Number(res.header.revision)
    if (res.kvs.length > 0) perKey = res.kvs.reduce((n, kv) => n + kv.key.length + kv.value.length, 0) / res.kvs.length
    if (res.kvs.length > 0) onPage(res.kvs)
    left -= res.kvs.length
    const last = res.kvs[res.kvs.length - 1]
    if (!res.more || last === undefined) return { revision, more: false, perKey }
    from = Buffer.concat([last.key, Buffer.from([0])])
    size = fit()
  }
  return { revision: revision ?? 0, more: true, perKey }
}
