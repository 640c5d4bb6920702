/**
 * One TFTP read transfer: OACK handshake, windowed DATA (RFC 7440), ACK handling and retransmission with backoff.
 *
 * Blocks are numbered absolutely inside (1..N) and only wrapped to 16 bits on the wire, so rollover past 65535 needs
 * no special cases. DATA packets live in 2 x windowsize preallocated buffers: a buffer is rewritten only for a block
 * two windows later, by which time every send of its previous block has left the socket (sends are FIFO and the later
 * block was acknowledged).
 */
import type { Logger } from '../host/log.js'
import { ErrorCode, Opcode, encode, errorPacket, writeDataHeader, DATA_HEADER, type TftpOption } from './packet.js'
import type { BlockSource } from './reader.js'
import type { Sender, TransferSocket } from './transfer-socket.js'

/** Why a transfer ended: becomes the event outcome. */
export type TransferOutcome = 'ok' | 'aborted' | 'timeout' | 'error'

/** What the server learns when a transfer ends. */
export interface TransferResult {
  outcome: TransferOutcome
  /** Bytes the client acknowledged (the whole file when ok). */
  bytes: number
  /** The client aborted or ignored our OACK to a tsize request: the UEFI "ask the size, then ask again" probe. */
  tsizeProbe: boolean
  /** false when the file was sent but the last ACK never came (not a failure, RFC 1350 section 6). */
  finalAck: boolean
  /** Peer's ERROR code/message when it aborted. */
  peerError?: { code: number; message: string }
}

/** Drop hook for loss tests: return true to drop the packet. */
export type LossHook = (direction: 'in' | 'out', packet: Buffer) => boolean

/** Everything one transfer needs; the socket is already bound and owned by the transfer from now on. */
export interface TransferOptions {
  /** Bound and set to the peer; strangers' packets arrive marked as such (transfer-socket.ts). */
  socket: TransferSocket
  source: BlockSource
  blksize: number
  windowsize: number
  /** Options to OACK; empty means DATA 1 goes out at once. */
  oack: TftpOption[]
  tsizeRequested: boolean
  /** First retransmit timeout; doubles per retry up to maxTimeoutMs. */
  timeoutMs: number
  maxTimeoutMs: number
  /** Retransmissions of the same window before giving up. */
  retries: number
  logger: Logger
  lossHook?: LossHook
}

/** A running transfer. */
export interface TransferHandle {
  /** Resolves when the transfer has ended and its socket and file are closed. */
  done: Promise<TransferResult>
  /**
   * Ends the transfer early. With `message`, the peer first gets ERROR 0 carrying it (RFC 1350 section 7: an error
   * terminates the transfer), so a client sees why instead of retrying into silence (server shutdown).
   */
  abort(message?: string): void
}

