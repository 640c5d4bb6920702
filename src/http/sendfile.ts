/**
 * Zero-copy asset bodies: the kernel's sendfile(2) through pxebox's small native addon (native/sendfile.c). Node has
 * no sendfile for sockets, and copying each byte through user space twice held pxebox to about half of nginx's
 * throughput with 8 clients on a 200 MB image. When the addon is not built, or the connection is not a plain TCP socket
 * (inject() in tests, TLS), callers fall back to copyRange in static-files.ts.
 */
import { open, type FileHandle } from 'node:fs/promises'
import type { ServerResponse } from 'node:http'
import { Socket } from 'node:net'
import { TLSSocket } from 'node:tls'
import type { NativeAddon } from '../host/native.js'
import { writeChunk, type ByteRange } from './static-files.js'

/** The sendfile part of the addon (native/sendfile.c). */
export type NativeSendfile = Pick<NativeAddon, 'dup' | 'close' | 'sendfile'>

/** Bytes per sendfile job: large enough that thread-pool round trips are rare, small enough to interleave clients. */
const SENDFILE_JOB = 8 * 1024 * 1024
/**
 * Bytes written through Node whenever the socket is full. Its write callback is how we learn that the socket drained
 * (the event loop owns the descriptor's readiness), so each pause costs one copy of this size, not a busy wait.
 */
const DRAIN_PIECE = 64 * 1024

/** The descriptor of a plain TCP connection, or undefined (inject()'s fake socket, TLS, a closed socket). */
export function plainSocketFd(socket: unknown): number | undefined {
  if (!(socket instanceof Socket) || socket instanceof TLSSocket || socket.destroyed) return undefined
  const fd = (socket as unknown as { _handle?: { fd?: unknown } })._handle?.fd
  return typeof fd === 'number' && fd >= 0 ? fd : undefined
}

/**
 * Send `range` of `file` (a path, or a handle the caller opened and closes) as the body of `res` (status and headers set, not yet sent). The first piece goes
 * through Node, carrying the headers; its callback means they are in the kernel, so sendfile's bytes follow them.
 * Rejects when the client goes away or the file shrinks; the caller destroys the response, so a short body is never
 * taken for a whole one.
 */
export async function sendfileRange(addon: NativeSendfile, fd: number, file: string | FileHandle, range: ByteRange, res: ServerResponse): Promise<void> {
  const fh = typeof file === 'string' ? await open(file, 'r') : file
  const path = typeof file === 'string' ? file : `descriptor ${fh.fd}`
  let out = -1
  try {
    const end = range.end + 1
    let pos = range.start
    const piece = Buffer.allocUnsafeSlow(Math.min(DRAIN_PIECE, end - pos))
    // Reads and writes the next piece through Node; resolves once the socket has taken it (it had room again).
    const writePiece = async () => {
      const { bytesRead } = await fh.read(piece, 0, Math.min(piece.length, end - pos), pos)
      if (bytesRead === 0) throw new Error(`file shrank while sending: ${path}`)
      if (res.destroyed) throw new Error('client went away')
      await writeChunk(res, bytesRead === piece.length ? piece : piece.subarray(0, bytesRead))
      pos += bytesRead
    }
    await writePiece()
    // A private duplicate: Node may close its descriptor (client reset) while a job runs; see native/sendfile.c.
    out = addon.dup(fd)
    while (pos < end) {
      if (res.destroyed) throw new Error('client went away')
      const want = Math.min(SENDFILE_JOB, end - pos)
      const sent = await addon.sendfile(out, fh.fd, pos, want)
      pos += sent
      if (sent < want && pos < end) await writePiece()
    }
  } finally {
    if (out >= 0) addon.close(out)
    if (typeof file === 'string') await fh.close()
  }
}
