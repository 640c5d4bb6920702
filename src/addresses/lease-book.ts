/**
 * The lease book: where the authoritative DHCP server's leases are kept and what decides that an address is a
 * client's. The server (boot/authoritative-service.ts) ACKs a REQUEST only once the book resolved its grant or renewal,
 * so what a book resolves is what survives a crash.
 *
 * Two books:
 * - the lease log (log-lease-book.ts, `<data_dir>/leases.log`), for one appliance: the local pool is the only judge
 *   of who gets an address, and an append with group commit is the cheapest durable write (bench/lease-commit.ts);
 * - the Store (store-lease-book.ts), for appliances sharing one store (etcd, issue 17): an address is claimed by a
 *   guarded create of its key, so of two appliances granting one address at once exactly one commits; leases
 *   granted elsewhere arrive through the store's watch.
 */
import type { LeaseRecord } from './lease-log.js'

/** A record a book dropped at open: in the log with its byte offset; in the store, a document that is no lease. */
export interface LeaseBookProblem {
  offset?: number
  reason: string
}

/** A lease book (see the file comment). Records are the lease log's: `mac` holds `ip` until `expires` (ms). */
export interface LeaseBook {
  /** `log` or `store`: for logs and the banner. */
  readonly backend: 'log' | 'store'
  /** The log file or the store's location, for messages. */
  readonly location: string
  /** Records the book dropped at open (a torn log tail, a store document that is no lease). */
  readonly problems: readonly LeaseBookProblem[]
  /** The latest record of `mac` (expired or ended too: the address stays its first choice). */
  byMac(mac: string): LeaseRecord | undefined
  /** The record of the client the book last gave `ip` to, expired or not. */
  byAddress(ip: string): LeaseRecord | undefined
  /** Every client's latest record. */
  all(): LeaseRecord[]
  /**
   * False while the book cannot commit (the store is unreachable): no new address can be granted, so the server
   * does not offer one. The log book is always up (a full disk shows on the write itself).
   */
  readonly up: boolean
  /**
   * A lease on an address the client does not hold yet (or held and let expire). Resolves once committed; rejects
   * with LeaseTakenError when another client holds the address (the server NAKs), with any other error when the
   * write failed (no ACK).
   */
  grant(record: LeaseRecord): Promise<void>
  /**
   * A longer lease on the address the client holds. As grant, except that the store book, when its store is
   * unreachable, keeps a renewal of a live lease in memory, resolves with `queued: true` and writes it once the
   * store is back (renewals of running machines do not stop with the store).
   */
  renew(record: LeaseRecord): Promise<{ queued: boolean }>
  /** The client gave `ip` back (RELEASE): its lease ends at `at`; resolves with the ended record, undefined if `mac` held another address. */
  release(mac: string, ip: string, at: number): Promise<LeaseRecord | undefined>
  /** The client found `ip` in use (DECLINE): as release. */
  decline(mac: string, ip: string, at: number): Promise<LeaseRecord | undefined>
  /** Frees the addresses of leases expired at `now` (the store's address keys); resolves with how many. */
  expire(now: number): Promise<number>
  /** Calls `listener` with each lease granted, renewed or ended elsewhere (another appliance); returns the unsubscribe. */
  onChange(listener: (record: LeaseRecord) => void): () => void
  close(): Promise<void>
}

/** Base of the lease book's errors; `code` is stable for callers and logs. */
export class LeaseBookError extends Error {
  override readonly name: string = 'LeaseBookError'
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message)
  }
}

/** Another client holds the address (granted here or at another appliance): the REQUEST gets a NAK. */
export class LeaseTakenError extends LeaseBookError {
  override readonly name: string = 'LeaseTakenError'
  constructor(
    readonly ip: string,
    readonly holder: string,
  ) {
    super('PXEBOX_LEASE_TAKEN', `${ip} is leased to ${holder}`)
  }
}

/**
 * The client was granted another address after this request was made (at another appliance, while this one's commit
 * waited out an etcd election): the request is stale, its client went on with the newer grant. Writing it would move
 * the client's lease away from the address it uses. A LeaseTakenError, so the server NAKs it (the client, whose xid
 * moved on, ignores the NAK).
 */
export class LeaseSupersededError extends LeaseTakenError {
  override readonly name: string = 'LeaseSupersededError'
  constructor(ip: string, mac: string, current: string) {
    super(ip, mac)
    this.message = `${mac} was granted ${current} after this request for ${ip} was made; the request is stale`
  }
}

/** The book could not commit (store unreachable, write failed): nothing was granted, no ACK may go out. */
export class LeaseUnavailableError extends LeaseBookError {
  override readonly name = 'LeaseUnavailableError'
  constructor(
    location: string,
    readonly reason: string,
  ) {
    super('PXEBOX_LEASE_UNAVAILABLE', `cannot commit a lease to ${location}: ${reason}`)
  }
}

/** The record of a lease that ends at `at` (a RELEASE or DECLINE): an earlier expiry stays. */
export function endedLease(record: LeaseRecord, at: number): LeaseRecord {
  return { ...record, expires: Math.min(record.expires, at), at }
}