/** Runs one transfer to its end. Never rejects: socket, read and peer failures all become a TransferResult. */
export function runTransfer(options: TransferOptions): TransferHandle {
  const { socket, source, blksize, logger, lossHook } = options
  const windowsize = Math.max(1, options.windowsize)
  const totalBlocks = Math.floor(source.size / blksize) + 1
  const slotCount = 2 * Math.min(windowsize, totalBlocks)
  const slots: Buffer[] = []
  const slotBlock = new Float64Array(slotCount).fill(-1)
  const slotLength = new Uint32Array(slotCount)
  const oackPacket = options.oack.length > 0 ? encode({ op: 'oack', options: options.oack }) : undefined

  // base: first unacknowledged block; 0 while the OACK waits for ACK 0. cursor: next block to send.
  let base = oackPacket ? 0 : 1
  let cursor = base
  let highestSent = 0
  let tries = 0
  let timeoutMs = options.timeoutMs
  let pumping = false
  let finished = false
  // Lock-step fast path (TransferSocket.stage): the next block waits in the socket for the ACK that releases it.
  // Off with the loss hook, whose drops must happen before anything is sent.
  const canStage = windowsize === 1 && socket.stage !== undefined && lossHook === undefined
  let staged = false
  // Lock-step with the whole file in memory (TransferSocket.run): the addon answers each ACK with the next block and
  // JS hears from the transfer again only at its end, at anything unexpected, or when the retransmit timer asks. In a
  // boot storm every machine's ~120 snponly.efi blocks cost a JS callback each otherwise (issue 18).
  const whole = source.whole
  const canRun = canStage && whole !== undefined && socket.run !== undefined && socket.runState !== undefined
  let running = false
  // When DATA last left for the peer (performance.now()), from JS, a staged release or a run: a repeated ACK long after
  // it is the client's own retransmission (see onAck).
  let lastSendAt = performance.now()
  let resolveDone!: (r: TransferResult) => void
  const done = new Promise<TransferResult>((resolve) => (resolveDone = resolve))

  /** Sends `length` bytes of `buf` (-1: all of it, for one-off packets) to the peer, or to `stranger`. */
  function send(buf: Buffer, length: number, stranger?: Sender): void {
    if (length < 0) length = buf.length
    if (lossHook && lossHook('out', length === buf.length ? buf : buf.subarray(0, length))) return
    if (stranger) socket.sendTo(buf, length, stranger)
    else {
      socket.send(buf, length)
      lastSendAt = performance.now()
    }
  }

  function finish(outcome: TransferOutcome, extra: Partial<TransferResult> = {}): void {
    if (finished) return
    if (running) ranTo(socket.runState!(true)?.sent)
    finished = true
    clearTimeout(timer)
    socket.close()
    const acked = outcome === 'ok' ? source.size : Math.min(source.size, Math.max(0, base - 1) * blksize)
    const result: TransferResult = {
      outcome,
      bytes: acked,
      tsizeProbe: false,
      finalAck: true,
      ...extra,
    }
    source.close().then(
      () => resolveDone(result),
      (err: unknown) => {
        logger.debug({ err }, 'TFTP source close failed')
        resolveDone(result)
      },
    )
  }

  /** Puts block `block` into its slot unless it is already there; may read from disk. */
  function prepare(block: number): number | Promise<number> {
    const slot = block % slotCount
    if (slotBlock[slot] === block) return slotLength[slot] as number
    let buf = slots[slot]
    if (!buf) {
      buf = Buffer.allocUnsafe(DATA_HEADER + blksize)
      slots[slot] = buf
    }
    writeDataHeader(buf, block)
    const position = (block - 1) * blksize
    const length = Math.max(0, Math.min(blksize, source.size - position))
    const filled = source.fill(position, buf, DATA_HEADER, length)
    if (typeof filled === 'number') return recordSlot(slot, block, filled, length)
    return filled.then((n) => recordSlot(slot, block, n, length))
  }

  function recordSlot(slot: number, block: number, n: number, length: number): number {
    if (n !== length) throw new Error(`file shrank while serving: block ${block} got ${n} of ${length} bytes`)
    slotBlock[slot] = block
    slotLength[slot] = DATA_HEADER + n
    return DATA_HEADER + n
  }

  function failRead(err: unknown): void {
    pumping = false
    logger.warn({ err }, 'TFTP transfer failed reading the file')
    send(errorPacket(ErrorCode.NOT_DEFINED, 'Read error'), -1)
    finish('error')
  }

  /**
   * Sends from `cursor` to the end of the window. Synchronous while blocks are in memory (the common, hot case);
   * when a block needs a disk read it continues after the read. Only one pump runs at a time: ACK and timeout
   * handlers just move `cursor`/`base` and the running pump picks that up.
   */
  function pump(): void {
    if (pumping || finished) return
    if (base === 0) {
      send(oackPacket as Buffer, -1)
      if (!startRun()) stageNext()
      armTimer()
      return
    }
    pumping = true
    try {
      while (!finished) {
        const end = Math.min(base + windowsize - 1, totalBlocks)
        if (cursor < base) cursor = base
        if (cursor > end) break
        const block = cursor
        const length = prepare(block)
        if (typeof length !== 'number') {
          length.then(() => {
            // Whatever the ACKs did meanwhile, carry on from the current cursor; the block is now in its slot.
            pumping = false
            pump()
          }, failRead)
          return
        }
        send(slots[block % slotCount] as Buffer, length)
        if (block > highestSent) highestSent = block
        cursor = block + 1
      }
      pumping = false
      if (!startRun()) stageNext()
      if (!finished) armTimer()
    } catch (err) {
      failRead(err)
    }
  }

  /**
   * Lock-step: block `base` is out (or the OACK, when base is 0) and its ACK is awaited; put block base + 1 in its slot
   * and stage it. Only when it is in memory: staging must not start a disk read that pump() would start again.
   */
  function stageNext(): void {
    if (!canStage || finished) return
    const next = base + 1
    if (next > totalBlocks || (base > 0 && cursor !== next)) return
    if (!source.inMemory((next - 1) * blksize, blksize)) return
    const length = prepare(next) as number
    socket.stage!(slots[next % slotCount], length, base & 0xffff)
    staged = true
  }

  /**
   * Lock-step: block `base` (or the OACK) is the only one out; hand the rest of the transfer to the socket. False when
   * a run cannot serve it (windowed, a disk source, a loss hook, node:dgram), and staging does instead.
   */
  function startRun(): boolean {
    if (!canRun || finished || running) return false
    if (base > 0 && cursor !== base + 1) return false
    socket.run!(whole, blksize, base, totalBlocks)
    running = true
    return true
  }

  /** Catches up with a run that had sent blocks up to `sent` (each earlier one acknowledged). */
  function ranTo(sent: number | undefined): void {
    if (sent === undefined || sent <= base) return
    base = sent
    cursor = sent + 1
    if (sent > highestSent) highestSent = sent
    tries = 0
    timeoutMs = options.timeoutMs
  }

  function onTimeout(): void {
    if (finished) return
    if (pumping) {
      armTimer()
      return
    }
    if (running) {
      // The run answers ACKs unseen: the timer only knows when the last one came by asking. Still moving: wait out
      // the rest of the timeout from that ACK, as if it had re-armed the timer itself.
      const state = socket.runState!(false)
      ranTo(state?.sent)
      if (state !== undefined && state.idleMs < timeoutMs) {
        clearTimeout(timer)
        timerDelay = -1
        timer = setTimeout(onTimeout, Math.max(1, timeoutMs - state.idleMs))
        return
      }
      socket.runState!(true)
      running = false
    }
    tries++
    if (tries > options.retries) {
      if (base === 0) {
        // A client that asked tsize and then never answered the OACK is probing too, just without saying ERROR 8.
        finish('timeout', { tsizeProbe: options.tsizeRequested })
      } else if (highestSent === totalBlocks) {
        finish('ok', { finalAck: false })
      } else {
        send(errorPacket(ErrorCode.NOT_DEFINED, 'Timeout'), -1)
        finish('timeout')
      }
      return
    }
    timeoutMs = Math.min(timeoutMs * 2, options.maxTimeoutMs)
    cursor = base
    pump()
  }

  /** `released`: the socket already sent block acked + 1 (stageNext). */
  function onAck(wire: number, released: boolean): void {
    if (base === 0) {
      if (wire !== 0) return
      base = 1
      cursor = released ? 2 : 1
      if (released && highestSent < 1) highestSent = 1
      tries = 0
      timeoutMs = options.timeoutMs
      pump()
      return
    }
    // Map the 16-bit number onto the absolute block in [base-1, base-1+65535]; ACKs beyond what we sent are stale.
    const acked = base - 1 + ((wire - (base - 1)) & 0xffff)
    if (acked > highestSent) return
    // A duplicate of the ACK that already moved the window: resending at once would be Sorcerer's Apprentice (RFC 1123
    // 4.2.3.1), every delayed DATA then sent twice to the end. The retransmit timer covers a window lost after it. One
    // exception in lock-step: the same ACK again at least half a timeout after the block it asks for left is the
    // client repeating itself after its own timeout (RFC 1350: the block was lost), and the block goes again now, as
    // tftp-hpa does, rather than at pxebox's later timeout: in a 1,000-machine storm clients re-ACK after 1 s and each
    // loss otherwise cost the full 2 s. A duplicate from the network arrives right after the block it answers and is
    // still ignored; a client repeating itself gets at most one block per half timeout.
    if (acked < base) {
      if (windowsize === 1 && acked === base - 1 && highestSent >= base && performance.now() - lastSendAt >= options.timeoutMs / 2) {
        cursor = base
        pump()
      }
      return
    }
    base = acked + 1
    tries = 0
    timeoutMs = options.timeoutMs
    if (acked === totalBlocks) {
      finish('ok')
      return
    }
    // RFC 7440 section 4: the next window starts right after the acknowledged block, whether the ACK ends a window
    // or reports a gap.
    cursor = released ? base + 1 : base
    if (released && base > highestSent) highestSent = base
    armTimer()
    pump()
  }

  /** `packet` is valid only during the call and may be longer than the datagram (`length`); see transfer-socket.ts. */
  function onMessage(packet: Buffer, length: number, stranger?: Sender, released = false, ran?: number, ranIdleMs?: number): void {
    if (finished) return
    if (ran !== undefined) {
      // The run ended at this datagram; what it is (the last ACK, a duplicate, an ERROR) is handled below as ever.
      running = false
      ranTo(ran)
      if (ranIdleMs !== undefined) lastSendAt = performance.now() - ranIdleMs
    }
    if (staged && !stranger) {
      staged = false
      // Anything else from the peer (an older ACK, ERROR...) is handled here; restaged by the next pump if still due.
      if (!released) socket.stage!()
      else lastSendAt = performance.now()
    }
    if (lossHook && lossHook('in', packet.subarray(0, length))) return
    if (stranger) {
      // RFC 1350 section 4: a packet from another TID gets ERROR 5 and does not disturb this transfer.
      logger.debug({ from: `${stranger.address}:${stranger.port}` }, 'TFTP packet from an unknown transfer ID')
      send(errorPacket(ErrorCode.UNKNOWN_TID, 'Unknown transfer ID'), -1, stranger)
      return
    }
    const opcode = length >= 2 ? packet.readUInt16BE(0) : 0
    if (opcode === Opcode.ACK && length >= 4) {
      onAck(packet.readUInt16BE(2), released)
    } else if (opcode === Opcode.ERROR && length >= 4) {
      const msg = packet.subarray(0, length)
      const code = msg.readUInt16BE(2)
      const end = msg.indexOf(0, 4)
      const message = msg.toString('latin1', 4, end === -1 ? msg.length : end)
      const probe = base === 0
      // UEFI firmware asks for tsize, reads the OACK and aborts with ERROR 8 before asking again: routine, not news.
      if (probe) logger.debug({ code, message }, 'TFTP client ended the transfer after the OACK')
      else logger.info({ code, message, block: base }, 'TFTP client aborted the transfer')
      finish('aborted', { tsizeProbe: probe && options.tsizeRequested, peerError: { code, message } })
    } else {
      logger.debug({ opcode, packet: packet.toString('base64', 0, length) }, 'TFTP ignored an unexpected packet')
    }
  }

  let timerDelay = timeoutMs
  let timer = setTimeout(onTimeout, timeoutMs)
  /** Restarts the retransmit timer; refresh() is cheap, a new timer only when the backoff changed the delay. */
  function armTimer(): void {
    if (timerDelay === timeoutMs) {
      timer.refresh()
      return
    }
    clearTimeout(timer)
    timerDelay = timeoutMs
    timer = setTimeout(onTimeout, timeoutMs)
  }
  socket.onPacket(onMessage)
  socket.onError((err) => {
    logger.warn({ err }, 'TFTP transfer socket failed')
    finish('error')
  })
  pump()

  return {
    done,
    abort(message) {
      if (finished) return
      if (message !== undefined) send(errorPacket(ErrorCode.NOT_DEFINED, message), -1)
      finish('aborted')
    },
  }
}
