/**
 * The socket one TFTP transfer talks through (RFC 1350: a fresh port, the server's TID, per transfer). Two
 * implementations with one interface:
 * - native (native/udp.c): reads datagrams into one reused buffer and sends with sendto(2), so a lock-step transfer
 *   pays for the protocol, not for node:dgram's per-datagram objects. That is what brings lock-step TFTP (every
 *   BIOS PXE ROM) level with tftpd-hpa and dnsmasq (bench/tftp.sh).
 * - node:dgram, when the addon is not built.
 */
import { createSocket, type Socket, type SocketType } from 'node:dgram'
import { constants } from 'node:os'
import { getSystemErrorName } from 'node:util'
import type { NativeAddon } from '../host/native.js'
import { guardedSend, sendablePeer } from './send.js'

/** Where a datagram came from when it was not the transfer's peer. */
export interface Sender {
  address: string
  port: number
}

/**
 * `packet` holds the datagram in its first `length` bytes, and only until the handler returns (the native socket reuses
 * the buffer). `stranger` is set when the sender is not the peer. `released`: this datagram was the ACK a staged packet
 * waited for, and that packet has been sent (see stage()). `ranTo`: a run (see run()) ended at this datagram, having
 * sent blocks up to this one (absolute), the last `ranIdleMs` ms before it.
 */
export type PacketHandler = (packet: Buffer, length: number, stranger?: Sender, released?: boolean, ranTo?: number, ranIdleMs?: number) => void

export interface TransferSocket {
  /** The local port: the server's transfer ID. */
  readonly port: number
  /** Sends the first `length` bytes of `buf` to the peer. Never throws; a failure reaches the error handler. */
  send(buf: Buffer, length: number): void
  /**
   * Sends to someone else (ERROR 5 to a stranger). A courtesy: never throws and never reaches the error handler (a
   * stranger's spoofed port 0 must not end the transfer); false when the datagram was dropped.
   */
  sendTo(buf: Buffer, length: number, to: Sender): boolean
  onPacket(handler: PacketHandler): void
  /**
   * Lock-step fast path, native socket only (absent for node:dgram): when the peer's next datagram is exactly ACK
   * `ackBlock` (16-bit wire number), send the first `length` bytes of `buf` before the handler runs, and call the
   * handler with `released` set. `buf` must not change until then. One use; stage() with no arguments clears it.
   */
  stage?(buf?: Buffer, length?: number, ackBlock?: number): void
  /**
   * Lock-step without JS, native socket only: the whole file is `file`, block `sentBlock` (absolute, 0 = the OACK) is
   * out. Each exact ACK of the last block sent is answered with the next block inside the addon, unseen by the handler;
   * anything else from the peer ends the run and reaches the handler with `ranTo`. Clears stage().
   */
  run?(file: Buffer, blksize: number, sentBlock: number, totalBlocks: number): void
  /** A run's last block sent and the ms since its last ACK, or undefined when none is on; `stop` ends it. */
  runState?(stop: boolean): { sent: number; idleMs: number } | undefined
  onError(handler: (err: Error) => void): void
  /** Idempotent; no handler runs afterwards. */
  close(): void
}

/**
 * Binds a transfer socket on `address` (port chosen by the kernel) for a transfer with `peer`: the native one when
 * given the addon (loaded once by whoever started the server), else node:dgram.
 */
export async function openTransferSocket(type: SocketType, address: string, peer: Sender, native: NativeAddon | undefined): Promise<TransferSocket> {
  return native ? nativeSocket(native, type, address, peer) : dgramSocket(type, address, peer)
}

/** errno values a send may hit under load: the datagram is lost, and TFTP's retransmission covers a loss. */
const TRANSIENT = new Set([constants.errno.EAGAIN, constants.errno.ENOBUFS, constants.errno.EINTR])

/** An Error for errno `errno` (positive) from the native socket, shaped as Node's own system errors. */
function socketError(errno: number, syscall: string): Error {
  const code = getSystemErrorName(-errno)
  return Object.assign(new Error(`${syscall} failed: ${code}`), { code, errno, syscall })
}

