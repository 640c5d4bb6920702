/**
 * A small TFTP read client for tests and benchmarks: blksize, tsize, timeout and windowsize (RFC 7440 receiver:
 * ACK at each window end, ACK the last in-order block on a gap), retransmission on silence, block-number rollover.
 * Also a raw UDP peer for scripted protocol sequences.
 */
import { createSocket, type Socket, type RemoteInfo } from 'node:dgram'
import { createHash } from 'node:crypto'
import { encode, decode, type TftpOption, type TftpPacket } from '../../src/tftp/packet.js'

/** The server answered with ERROR. */
export class TftpRemoteError extends Error {
  constructor(
    readonly tftpCode: number,
    readonly tftpMessage: string,
  ) {
    super(`TFTP ERROR ${tftpCode}: ${tftpMessage}`)
  }
}

/** What to fetch and how. */
export interface GetOptions {
  host: string
  port: number
  file: string
  mode?: string
  blksize?: number
  windowsize?: number
  tsize?: boolean
  /** RFC 2349 timeout option to request, seconds. */
  timeoutOption?: number
  /** Client-side retransmit interval (default 500 ms). */
  retransmitMs?: number
  /** Retransmissions without progress before failing (default 10). */
  retries?: number
  /** Keep the bytes (default true); the hash is always computed. */
  keepData?: boolean
  /** Local address to send from (default: any, the kernel picks), e.g. 127.0.0.2 to be a second client. */
  localAddress?: string
  /**
   * Filled with each in-order DATA block's round trip, ms: from the send of the packet that asked for it (the ACK of
   * the block before, or the RRQ/ACK 0 for block 1) to its arrival. Meaningful in lock-step (no windowsize).
   */
  blockRtts?: number[]
}

/** What was fetched. */
export interface GetResult {
  sha256: string
  bytes: number
  data?: Buffer
  /** The OACK options, or null when the server sent DATA 1 directly. */
  oack: Record<string, string> | null
  serverPort: number
  durationMs: number
}

