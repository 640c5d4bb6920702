/**
 * The TFTP listener: takes requests on port 69, applies limits, resolves the file through a handler and starts one
 * transfer per request on a fresh socket bound to the same address (RFC 1350 section 4: a new TID per transfer).
 * Every request's end (served, refused, not found, failed, dropped) goes to the caller's transfer log; what a file name
 * means and who the client is are the caller's business (boot/tftp-files.ts for PXE), as in netboot's tftp package.
 */
import type { RemoteInfo, SocketType } from 'node:dgram'
import { isIPv6 } from 'node:net'
import type { Logger } from '../host/log.js'
import { silentLogger } from '../host/log.js'
import { ErrorCode, Opcode, decode, errorPacket, peekOpcode, type RequestPacket } from './packet.js'
import { negotiate } from './options.js'
import { TftpAccessError, type TftpFileHandler, type TftpFile } from './files.js'
import { createTftpFolder, folderHandler, type TftpFolder } from './folder.js'
import { memorySource, diskSource, type BlockSource } from './reader.js'
import { runTransfer, type LossHook, type TransferHandle, type TransferOutcome, type TransferResult } from './transfer.js'
import { bindUdp, openTransferSocket, type TransferSocket } from './transfer-socket.js'
import { loadNative, type NativeLoad } from '../host/native.js'
import { createRateLimiter, createSlotQuota } from './limits.js'
import { guardedSend, sendablePeer } from './send.js'
import { createLogGate } from '../host/log-limit.js'

/** How a request ended: a transfer's outcome, or what the listener answered instead of starting one. */
export type TftpOutcome = TransferOutcome | 'refused' | 'not-found' | 'dropped'

/** One line of the transfer log: a request that ended (or a datagram that was dropped). */
export interface TftpTransferEntry {
  /** ISO 8601 time it ended. */
  time: string
  /** The client's address as seen on the wire (spoofable; a dropped datagram's all the more). */
  peer: { address: string; port: number }
  /** The file: as the handler named it once found, else as requested; absent for a dropped datagram. */
  path?: string
  outcome: TftpOutcome
  /** Why it was refused, failed or dropped. */
  reason?: string
  /** Bytes the client acknowledged. */
  bytes?: number
  blksize?: number
  windowsize?: number
  /** From the request to the end of the transfer. */
  durationMs?: number
  /** The UEFI "ask the size, then ask again" probe. */
  tsizeProbe?: true
  /** The file was sent but the last ACK never came (not a failure, RFC 1350 section 6). */
  finalAck?: false
  /** The peer's ERROR when it aborted. */
  peerError?: { code: number; message: string }
  /** What the file handler attached to the file (TftpFile.tags). */
  tags?: Readonly<Record<string, string>>
}