function nativeSocket(native: NativeAddon, type: SocketType, address: string, peer: Sender): TransferSocket {
  let onPacket: PacketHandler = () => undefined
  let onError: (err: Error) => void = () => undefined
  let closed = false
  const fail = (err: Error) => {
    // Reported on the next tick, as node:dgram does, so a failed send never re-enters the sender.
    process.nextTick(() => closed || onError(err))
  }
  const [handle, port, buffer] = native.udpOpen(type === 'udp6', address, (length, fromPeer, portOrReleased, from, idleMs) => {
    if (length < 0) fail(socketError(-length, 'recvfrom'))
    else if (fromPeer) onPacket(buffer, length, undefined, portOrReleased === true, typeof from === 'number' ? from : undefined, idleMs)
    else onPacket(buffer, length, { address: from as string, port: portOrReleased as number })
  })
  native.udpSetPeer(handle, peer.address, peer.port)
  const checked = (err: number) => {
    if (err !== 0 && !TRANSIENT.has(err)) fail(socketError(err, 'sendto'))
  }
  return {
    port,
    send: (buf, length) => checked(native.udpSend(handle, buf, length)),
    sendTo(buf, length, to) {
      if (closed || !sendablePeer(to)) return false
      try {
        return native.udpSendTo(handle, buf, length, to.address, to.port) === 0
      } catch {
        return false // an address the addon cannot parse: nothing to answer
      }
    },
    onPacket: (h) => void (onPacket = h),
    onError: (h) => void (onError = h),
    stage: (buf, length, ackBlock) => (buf === undefined ? native.udpStage(handle) : native.udpStage(handle, buf, length, ackBlock)),
    ...(native.udpRun && native.udpRunState
      ? {
          run: (file: Buffer, blksize: number, sentBlock: number, totalBlocks: number) => native.udpRun!(handle, file, blksize, sentBlock, totalBlocks),
          runState: (stop: boolean) => {
            const state = native.udpRunState!(handle, stop)
            return state === null ? undefined : { sent: state[0], idleMs: state[1] }
          },
        }
      : {}),
    close() {
      closed = true
      native.udpClose(handle)
    },
  }
}

/** A node:dgram socket bound to address:port (0: the kernel picks); also the server's port-69 listener. */
export function bindUdp(type: SocketType, address: string, port: number): Promise<Socket> {
  // An IP-literal lookup that answers synchronously: dgram otherwise defers every send through dns.lookup.
  const socket = createSocket({ type, lookup: (host, _opts, cb) => cb(null, host, type === 'udp6' ? 6 : 4) })
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void => {
      socket.close()
      reject(err)
    }
    socket.once('error', onError)
    socket.bind({ address, port, exclusive: true }, () => {
      socket.off('error', onError)
      resolve(socket)
    })
  })
}

async function dgramSocket(type: SocketType, address: string, peer: Sender): Promise<TransferSocket> {
  const socket = await bindUdp(type, address, 0)
  let closed = false
  const ignore = () => undefined
  return {
    port: socket.address().port,
    // No send callback for the peer: Node then sends synchronously without a completion round trip; failures reach
    // 'error'. After close the contract is a silent drop, as for the native socket.
    send: (buf, length) => void (closed || guardedSend(socket, buf, peer, length)),
    sendTo: (buf, length, to) => !closed && guardedSend(socket, buf, to, length, ignore),
    onPacket: (h) =>
      void socket.on('message', (msg, rinfo) => {
        if (rinfo.port === peer.port && rinfo.address === peer.address) h(msg, msg.length)
        else h(msg, msg.length, { address: rinfo.address, port: rinfo.port })
      }),
    onError: (h) => void socket.on('error', h),
    close() {
      if (closed) return
      closed = true
      socket.removeAllListeners('message')
      socket.close()
    },
  }
}
