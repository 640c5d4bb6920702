/**
 * The etcd Store backend's options (etcd.ts re-exports them) and its etcd3 client as it sets it up: call deadlines,
 * fault handling tuned for leader elections, watch re-attach backoff, TLS; which gRPC failures mean the cluster did
 * not answer; a prefix's range end.
 *
 * etcd3 (with gRPC and its protobuf definitions) and cockatiel are loaded on first use, not when this module is
 * imported: store/index.ts re-exports the etcd backend, so every daemon imports this module, and most run on the
 * embedded store. Loaded eagerly they cost a daemon that never talks to etcd ~10 MB resident (4.3 MB of heap) and
 * 0.3-1.3 s of start-up (measured 2026-11-29, node 20, beside fastify, pino, prom-client, ajv and better-sqlite3).
 */
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import type * as Cockatiel from 'cockatiel'
import type * as Etcd3 from 'etcd3'
import type { IOptions } from 'etcd3'
import type { Logger } from '../host/log.js'

// Both packages ship CommonJS builds (etcd3 only that), so require() loads them synchronously, once, on first use.
const requireLazily = createRequire(import.meta.url)

/** The etcd3 package, loaded on the first call. */
export function etcd3(): typeof Etcd3 {
  return requireLazily('etcd3') as typeof Etcd3
}

/** cockatiel, loaded on the first call (the same CommonJS copy etcd3 itself uses). */
function cockatiel(): typeof Cockatiel {
  return requireLazily('cockatiel') as typeof Cockatiel
}

/** Client certificate files for an etcd cluster that requires TLS (etcd's --trusted-ca-file, --client-cert-auth). */
export interface EtcdTls {
  /** The CA that signed the members' certificates. */
  readonly caFile: string
  /** A client certificate and key, when the cluster checks clients (--client-cert-auth). */
  readonly certFile?: string
  readonly keyFile?: string
}

/** Options for openEtcdStore. */
export interface EtcdStoreOptions {
  /** Client URLs of the members (`http://10.0.0.5:2379`, `https://...` with `tls`). */
  readonly endpoints: readonly string[]
  /** Key prefix of every document (`/pxebox`): several pxebox fleets, or tests, share one cluster under others. */
  readonly prefix: string
  readonly tls?: EtcdTls
  /** How long one call waits for the cluster before StoreUnavailableError. Default 5 s. */
  readonly callTimeoutMs?: number
  /** etcd's --max-txn-ops of the cluster. Default 128, etcd's own default. */
  readonly maxTxnOps?: number
  readonly logger?: Logger
}

/** The smallest key after every key starting with `prefix` (etcd's range_end for a prefix). */
export function prefixEnd(prefix: string): Buffer {
  const b = Buffer.from(prefix)
  for (let i = b.length - 1; i >= 0; i--) {
    if (b[i]! < 0xff) {
      const end = Buffer.from(b.subarray(0, i + 1))
      end[i]!++
      return end
    }
  }
  return Buffer.from([0])
}

/** gRPC failures that mean "no answer from the cluster", not "the cluster said no". */
export function unreachable(err: unknown): boolean {
  const name = (err as Error)?.constructor?.name ?? ''
  return /GRPCUnavailable|GRPCDeadlineExceeded|GRPCCancelled|GRPCConnectFailed|BrokenCircuit|IsolatedCircuit|TaskCancelled/.test(name) || /ECONNREFUSED|Deadline exceeded|No connection established|UNAVAILABLE/i.test((err as Error)?.message ?? '')
}

/** etcd3's recoverable errors, less an answer too large for this client. */
const retryable = (err: Error): boolean => etcd3().isRecoverableError(err) && !/larger than max/i.test(err.message)

/** The options of the etcd3 client for `opts`. */
export function clientOptions(opts: EtcdStoreOptions): IOptions {
  const timeout = opts.callTimeoutMs ?? 5000
  const tls = opts.tls
  const { circuitBreaker, ConsecutiveBreaker, ExponentialBackoff, handleWhen, isBrokenCircuitError, retry } = cockatiel()
  return {
    hosts: [...opts.endpoints],
    dialTimeout: timeout,
    // Unary calls give up after the timeout so an outage answers as one (a 503, a logged wait), never a hang;
    // watch streams are long-lived and reconnect by themselves.
    defaultCallOptions: (context) => (context.isStream ? {} : { deadline: Date.now() + timeout }),
    // etcd3's default opens a member's circuit for 5 s after 3 failures, and retries only recoverable errors: during
    // a leader election every member fails a few calls ("no leader"), so all circuits opened at once and calls
    // failed for 5 s with a healthy quorum back after 0.5 s. A member's circuit here half-opens after 1 s, and a
    // call blocked by open circuits is retried (another member, backing off up to 1 s) like a recoverable error.
    faultHandling: {
      // An answer over the client's receive limit is refused by this client, not by a member (gRPC
      // RESOURCE_EXHAUSTED, which etcd3 counts as recoverable): every member would send it again, so it is neither
      // retried nor held against the member; the paged read asks again for less (etcd-range.ts). etcd's own
      // RESOURCE_EXHAUSTED ("too many requests") is still retried.
      host: () => circuitBreaker(handleWhen(retryable), { halfOpenAfter: 1000, breaker: new ConsecutiveBreaker(3) }),
      global: retry(
        handleWhen((err) => retryable(err) || isBrokenCircuitError(err)),
        { maxAttempts: 6, backoff: new ExponentialBackoff({ initialDelay: 50, maxDelay: 1000 }) },
      ),
      // A watch re-attaches within 2 s of etcd answering again (the default backs off to 30 s). etcd3 types this slot
      // as one backoff but uses, and defaults it to, a factory (`new ExponentialBackoff()`), so the factory is given.
      watchBackoff: new ExponentialBackoff({ initialDelay: 100, maxDelay: 2000 }) as unknown as NonNullable<IOptions['faultHandling']>['watchBackoff'],
    },
    ...(tls === undefined
      ? {}
      : {
          credentials: {
            rootCertificate: readFileSync(tls.caFile),
            ...(tls.keyFile === undefined ? {} : { privateKey: readFileSync(tls.keyFile) }),
            ...(tls.certFile === undefined ? {} : { certChain: readFileSync(tls.certFile) }),
          },
        }),
  }
}