/** Options for startTftp. Either `fileHandler` or `root` must be given. */
export interface TftpServerOptions {
  /** Address to bind, the PXE address (never 0.0.0.0 on a multi-homed box). */
  address: string
  /** 69 in production; 0 picks a free port (tests). */
  port: number
  /** Serve this folder as it is (folder.ts: no prefixes, no generated files). */
  root?: string
  /** What a request's file name means; replaces `root`. */
  fileHandler?: TftpFileHandler
  logger?: Logger
  /** The transfer log: called once per request when it ends, and per dropped datagram. Errors it throws are logged. */
  onTransfer?: (entry: TftpTransferEntry) => void
  limits?: {
    /** Concurrent transfers; more are refused with ERROR 0 (default 500). */
    maxTransfers?: number
    /** New requests per client IP per second; more are refused with ERROR 0 (default 20). */
    maxRequestsPerClientPerSecond?: number
    /** Concurrent transfers per client IP; more are refused with ERROR 0 (default 8). */
    maxTransfersPerClient?: number
    /** Largest RFC 2349 timeout a client may ask for, seconds; larger ones are not acknowledged (default 10). */
    maxClientTimeoutSeconds?: number
  }
  /**
   * Refusal log lines (and drops) let through per window; the rest are counted into one summary line per window
   * (defaults 10 per 60 s, so a refusal flood costs at most 11 warn lines a minute; log-limit.ts).
   */
  refusalLog?: { maxPerWindow?: number; windowMs?: number }
  /** Interface MTU bounding blksize (default 1500). */
  mtu?: number
  /** Cap on negotiated blksize (default 1468). */
  maxBlockSize?: number
  /** Cap on negotiated windowsize (default 32). */
  maxWindowSize?: number
  timeouts?: {
    /** First retransmit timeout when the client sets none (default 2000 ms, what PXE ROMs expect). */
    initialMs?: number
    /** Backoff ceiling (default 8000 ms). */
    maxMs?: number
  }
  /** Retransmissions of one window before giving up (default 5). */
  retries?: number
  /** Test hook: return true to drop a packet ('in' = from the client, 'out' = to it). */
  lossHook?: LossHook
  /** Transfer sockets: 'native' (the addon, when built; the default) or 'dgram' (node:dgram; transfer-socket.ts). */
  transferSockets?: 'native' | 'dgram'
  /** The native addon as the daemon loaded it; loaded here, once per server, when not given. */
  native?: NativeLoad
}

/** A running TFTP server. */
export interface TftpServer {
  readonly address: string
  /** The bound port (useful when started with port 0). */
  readonly port: number
  /** Transfers in progress. */
  activeTransfers(): number
  /**
   * Stops taking requests, ends each transfer in progress with ERROR 0 "Server shutting down" to its client, waits
   * for them to end, then closes the listener.
   */
  close(): Promise<void>
}

interface Peer {
  address: string
  port: number
}

/** What the peer of every transfer in progress is told when the server stops. */
const SHUTDOWN_MESSAGE = 'Server shutting down'

