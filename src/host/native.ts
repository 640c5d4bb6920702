/**
 * pxebox's native addon (native/: sendfile for HTTP assets, UDP sockets for TFTP transfers, batched DHCP sockets,
 * interface lookup and setsockopt, batched small-file reads), loaded once. It is
 * optional: `npm run build` builds it with node-gyp, and without it pxebox uses Node's own APIs, slower, after saying
 * why at start-up. Failed system calls in the addon throw (or reject with) Errors shaped as Node's: `code` (the errno
 * name), `errno` (positive, as in os.constants.errno) and `syscall` (native/errors.h).
 *
 * PXEBOX_NATIVE_ADDON=<path to a .node file> loads that build instead of native/build/Release (scripts/test-native-asan.sh
 * runs the native tests against an AddressSanitizer build this way). A path that does not load is reported as the
 * reason, never silently replaced by the default build.
 */
import { existsSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

/** An opaque asset sender from senderOpen (native/sendfile.c). */
export type NativeSenderHandle = object & { readonly __brand?: 'sender' }

/** An opaque socket handle from udpOpen. */
export type NativeUdpHandle = object & { readonly __brand?: 'udp' }

/** The addon's exports; see native/sendfile.c, native/udp.c and native/netif.c for the contracts. */
export interface NativeAddon {
  senderOpen(idleMs: number): NativeSenderHandle
  senderSend(handle: NativeSenderHandle, socketFd: number, fileFd: number, offset: number, length: number): Promise<number>
  senderClose(handle: NativeSenderHandle): void
  udpOpen(
    ipv6: boolean,
    bindAddress: string,
    /**
     * `addressOrProgress`: a stranger's address, or for the peer the block a udpRun had sent when it ended, and then
     * `idleMs`, how long before it had sent that block.
     */
    onPacket: (length: number, fromPeer?: boolean, portOrReleased?: number | boolean, addressOrProgress?: string | number, idleMs?: number) => void,
  ): [NativeUdpHandle, number, Buffer]
  udpStage(handle: NativeUdpHandle, buf?: Buffer, length?: number, ackBlock?: number): void
  /** Absent from an addon built before it existed: the transfer then stages block by block. */
  udpRun?(handle: NativeUdpHandle, file: Buffer, blksize: number, sentBlock: number, totalBlocks: number): void
  udpRunState?(handle: NativeUdpHandle, stop: boolean): [sentBlock: number, idleMs: number] | null
  udpSetPeer(handle: NativeUdpHandle, address: string, port: number): void
  udpSend(handle: NativeUdpHandle, buf: Buffer, length: number): number
  udpSendTo(handle: NativeUdpHandle, buf: Buffer, length: number, address: string, port: number): number
  udpClose(handle: NativeUdpHandle): void
  /**
   * native/udp-batch.c, the DHCP sockets: [handle, port, fd, recv slab, recv meta, send slab, send meta]. Absent from
   * an addon built before it existed (PXEBOX_NATIVE_ADDON pointing at an older build): callers fall back to dgram.
   */
  batchOpen?(bindAddress: string, port: number, broadcast: boolean, onBatch: (count: number) => void): [NativeUdpHandle, number, number, Uint8Array, Int32Array, Uint8Array, Int32Array]
  /** Sends `count` queued datagrams with sendmmsg; returns how many were not sent (their errno is in the send meta). */
  batchSend?(handle: NativeUdpHandle, count: number): number
  /** [datagrams per batch, receive slot bytes, send slab bytes, ints per send meta entry]. */
  batchInfo?(): [number, number, number, number]
  batchClose?(handle: NativeUdpHandle): void
  interfaces(): { name: string; index: number; mtu: number; up: boolean; running: boolean; loopback: boolean; ipv4: { address: string; prefix: number }[] }[]
  nameToIndex(name: string): number
  setsockoptInt(fd: number, level: number, option: number, value: number): void
  /** Only in the fault-injection build of scripts/test-native-asan.sh (native/failpoint.h). */
  readonly failpoints?: true
  /** native/sdnotify.c: false when NOTIFY_SOCKET is unset. Absent from an addon built before it existed. */
  sdNotify?(state: string): boolean
  /**
   * native/readfiles.c: `dir`/name for each name (regular files of at most maxBytes); results[2i], results[2i + 1]
   * are name i's offset and length in the Buffer, or -1 and an errno (0: not regular, too large) when not read.
   * Absent from an addon built before it existed.
   */
  readFilesAt?(dir: string, names: string[], maxBytes: number): Promise<[Buffer, Float64Array]>
  /** native/readfiles.c: a folder's names (not . and ..), each followed by a NUL byte. */
  listDir?(dir: string): Promise<Buffer>
}

/** The addon, or why it is unavailable (for the start-up log). */
export interface NativeLoad {
  readonly addon?: NativeAddon
  readonly reason?: string
}

/** `native/build/Release/pxebox_native.node` in the nearest folder above this file that has it (src/ and dist/src/). */
function addonPath(): string | undefined {
  let dir = dirname(fileURLToPath(import.meta.url))
  for (let i = 0; i < 5; i++) {
    const candidate = join(dir, 'native', 'build', 'Release', 'pxebox_native.node')
    if (existsSync(candidate)) return candidate
    dir = dirname(dir)
  }
  return undefined
}

/**
 * Load the addon. The daemon calls this once and passes the result down; `reason` says why it is unavailable (for
 * the start-up log). Node's require cache makes a second call return the same module. PXEBOX_NATIVE_ADDON=<path>
 * loads another build (the ASan build of scripts/test-native-asan.sh); a path that does not load is the reason.
 */
export function loadNative(): NativeLoad {
  if (process.platform !== 'linux') return { reason: `the native addon is Linux-only (this is ${process.platform})` }
  const override = process.env.PXEBOX_NATIVE_ADDON
  const path = override ? override : addonPath()
  if (path === undefined) return { reason: 'native/build/Release/pxebox_native.node is not built (npm run build builds it)' }
  try {
    return { addon: createRequire(import.meta.url)(path) as NativeAddon }
  } catch (err) {
    return { reason: `could not load ${path}: ${(err as Error).message}` }
  }
}