/** Fetches one file. Rejects with TftpRemoteError on a server ERROR, or Error on timeout. */
export async function tftpGet(opts: GetOptions): Promise<GetResult> {
  const options: TftpOption[] = []
  if (opts.blksize !== undefined) options.push(['blksize', String(opts.blksize)])
  if (opts.tsize) options.push(['tsize', '0'])
  if (opts.timeoutOption !== undefined) options.push(['timeout', String(opts.timeoutOption)])
  if (opts.windowsize !== undefined) options.push(['windowsize', String(opts.windowsize)])
  const rrq = encode({ op: 'rrq', filename: opts.file, mode: opts.mode ?? 'octet', options })
  const retransmitMs = opts.retransmitMs ?? 500
  const retries = opts.retries ?? 10
  const keep = opts.keepData ?? true
  const type = opts.host.includes(':') ? 'udp6' : 'udp4'
  // Synchronous lookup for IP literals: sends go out at once, so the final ACK is on the wire before close().
  const socket = createSocket({ type, lookup: (host, _o, cb) => cb(null, host, type === 'udp6' ? 6 : 4) })
  await new Promise<void>((resolve) => socket.bind(0, opts.localAddress, resolve))
  const started = performance.now()
  const hash = createHash('sha256')
  const chunks: Buffer[] = []
  const ack = Buffer.from([0, 4, 0, 0])

  return new Promise<GetResult>((resolve, reject) => {
    let serverPort = -1
    let blksize = 512
    let windowsize = 1
    let oack: Record<string, string> | null = null
    let expected = 1 // absolute block number we want next
    let inWindow = 0
    let bytes = 0
    let silentTries = 0
    let dupAcked = false
    let lastSent: Buffer = rrq
    let done = false

    let closed = false
    const finish = (err: Error | null): void => {
      if (closed) return
      closed = true
      done = true
      clearInterval(timer)
      socket.close()
      if (err) return reject(err)
      const result: GetResult = { sha256: hash.digest('hex'), bytes, oack, serverPort, durationMs: performance.now() - started }
      if (keep) result.data = Buffer.concat(chunks)
      resolve(result)
    }
    let askedAt = 0
    const sendToServer = (buf: Buffer): void => {
      lastSent = buf
      askedAt = performance.now()
      socket.send(buf, serverPort === -1 ? opts.port : serverPort, opts.host)
    }
    const sendAck = (block: number): void => {
      ack.writeUInt16BE(block & 0xffff, 2)
      inWindow = 0
      sendToServer(ack)
    }
    let progressed = false
    const timer = setInterval(() => {
      if (progressed) {
        progressed = false
        silentTries = 0
        return
      }
      if (++silentTries > retries) return finish(new Error(`TFTP client: no answer after ${retries} retries (${bytes} bytes)`))
      // Silence: repeat what we last said (RRQ, or the ACK of the last in-order block).
      socket.send(lastSent, serverPort === -1 ? opts.port : serverPort, opts.host)
      inWindow = 0
    }, retransmitMs)

    socket.on('message', (msg: Buffer, rinfo: RemoteInfo) => {
      if (done) return
      if (serverPort === -1) serverPort = rinfo.port
      else if (rinfo.port !== serverPort) {
        socket.send(encode({ op: 'error', code: 5, message: 'Unknown transfer ID' }), rinfo.port, rinfo.address)
        return
      }
      const opcode = msg.length >= 2 ? msg.readUInt16BE(0) : 0
      if (opcode === 3 && msg.length >= 4) {
        const wire = msg.readUInt16BE(2)
        if (wire === (expected & 0xffff)) {
          const data = msg.subarray(4)
          opts.blockRtts?.push(performance.now() - askedAt)
          hash.update(data)
          if (keep) chunks.push(data)
          bytes += data.length
          progressed = true
          dupAcked = false
          const block = expected++
          if (data.length < blksize) {
            // Close only once the final ACK has left: closing first would drop it and leave the server waiting.
            ack.writeUInt16BE(block & 0xffff, 2)
            socket.send(ack, serverPort, opts.host, () => finish(null))
            done = true
            return
          }
          if (++inWindow >= windowsize) sendAck(block)
        } else if (!dupAcked) {
          // A gap or a repeat: say once where we are (RFC 7440 section 4), the server resends from there.
          dupAcked = true
          sendAck(expected - 1)
        }
        return
      }
      let packet: TftpPacket
      try {
        packet = decode(msg)
      } catch (err) {
        return finish(err as Error)
      }
      if (packet.op === 'error') return finish(new TftpRemoteError(packet.code, packet.message))
      if (packet.op === 'oack' && expected === 1 && oack === null) {
        oack = Object.fromEntries(packet.options.map(([k, v]) => [k.toLowerCase(), v]))
        if (oack.blksize) blksize = Number(oack.blksize)
        if (oack.windowsize) windowsize = Number(oack.windowsize)
        progressed = true
        sendAck(0)
      } else if (packet.op === 'oack') {
        sendAck(expected - 1)
      }
    })
    sendToServer(rrq)
  })
}

/** A raw UDP endpoint that queues what it receives, for scripted exchanges. */
export class UdpPeer {
  private readonly queue: Array<{ msg: Buffer; rinfo: RemoteInfo }> = []
  private waiter: (() => void) | undefined
  private constructor(readonly socket: Socket) {
    socket.on('message', (msg, rinfo) => {
      this.queue.push({ msg, rinfo })
      this.waiter?.()
    })
  }

  /** Binds a new peer on 127.0.0.1 (or `address`) with an ephemeral port. */
  static async open(address = '127.0.0.1'): Promise<UdpPeer> {
    const socket = createSocket('udp4')
    await new Promise<void>((resolve) => socket.bind(0, address, resolve))
    return new UdpPeer(socket)
  }

  get port(): number {
    return this.socket.address().port
  }

  send(packet: TftpPacket | Buffer, port: number, host = '127.0.0.1'): void {
    this.socket.send(Buffer.isBuffer(packet) ? packet : encode(packet), port, host)
  }

  /** The next datagram, decoded, or undefined after `timeoutMs` of silence. */
  async next(timeoutMs = 2000): Promise<{ packet: TftpPacket; rinfo: RemoteInfo } | undefined> {
    const deadline = Date.now() + timeoutMs
    while (this.queue.length === 0) {
      const left = deadline - Date.now()
      if (left <= 0) return undefined
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left)
        this.waiter = () => {
          clearTimeout(t)
          resolve()
        }
      })
      this.waiter = undefined
    }
    const { msg, rinfo } = this.queue.shift() as { msg: Buffer; rinfo: RemoteInfo }
    return { packet: decode(msg), rinfo }
  }

  close(): void {
    this.socket.close()
  }
}