/** Starts the TFTP server. Rejects only when the listening socket cannot be bound. */
export async function startTftp(options: TftpServerOptions): Promise<TftpServer> {
  const logger = (options.logger ?? silentLogger).child({ proto: 'tftp' })
  const maxTransfers = options.limits?.maxTransfers ?? 500
  const rate = createRateLimiter(options.limits?.maxRequestsPerClientPerSecond ?? 20, 1000)
  // A PXE client has one or two transfers open (UEFI's tsize probe, then the fetch; iPXE fetches one file at a time).
  // 8 leaves room for probes a rebooting client abandoned, which hold their slot until they time out (~40 s).
  const perClient = createSlotQuota(options.limits?.maxTransfersPerClient ?? 8)
  const refusals = createLogGate({
    maxPerWindow: 10,
    windowMs: 60_000,
    ...options.refusalLog,
    onSummary: (s) =>
      logger.warn(
        { suppressed: s.suppressed, clients: s.sources, reasons: s.kinds },
        `TFTP suppressed ${s.suppressed} refusal log lines from ${s.sources}${s.sourcesCapped ? '+' : ''} clients in the last ${s.windowMs / 1000} s`,
      ),
  })
  const limits = {
    mtu: options.mtu ?? 1500,
    maxBlockSize: options.maxBlockSize ?? 1468,
    maxWindowSize: options.maxWindowSize ?? 32,
    maxTimeoutSeconds: options.limits?.maxClientTimeoutSeconds ?? 10,
  }
  const initialMs = options.timeouts?.initialMs ?? 2000
  const maxMs = options.timeouts?.maxMs ?? 8000
  const retries = options.retries ?? 5
  let fileHandler = options.fileHandler
  // The folder this server made for `root` (none for a given fileHandler): closed with the server.
  let ownFolder: TftpFolder | undefined
  if (!fileHandler) {
    if (options.root === undefined) throw new TypeError('startTftp needs root or fileHandler')
    ownFolder = createTftpFolder({ root: options.root })
    fileHandler = folderHandler(ownFolder)
  }
  const handler = fileHandler
  const type: SocketType = isIPv6(options.address) ? 'udp6' : 'udp4'
  const listener = await bindUdp(type, options.address, options.port)
  const native = options.transferSockets === 'dgram' ? {} : (options.native ?? loadNative())
  if (options.transferSockets !== 'dgram' && native.reason !== undefined) {
    // Correct either way; node:dgram costs about twice the CPU per packet, which lock-step transfers feel.
    logger.warn({ reason: native.reason }, 'TFTP transfers use node:dgram: the native addon is unavailable')
  }
  const port = listener.address().port
  const transfers = new Set<TransferHandle>()
  // Requests being served (file lookup, then the transfer): close() waits for them before closing the listener.
  const serving = new Set<Promise<void>>()
  let reserved = 0
  let closing = false
  let closed: Promise<void> | undefined

  async function shutdown(): Promise<void> {
    closing = true
    rate.stop()
    // RFC 1350 section 7: an ERROR ends a transfer; without one the client retries into silence until it gives up.
    for (const t of transfers) t.abort(SHUTDOWN_MESSAGE)
    // Requests still looking up their file see `closing` and are refused through the listener, so it closes last.
    await Promise.all([...serving])
    await new Promise<void>((resolve) => listener.close(() => resolve()))
    refusals.stop()
    ownFolder?.close()
  }

  /** One transfer log entry; a throwing callback costs a log line, never the server. */
  function record(peer: Peer, outcome: TftpOutcome, fields: Partial<TftpTransferEntry>, file?: TftpFile): void {
    if (!options.onTransfer) return
    const entry: TftpTransferEntry = { time: new Date().toISOString(), peer, outcome, ...fields }
    if (file?.tags !== undefined) entry.tags = file.tags
    try {
      options.onTransfer(entry)
    } catch (err) {
      logger.error({ err }, 'TFTP transfer log callback failed')
    }
  }

  /**
   * Whether to write a refusal (or drop) line: through the gate, so a flood of them costs one summary line per
   * window. Lines below the log level never reach it and so never use up the window's budget.
   */
  function admitRefusal(level: 'debug' | 'info' | 'warn' | 'error', peer: Peer, reason: string): boolean {
    return logger.isLevelEnabled(level) && refusals.admit(peer.address, reason)
  }

  function logRefusal(level: 'debug' | 'info' | 'warn', peer: Peer, reason: string, fields: Record<string, unknown>, msg: string): void {
    if (admitRefusal(level, peer, reason)) logger[level]({ peer: peer.address, ...fields }, msg)
  }

  /**
   * A datagram that cannot be answered (source port 0) or whose answer could not be sent: logged (through the gate)
   * and a 'dropped' entry, so it can be counted.
   */
  function drop(peer: Peer, reason: string, packet?: Buffer): void {
    logRefusal('debug', peer, reason, { port: peer.port, ...(packet ? { packet: packet.toString('base64') } : {}) }, 'TFTP dropped a datagram')
    record(peer, 'dropped', { reason })
  }

  /** The listener's only send path: never throws (send.ts), an unsendable answer is a counted drop. */
  function refuse(peer: Peer, code: number, message: string): void {
    const packet = errorPacket(code, message)
    if (options.lossHook && options.lossHook('out', packet)) return
    if (!guardedSend(listener, packet, peer)) drop(peer, 'unsendable reply')
  }

  async function openSource(file: TftpFile, blksize: number): Promise<BlockSource> {
    return Buffer.isBuffer(file.content) ? memorySource(file.content) : diskSource(file.content, blksize)
  }

  async function serve(request: RequestPacket, peer: Peer, started: number): Promise<void> {
    const log = logger.child({ peer: `${peer.address}:${peer.port}`, file: request.filename })
    let file: TftpFile | null
    try {
      const found = await handler({ filename: request.filename, peer })
      file = Buffer.isBuffer(found) ? { name: request.filename, size: found.length, content: found } : found
    } catch (err) {
      if (err instanceof TftpAccessError) {
        if (admitRefusal('warn', peer, 'access')) log.warn({ reason: err.message }, 'TFTP request refused')
        refuse(peer, ErrorCode.ACCESS_VIOLATION, 'Access violation')
        record(peer, 'refused', { path: request.filename, reason: err.message })
      } else {
        if (admitRefusal('error', peer, 'handler failed')) log.error({ err }, 'TFTP file handler failed')
        refuse(peer, ErrorCode.NOT_DEFINED, 'Internal error')
        record(peer, 'error', { path: request.filename, reason: 'handler failed' })
      }
      return
    }
    if (closing) {
      refuse(peer, ErrorCode.NOT_DEFINED, SHUTDOWN_MESSAGE)
      record(peer, 'refused', { path: request.filename, reason: 'shutting down' })
      return
    }
    if (!file) {
      if (admitRefusal('info', peer, 'not found')) log.info('TFTP file not found')
      refuse(peer, ErrorCode.FILE_NOT_FOUND, 'File not found')
      record(peer, 'not-found', { path: request.filename })
      return
    }
    const negotiated = negotiate(request.options, file.size, { ...limits, ipv6: type === 'udp6' })
    let socket: TransferSocket
    let source: BlockSource
    try {
      socket = await openTransferSocket(type, options.address, peer, native.addon)
    } catch (err) {
      log.error({ err }, 'TFTP could not open a transfer socket')
      refuse(peer, ErrorCode.NOT_DEFINED, 'Server error')
      record(peer, 'error', { path: file.name, reason: 'socket' }, file)
      return
    }
    try {
      source = await openSource(file, negotiated.blksize)
    } catch (err) {
      socket.close()
      log.error({ err }, 'TFTP could not open the file')
      refuse(peer, ErrorCode.NOT_DEFINED, 'Read error')
      record(peer, 'error', { path: file.name, reason: 'open' }, file)
      return
    }
    if (closing) {
      socket.close()
      await source.close().catch(() => undefined)
      refuse(peer, ErrorCode.NOT_DEFINED, SHUTDOWN_MESSAGE)
      record(peer, 'refused', { path: file.name, reason: 'shutting down' }, file)
      return
    }
    const timeoutMs = negotiated.timeoutMs ?? initialMs
    const transfer = runTransfer({
      socket,
      source,
      blksize: negotiated.blksize,
      windowsize: negotiated.windowsize,
      oack: negotiated.oack,
      tsizeRequested: negotiated.tsizeRequested,
      timeoutMs,
      maxTimeoutMs: Math.max(timeoutMs, maxMs),
      retries,
      logger: log,
      ...(options.lossHook ? { lossHook: options.lossHook } : {}),
    })
    transfers.add(transfer)
    const result: TransferResult = await transfer.done
    transfers.delete(transfer)
    const ended: Partial<TftpTransferEntry> = {
      path: file.name,
      bytes: result.bytes,
      blksize: negotiated.blksize,
      windowsize: negotiated.windowsize,
      durationMs: Date.now() - started,
    }
    if (result.tsizeProbe) ended.tsizeProbe = true
    if (!result.finalAck) ended.finalAck = false
    if (result.peerError) ended.peerError = result.peerError
    const level = result.outcome === 'ok' || result.tsizeProbe ? 'debug' : 'info'
    log[level](
      {
        outcome: result.outcome,
        file: file.name,
        bytes: result.bytes,
        blksize: negotiated.blksize,
        windowsize: negotiated.windowsize,
        duration_ms: ended.durationMs,
        ...(result.tsizeProbe ? { tsize_probe: true } : {}),
        ...(result.finalAck ? {} : { final_ack: false }),
        ...(result.peerError ? { peer_error: result.peerError } : {}),
      },
      'TFTP transfer ended',
    )
    record(peer, result.outcome, ended, file)
  }

  function onRequest(request: RequestPacket, peer: Peer): void {
    if (request.op === 'wrq') {
      logRefusal('info', peer, 'write request', { file: request.filename }, 'TFTP write request refused')
      refuse(peer, ErrorCode.ACCESS_VIOLATION, 'Write requests are not supported')
      record(peer, 'refused', { path: request.filename, reason: 'write request' })
      return
    }
    if (!rate.allow(peer.address)) {
      logRefusal('warn', peer, 'rate limit', { file: request.filename }, 'TFTP request refused: client over its request rate')
      refuse(peer, ErrorCode.NOT_DEFINED, 'Too many requests, try again later')
      record(peer, 'refused', { path: request.filename, reason: 'rate limit' })
      return
    }
    const mode = request.mode.toLowerCase()
    if (mode !== 'octet') {
      logRefusal('info', peer, 'mode', { file: request.filename, mode }, 'TFTP request refused: mode')
      if (mode === 'netascii') refuse(peer, ErrorCode.NOT_DEFINED, 'Only octet mode is supported, please retry in octet')
      else refuse(peer, ErrorCode.ILLEGAL_OPERATION, `Unknown transfer mode '${request.mode}'`)
      record(peer, 'refused', { path: request.filename, reason: `mode ${mode}` })
      return
    }
    if (reserved >= maxTransfers) {
      logRefusal('warn', peer, 'max transfers', { file: request.filename, maxTransfers }, 'TFTP request refused: server busy')
      refuse(peer, ErrorCode.NOT_DEFINED, 'Server busy, try again later')
      record(peer, 'refused', { path: request.filename, reason: 'max transfers' })
      return
    }
    // Reserve the slots before any await so a burst cannot overshoot the limits.
    if (!perClient.tryAcquire(peer.address)) {
      logRefusal('warn', peer, 'client quota', { file: request.filename }, 'TFTP request refused: client holds its share of transfers')
      refuse(peer, ErrorCode.NOT_DEFINED, 'Too many transfers from this client, try again later')
      record(peer, 'refused', { path: request.filename, reason: 'client quota' })
      return
    }
    reserved++
    const served: Promise<void> = serve(request, peer, Date.now())
      .catch((err: unknown) => logger.error({ err, peer: peer.address }, 'TFTP transfer crashed'))
      .finally(() => {
        reserved--
        perClient.release(peer.address)
        serving.delete(served)
      })
    serving.add(served)
  }

  listener.on('message', (msg: Buffer, rinfo: RemoteInfo) => {
    if (closing) return
    if (options.lossHook && options.lossHook('in', msg)) return
    const peer = { address: rinfo.address, port: rinfo.port }
    // Nothing can answer source port 0 (issue 13: answering it once crashed the daemon), so do no work for it.
    if (!sendablePeer(peer)) return drop(peer, 'source port 0', msg)
    try {
      const packet = decode(msg)
      if (packet.op === 'rrq' || packet.op === 'wrq') onRequest(packet, peer)
      else logger.debug({ peer: `${peer.address}:${peer.port}`, op: packet.op }, 'TFTP ignored a non-request on the listener')
    } catch (err) {
      logRefusal('debug', peer, 'malformed', { err, port: peer.port, packet: msg.toString('base64') }, 'TFTP dropped a bad packet')
      // A broken request still deserves an answer, so the client fails fast instead of retrying into silence.
      const opcode = peekOpcode(msg)
      if (opcode === Opcode.RRQ || opcode === Opcode.WRQ) {
        refuse(peer, ErrorCode.ILLEGAL_OPERATION, `Malformed request: ${(err as Error).message}`)
      }
    }
  })
  listener.on('error', (err) => logger.error({ err }, 'TFTP listener socket error'))

  logger.info({ address: options.address, port, ...limits, maxTransfers }, 'TFTP server listening')
  return {
    address: options.address,
    port,
    activeTransfers: () => reserved,
    close: () => (closed ??= shutdown()),
  }
}
