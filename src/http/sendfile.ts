/**
 * Zero-copy asset bodies sent off the event loop: the kernel's sendfile(2) on a thread of pxebox's small native
 * addon (native/sendfile.c), which also waits for each socket to take more. Node has no sendfile for sockets, and
 * copying each byte through user space twice held pxebox to about half of nginx's throughput with 8 clients on a
 * 200 MB image.
 * Sending on libuv's pool and waiting for the socket on the event loop was zero-copy too, but each full socket cost a
 * round of loop work (a 64 KiB piece written through Node to learn when it drained): 21% of the main thread in
 * bench/storm.sh's profile, where lock-step TFTP blocks and DHCP answers waited behind it (issue 18). When the addon
 * is not built, or the connection is not a plain TCP socket (inject() in tests, TLS), callers fall back to copyRange
 * in static-files.ts.
 */
import type { FileHandle } from 'node:fs/promises'
import type { ServerResponse } from 'node:http'
import { Socket } from 'node:net'
import { TLSSocket } from 'node:tls'
import type { NativeAddon } from '../host/native.js'
import { writeChunk, type ByteRange } from './static-files.js'

/** The sender part of the addon (native/sendfile.c). */
export type NativeSendfile = Pick<NativeAddon, 'senderOpen' | 'senderSend' | 'senderClose'>

/**
 * A body whose socket takes no byte for this long fails (ETIMEDOUT): nothing else times it out, since Node no longer
 * writes to the socket. A PXE client that is alive reads its kernel; one that powered off mid-transfer would otherwise
 * hold its file and socket until TCP gave up, about 15 minutes.
 */
export const SENDER_IDLE_MS = 60_000

/**
 * Written through Node after the headers, before the sender starts: its write callback means the headers are in the
 * kernel, so the sender's bytes follow them on the wire. Empty: the first 64 KiB of each body used to go this way, a
 * fresh 64 KiB buffer and a thread-pool read per request (in a 200-machine storm's profile the read alone was 3.5% of
 * the main thread, and the buffers 25 MB of garbage for the next full GC).
 */
const NO_BYTES = Buffer.alloc(0)

/** One sending thread for an app's asset bodies. */
export interface AssetSender {
  /** Sends `length` bytes of `fileFd` from `offset` on the socket; resolves with the count sent (fewer: file ended). */
  send(socketFd: number, fileFd: number, offset: number, length: number): Promise<number>
  /** Stops the thread; bodies still in flight reject (ECANCELED). Idempotent. */
  close(): void
}

/** Starts a sender thread (native/sendfile.c); the caller closes it with the app. */
export function openAssetSender(addon: NativeSendfile, idleMs = SENDER_IDLE_MS): AssetSender {
  const handle = addon.senderOpen(idleMs)
  return {
    send: (socketFd, fileFd, offset, length) => addon.senderSend(handle, socketFd, fileFd, offset, length),
    close: () => addon.senderClose(handle),
  }
}

/** The descriptor of a plain TCP connection, or undefined (inject()'s fake socket, TLS, a closed socket). */
export function plainSocketFd(socket: unknown): number | undefined {
  if (!(socket instanceof Socket) || socket instanceof TLSSocket || socket.destroyed) return undefined
  const fd = (socket as unknown as { _handle?: { fd?: unknown } })._handle?.fd
  return typeof fd === 'number' && fd >= 0 ? fd : undefined
}

/**
 * Send `range` of the file behind `fh` (the caller opened it and closes it after this settles) as the body of `res`
 * (status and headers set, not yet sent): the headers through Node, then the whole range by `sender`.
 * Rejects when the client goes away or the file shrinks; the caller destroys the response, so a short body is never
 * taken for a whole one.
 */
export async function sendfileRange(sender: AssetSender, fd: number, fh: FileHandle, range: ByteRange, res: ServerResponse): Promise<void> {
  const length = range.end + 1 - range.start
  if (res.destroyed) throw new Error('client went away')
  await writeChunk(res, NO_BYTES)
  if (res.destroyed) throw new Error('client went away')
  const sent = await sender.send(fd, fh.fd, range.start, length)
  if (sent < length) throw new Error(`file shrank while sending: descriptor ${fh.fd}`)
}
