/**
 * The TFTP listener: takes requests on port 69, applies limits, resolves the file through a handler and starts one
 * transfer per request on a fresh socket bound to the same address (RFC 1350 section 4: a new TID per transfer).
 */
import type { RemoteInfo, SocketType } from 'node:dgram'
import { isIPv6 } from 'node:net'
import type { Logger } from '../log.js'
import { silentLogger } from '../log.js'
import { discardEvents, type EventSink } from '../events.js'
import { ErrorCode, Opcode, decode, errorPacket, peekOpcode, type RequestPacket } from './packet.js'
import { negotiate } from './options.js'
import { createFileHandler, TftpAccessError, type TftpFileHandler, type TftpFile, type VirtualFileRequest } from './files.js'
import { memorySource, diskSource, type BlockSource } from './reader.js'
import { runTransfer, type LossHook, type TransferResult } from './transfer.js'
import { bindUdp, openTransferSocket, type TransferSocket } from './transfer-socket.js'
import { loadNative } from '../native.js'
import { createRateLimiter } from './limits.js'

/** Options for startTftp. Either `fileHandler` or `root` must be given. */
export interface TftpServerOptions {
  /** Address to bind, the PXE address (never 0.0.0.0 on a multi-homed box). */
  address: string
  /** 69 in production; 0 picks a free port (tests). */
  port: number
  /** Serve this folder with the standard handler (prefixes, cache). */
  root?: string
  /** Generated files for the standard handler. */
  virtualFile?: (request: VirtualFileRequest) => Buffer | undefined | Promise<Buffer | undefined>
  /** A custom handler; replaces `root`. */
  fileHandler?: TftpFileHandler
  logger?: Logger
  events?: EventSink
  limits?: {
    /** Concurrent transfers; more are refused with ERROR 0 (default 500). */
    maxTransfers?: number
    /** New requests per client IP per second; more are refused with ERROR 0 (default 20). */
    maxRequestsPerClientPerSecond?: number
  }
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
}

/** A running TFTP server. */
export interface TftpServer {
  readonly address: string
  /** The bound port (useful when started with port 0). */
  readonly port: number
  /** Transfers in progress. */
  activeTransfers(): number
  /** Stops listening, aborts transfers in progress and waits for them to end. */
  close(): Promise<void>
}

interface Peer {
  address: string
  port: number
}

