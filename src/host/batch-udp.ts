/**
 * A UDP socket for request/reply servers (DHCP) that reads and answers in batches: with the native addon, every
 * datagram pending at a wake-up comes in with one recvmmsg(2) and one JS call, and the replies queued while they are
 * handled leave with one sendmmsg(2) when the batch ends (native/udp-batch.c). Without the addon it is node:dgram,
 * one datagram per event and one send per reply, with the same interface, so the server above has one code path.
 *
 * Replies queued outside a batch (an async handler's, settled later) leave together at the end of that microtask
 * checkpoint. A reply the kernel refuses (EAGAIN/ENOBUFS with the queue full, EACCES for a broadcast...) is a dropped
 * datagram, counted and reported, never an exception: the client retransmits, as it would after a lost reply.
 */
import { createSocket, type Socket } from 'node:dgram'
import { constants } from 'node:os'
import type { NativeAddon, NativeUdpHandle } from './native.js'
import { ipToInt } from './ipv4.js'
import { bindSocket, closeSocket } from './udp-socket.js'

/** What the socket calls; none of these may throw (an exception is the caller's bug and becomes uncaught). */
export interface BatchUdpHandlers {
  /** One datagram; `msg` is a view into a reused buffer, valid only during the call. */
  datagram(msg: Buffer, address: string, port: number): void
  /** A datagram larger than the receive slot (native only; dropped, its bytes are not seen). */
  oversized(address: string, port: number): void
  /** A queued datagram the kernel did not send; `code` is the errno name (EAGAIN, ENOBUFS, EACCES...). */
  sendFailed(code: string, address: string, port: number): void
  /** The socket failed for good (receive error); the server stops. */
  error(err: Error): void
}

/** A bound batch socket. */
export interface BatchUdpSocket {
  /** The bound port. */
  readonly port: number
  /** True when the addon's batched socket serves it (false: node:dgram). */
  readonly batched: boolean
  /** What setsockopt-style pinning needs: the dgram socket, or the descriptor of the native one. */
  readonly pinnable: Socket | { readonly fd: number }
  /** Queues `data` for address:port (it must not change afterwards). Sent at the end of the batch being handled. */
  send(data: Buffer, address: string, port: number): void
  close(): Promise<void>
}

/** Where to bind and whether broadcasts may be sent. */
export interface BatchUdpOptions {
  address: string
  port: number
  broadcast: boolean
}

// errno number -> name; where two names share a number (EAGAIN and EWOULDBLOCK are both 11) the first listed wins.
const errnoNames = new Map<number, string>()
for (const [name, n] of Object.entries(constants.errno)) if (!errnoNames.has(n)) errnoNames.set(n, name)

/** A host-order address as a dotted quad (ipv4.ts's intToIp without its array: this runs once per datagram). */
function dotted(n: number): string {
  return `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`
}

/** The errno name of a positive errno (ENOBUFS...), or `E<n>` when this platform has no name for it. */
function errnoName(n: number): string {
  return errnoNames.get(n) ?? `E${n}`
}

/**
 * Opens the socket: the addon's batched one when `addon` has it, else node:dgram. Rejects with the bind error
 * (EADDRINUSE, EACCES...) shaped as Node's.
 */
export async function openBatchUdp(addon: NativeAddon | undefined, opts: BatchUdpOptions, on: BatchUdpHandlers): Promise<BatchUdpSocket> {
  if (addon?.batchOpen === undefined) return openDgram(opts, on)
  return openNative(addon as Required<Pick<NativeAddon, 'batchOpen' | 'batchSend' | 'batchInfo' | 'batchClose'>>, opts, on)
}

