/**
 * The syslog UDP receiver (RFC 5426: one message per datagram, port 514): it rate-limits, decodes and hands each
 * line with its source address to a handler. It knows nothing about machines or timelines; the caller attributes
 * lines by source address.
 *
 * Installers and firmware send syslog from addresses pxebox does not control, so every datagram passes, cheapest
 * check first: a per-source token bucket, a global one, the size cap, the codec. Every drop is counted by reason in
 * `counters` (for the metrics endpoint); only malformed lines are logged (at debug, peer and line in base64), and
 * only after the rate limits, so a flood cannot turn into a log flood. The receive loop never dies on one datagram:
 * only a socket error ends the server.
 */
import { bindSocket, closeSocket } from '../host/udp-socket.js'
import { createSocket, type RemoteInfo } from 'node:dgram'
import { isIPv6 } from 'node:net'
import type { Logger } from '../host/log.js'
import { silentLogger } from '../host/log.js'
import { decode, defaultMaxLineBytes, type SyslogMessage } from './message.js'
import { readSocketDrops } from './kernel-drops.js'
import { createKeyedTokenBuckets, createTokenBucket, type TokenBucketLimits } from './rate-limit.js'

/** Called with every accepted line and the sender's address (IPv4-mapped IPv6 addresses given as plain IPv4). */
export type SyslogHandler = (message: SyslogMessage, sourceAddress: string) => void

/** Why a datagram was dropped; the keys of `SyslogCounters.dropped`. */
export type SyslogDropReason = 'rate_source' | 'rate_global' | 'oversized' | 'malformed' | 'handler_error'

/** Counts since start; the caller exports them as metrics. `received` = `accepted` + every drop. */
export interface SyslogCounters {
  received: number
  accepted: number
  dropped: Record<SyslogDropReason, number>
}

/** Receiver options; everything but where to listen has a default. */
export interface SyslogServerOptions {
  /** Address to bind (the PXE interface's address, or 0.0.0.0 / ::). */
  address: string
  /** UDP port: 514 in production, 0 in tests. */
  port: number
  /** Longest datagram accepted (default 2048, RFC 5424 section 6.1); longer ones are dropped as `oversized`. */
  maxLineBytes?: number
  /**
   * Per source address (default 200 lines/s, burst 1000: an installer writing package lines in bursts fits, a
   * looping sender does not).
   */
  perSource?: TokenBucketLimits
  /** All sources together (default 5000 lines/s, burst 10000): what the handler is asked to absorb at most. */
  global?: TokenBucketLimits
  /** Most source addresses tracked at once (default 4096); see createKeyedTokenBuckets. */
  maxSources?: number
  /** Milliseconds now, monotonic (default performance.now); tests step it. */
  now?: () => number
}

/** A running receiver. */
export interface SyslogServer {
  /** Where it listens (the bound port when 0 was asked). */
  readonly address: { address: string; port: number }
  /** Live counters (read them, do not write). */
  readonly counters: Readonly<SyslogCounters>
  /** How many source addresses have a rate-limit bucket now. */
  readonly trackedSources: number
  /**
   * Datagrams the kernel dropped because the socket buffer was full (never seen, so not in `counters`); reads /proc on
   * each call, for a metrics scrape. Undefined where /proc is not available.
   */
  kernelDrops(): number | undefined
  /** Resolves when the server has stopped: undefined after close(), the error after a socket error. */
  readonly closed: Promise<Error | undefined>
  close(): Promise<void>
}

/** Defaults of the limits, exported for config defaults and docs. */
export const syslogDefaults = {
  perSource: { ratePerSecond: 200, burst: 1000 },
  global: { ratePerSecond: 5000, burst: 10_000 },
  maxSources: 4096,
} as const

/** Binds the socket and serves until close() or a socket error. */
export async function startSyslogServer(
  opts: SyslogServerOptions,
  handler: SyslogHandler,
  logger: Logger = silentLogger,
): Promise<SyslogServer> {
  const log = logger.child({ proto: 'syslog' })
  const maxLineBytes = opts.maxLineBytes ?? defaultMaxLineBytes
  const now = opts.now ?? (() => performance.now())
  const perSource = createKeyedTokenBuckets(opts.perSource ?? syslogDefaults.perSource, opts.maxSources ?? syslogDefaults.maxSources)
  const global = createTokenBucket(opts.global ?? syslogDefaults.global, now())
  const counters: SyslogCounters = {
    received: 0,
    accepted: 0,
    dropped: { rate_source: 0, rate_global: 0, oversized: 0, malformed: 0, handler_error: 0 },
  }

  const socket = createSocket({ type: isIPv6(opts.address) ? 'udp6' : 'udp4' })
  await bindSocket(socket, opts.port, opts.address).catch(async (err: unknown) => {
    await closeSocket(socket)
    throw err
  })

  const receive = (msg: Buffer, rinfo: RemoteInfo): void => {
    counters.received++
    // A dual-stack socket reports IPv4 senders as ::ffff:a.b.c.d; attribution (TFTP, DHCP) uses the plain form.
    const source = rinfo.address.startsWith('::ffff:') ? rinfo.address.slice(7) : rinfo.address
    const t = now()
    if (!perSource.take(source, t)) {
      counters.dropped.rate_source++
      return
    }
    if (!global.take(t)) {
      counters.dropped.rate_global++
      return
    }
    if (msg.length > maxLineBytes) {
      counters.dropped.oversized++
      return
    }
    let message: SyslogMessage
    try {
      message = decode(msg, { maxBytes: maxLineBytes })
    } catch (err) {
      counters.dropped.malformed++
      log.debug({ err, peer: source, line: msg.toString('base64') }, 'dropped malformed syslog line')
      return
    }
    try {
      handler(message, source)
      counters.accepted++
    } catch (err) {
      counters.dropped.handler_error++
      // Not the sender's fault: a bug in the handler, so louder than a malformed line.
      log.warn({ err, peer: source }, 'syslog handler failed; line dropped')
    }
  }

  let closing = false
  let resolveClosed: (err: Error | undefined) => void = () => {}
  const closed = new Promise<Error | undefined>((r) => (resolveClosed = r))
  const shutdown = async (err?: Error): Promise<void> => {
    if (closing) return
    closing = true
    await closeSocket(socket)
    resolveClosed(err)
  }
  socket.on('message', (msg, rinfo) => {
    try {
      receive(msg, rinfo)
    } catch (err) {
      // Nothing above should throw (the handler is wrapped); this keeps an unforeseen bug from killing the daemon.
      log.warn({ err, peer: rinfo.address }, 'syslog receive failed; datagram dropped')
    }
  })
  socket.on('error', (err) => {
    log.error({ err }, 'syslog socket error; receiver stopping')
    void shutdown(err)
  })
  const bound = socket.address()
  log.info({ address: bound.address, port: bound.port }, 'syslog receiver listening')

  return {
    address: { address: bound.address, port: bound.port },
    counters,
    get trackedSources() {
      return perSource.size
    },
    kernelDrops: () => readSocketDrops(bound.address, bound.port),
    closed,
    close: () => shutdown(),
  }
}