/** Starts the TFTP server. Rejects only when the listening socket cannot be bound. */
export async function startTftp(options: TftpServerOptions): Promise<TftpServer> {
  const logger = (options.logger ?? silentLogger).child({ proto: 'tftp' })
  const events = options.events ?? discardEvents
  const maxTransfers = options.limits?.maxTransfers ?? 500
  const rate = createRateLimiter(options.limits?.maxRequestsPerClientPerSecond ?? 20, 1000)
  const limits = {
    mtu: options.mtu ?? 1500,
    maxBlockSize: options.maxBlockSize ?? 1468,
    maxWindowSize: options.maxWindowSize ?? 32,
  }
  const initialMs = options.timeouts?.initialMs ?? 2000
  const maxMs = options.timeouts?.maxMs ?? 8000
  const retries = options.retries ?? 5
  let fileHandler = options.fileHandler
  if (!fileHandler) {
    if (options.root === undefined) throw new TypeError('startTftp needs root or fileHandler')
    fileHandler = createFileHandler(
      options.virtualFile ? { root: options.root, virtualFile: options.virtualFile } : { root: options.root },
    )
  }
  const handler = fileHandler
  const type: SocketType = isIPv6(options.address) ? 'udp6' : 'udp4'
  const listener = await bindUdp(type, options.address, options.port)
  if (options.transferSockets !== 'dgram' && loadNative().reason !== undefined) {
    // Correct either way; node:dgram costs about twice the CPU per packet, which lock-step transfers feel.
    logger.warn({ reason: loadNative().reason }, 'TFTP transfers use node:dgram: the native addon is unavailable')
  }
  const port = listener.address().port
  const transfers = new Set<{ abort(): void; done: Promise<unknown> }>()
  let reserved = 0
  let closing = false

  function record(peer: Peer, outcome: string, detail: Record<string, unknown>, mac?: string): void {
    const event = { time: new Date().toISOString(), kind: 'tftp' as const, ip: peer.address, step: 'file', outcome, detail }
    events.record(mac === undefined ? event : { ...event, mac })
  }

  function refuse(peer: Peer, code: number, message: string): void {
    const packet = errorPacket(code, message)
    if (options.lossHook && options.lossHook('out', packet)) return
    listener.send(packet, peer.port, peer.address)
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
        log.warn({ reason: err.message }, 'TFTP request refused')
        refuse(peer, ErrorCode.ACCESS_VIOLATION, 'Access violation')
        record(peer, 'refused', { file: request.filename, reason: err.message })
      } else {
        log.error({ err }, 'TFTP file handler failed')
        refuse(peer, ErrorCode.NOT_DEFINED, 'Internal error')
        record(peer, 'error', { file: request.filename, reason: 'handler failed' })
      }
      return
    }
    if (!file) {
      log.info('TFTP file not found')
      refuse(peer, ErrorCode.FILE_NOT_FOUND, 'File not found')
      record(peer, 'not-found', { file: request.filename })
      return
    }
    const negotiated = negotiate(request.options, file.size, { ...limits, ipv6: type === 'udp6' })
    let socket: TransferSocket
    let source: BlockSource
    try {
      socket = await openTransferSocket(type, options.address, peer, options.transferSockets)
    } catch (err) {
      log.error({ err }, 'TFTP could not open a transfer socket')
      refuse(peer, ErrorCode.NOT_DEFINED, 'Server error')
      record(peer, 'error', { file: file.name, reason: 'socket' }, file.mac)
      return
    }
    try {
      source = await openSource(file, negotiated.blksize)
    } catch (err) {
      socket.close()
      log.error({ err }, 'TFTP could not open the file')
      refuse(peer, ErrorCode.NOT_DEFINED, 'Read error')
      record(peer, 'error', { file: file.name, reason: 'open' }, file.mac)
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
    const detail: Record<string, unknown> = {
      file: file.name,
      bytes: result.bytes,
      blksize: negotiated.blksize,
      windowsize: negotiated.windowsize,
      duration_ms: Date.now() - started,
    }
    if (result.tsizeProbe) detail.tsize_probe = true
    if (!result.finalAck) detail.final_ack = false
    if (result.peerError) detail.peer_error = result.peerError
    const level = result.outcome === 'ok' || result.tsizeProbe ? 'debug' : 'info'
    log[level]({ outcome: result.outcome, ...detail }, 'TFTP transfer ended')
    record(peer, result.outcome, detail, file.mac)
  }

  function onRequest(request: RequestPacket, peer: Peer): void {
    if (request.op === 'wrq') {
      logger.info({ peer: peer.address, file: request.filename }, 'TFTP write request refused')
      refuse(peer, ErrorCode.ACCESS_VIOLATION, 'Write requests are not supported')
      record(peer, 'refused', { file: request.filename, reason: 'write request' })
      return
    }
    if (!rate.allow(peer.address)) {
      logger.warn({ peer: peer.address, file: request.filename }, 'TFTP request refused: client over its request rate')
      refuse(peer, ErrorCode.NOT_DEFINED, 'Too many requests, try again later')
      record(peer, 'refused', { file: request.filename, reason: 'rate limit' })
      return
    }
    const mode = request.mode.toLowerCase()
    if (mode !== 'octet') {
      logger.info({ peer: peer.address, file: request.filename, mode }, 'TFTP request refused: mode')
      if (mode === 'netascii') refuse(peer, ErrorCode.NOT_DEFINED, 'Only octet mode is supported, please retry in octet')
      else refuse(peer, ErrorCode.ILLEGAL_OPERATION, `Unknown transfer mode '${request.mode}'`)
      record(peer, 'refused', { file: request.filename, reason: `mode ${mode}` })
      return
    }
    if (reserved >= maxTransfers) {
      logger.warn({ peer: peer.address, file: request.filename, maxTransfers }, 'TFTP request refused: server busy')
      refuse(peer, ErrorCode.NOT_DEFINED, 'Server busy, try again later')
      record(peer, 'refused', { file: request.filename, reason: 'max transfers' })
      return
    }
    // Reserve the slot before any await so a burst cannot overshoot the limit.
    reserved++
    serve(request, peer, Date.now())
      .catch((err: unknown) => logger.error({ err, peer: peer.address }, 'TFTP transfer crashed'))
      .finally(() => reserved--)
  }

  listener.on('message', (msg: Buffer, rinfo: RemoteInfo) => {
    if (closing) return
    if (options.lossHook && options.lossHook('in', msg)) return
    const peer = { address: rinfo.address, port: rinfo.port }
    try {
      const packet = decode(msg)
      if (packet.op === 'rrq' || packet.op === 'wrq') onRequest(packet, peer)
      else logger.debug({ peer: `${peer.address}:${peer.port}`, op: packet.op }, 'TFTP ignored a non-request on the listener')
    } catch (err) {
      logger.debug({ err, peer: `${peer.address}:${peer.port}`, packet: msg.toString('base64') }, 'TFTP dropped a bad packet')
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
    async close() {
      closing = true
      rate.stop()
      await new Promise<void>((resolve) => listener.close(() => resolve()))
      const pending = [...transfers]
      for (const t of pending) t.abort()
      await Promise.all(pending.map((t) => t.done))
    },
  }
}