function openNative(
  addon: Required<Pick<NativeAddon, 'batchOpen' | 'batchSend' | 'batchInfo' | 'batchClose'>>,
  opts: BatchUdpOptions,
  on: BatchUdpHandlers,
): BatchUdpSocket {
  const [batch, slot, slab, metaWidth] = addon.batchInfo()
  let queued = 0
  let used = 0
  let inBatch = false
  let flushPending = false
  let closed = false
  // The last destination parsed: nearly every reply on 67 goes to the broadcast address or one relay.
  let lastText = ''
  let lastInt = 0

  const flush = (): void => {
    flushPending = false
    if (queued === 0) return
    const count = queued
    queued = 0
    used = 0
    if (closed) return
    const dropped = addon.batchSend(handle, count)
    if (dropped === 0) return
    for (let i = 0; i < count; i++) {
      const errno = sendMeta[i * metaWidth + 4] as number
      if (errno !== 0) on.sendFailed(errnoName(errno), dotted(sendMeta[i * metaWidth + 2] as number), sendMeta[i * metaWidth + 3] as number)
    }
  }

  const onBatch = (count: number): void => {
    if (closed) return
    if (count < 0) {
      const name = errnoName(-count)
      on.error(Object.assign(new Error(`recvmmsg failed: ${name}`), { code: name, errno: -count, syscall: 'recvmmsg' }))
      return
    }
    inBatch = true
    try {
      for (let i = 0; i < count && !closed; i++) {
        const length = recvMeta[i * 3] as number
        const address = dotted(recvMeta[i * 3 + 1] as number)
        const port = recvMeta[i * 3 + 2] as number
        if (length < 0) on.oversized(address, port)
        else on.datagram(recv.subarray(i * slot, i * slot + length), address, port)
      }
    } finally {
      inBatch = false
      flush()
    }
  }

  const [handle, port, fd, recvArray, recvMeta, sendArray, sendMeta] = addon.batchOpen(opts.address, opts.port, opts.broadcast, onBatch) as [
    NativeUdpHandle,
    number,
    number,
    Uint8Array,
    Int32Array,
    Uint8Array,
    Int32Array,
  ]
  const recv = Buffer.from(recvArray.buffer, recvArray.byteOffset, recvArray.byteLength)
  const out = Buffer.from(sendArray.buffer, sendArray.byteOffset, sendArray.byteLength)

  return {
    port,
    batched: true,
    pinnable: { fd },
    send(data, address, toPort) {
      if (closed) return
      let to = lastInt
      if (address !== lastText) {
        const parsed = ipToInt(address)
        if (parsed === undefined || !Number.isInteger(toPort) || toPort < 0 || toPort > 65535 || data.length > slab) {
          on.sendFailed('EINVAL', address, toPort)
          return
        }
        lastText = address
        lastInt = to = parsed
      } else if (!Number.isInteger(toPort) || toPort < 0 || toPort > 65535 || data.length > slab) {
        on.sendFailed('EINVAL', address, toPort)
        return
      }
      if (queued === batch || used + data.length > slab) flush()
      data.copy(out, used)
      const m = queued * metaWidth
      sendMeta[m] = used
      sendMeta[m + 1] = data.length
      sendMeta[m + 2] = to | 0
      sendMeta[m + 3] = toPort
      sendMeta[m + 4] = 0
      queued++
      used += data.length
      if (!inBatch && !flushPending) {
        flushPending = true
        queueMicrotask(flush)
      }
    },
    async close() {
      if (closed) return
      flush()
      closed = true
      addon.batchClose(handle)
    },
  }
}

async function openDgram(opts: BatchUdpOptions, on: BatchUdpHandlers): Promise<BatchUdpSocket> {
  // Replies go to IP literals: a lookup that answers at once spares dgram's dns.lookup and its deferral per send.
  const literal = (host: string, _o: unknown, cb: (err: null, address: string, family: number) => void) => cb(null, host, 4)
  const socket = createSocket({ type: 'udp4', lookup: literal })
  await bindSocket(socket, opts.port, opts.address)
  if (opts.broadcast) socket.setBroadcast(true)
  socket.on('message', (msg, rinfo) => on.datagram(msg, rinfo.address, rinfo.port))
  socket.on('error', (err) => on.error(err))
  return {
    port: socket.address().port,
    batched: false,
    pinnable: socket,
    send(data, address, port) {
      try {
        socket.send(data, port, address, (err) => {
          if (err) on.sendFailed((err as NodeJS.ErrnoException).code ?? 'EIO', address, port)
        })
      } catch {
        // dgram throws synchronously for some destinations (port 0, a malformed address).
        on.sendFailed('EINVAL', address, port)
      }
    },
    close: () => closeSocket(socket),
  }
}
