/**
 * Pinning the port 67 socket to one interface. Node's dgram cannot bind to a device, and a socket bound to
 * 0.0.0.0:67 (needed to hear broadcasts) hears DISCOVERs from every interface; on a multi-homed box pxebox would
 * then answer PXE clients on networks it does not serve. Linux's SO_BINDTOIFINDEX (5.0+, socket(7)) restricts
 * receive and makes broadcasts leave through that device; it is set through the project's native addon
 * (native/netif.c, setsockoptInt).
 */
import type { Socket } from 'node:dgram'
import { loadNative, type NativeLoad } from '../host/native.js'
import { interfaceIndex, ipv4InterfaceNames, listInterfaces } from '../host/interfaces.js'

export { interfaceIndex }

/** socket(7): SOL_SOCKET level and SO_BINDTOIFINDEX option number on Linux. */
export const SOL_SOCKET = 1
export const SO_BINDTOIFINDEX = 62

/** A socket pinning can reach: a bound node:dgram socket, or the descriptor of the addon's batched one. */
export type PinnableSocket = Socket | { readonly fd: number }

/** Sets SO_BINDTOIFINDEX on a bound socket; throws when the addon or the kernel cannot. */
export type BindToInterface = (socket: PinnableSocket, ifindex: number) => Promise<void>

/**
 * The socket's file descriptor. dgram has no public accessor; `_handle` works but prints a deprecation warning
 * (DEP0112) into the daemon's log, so the handle is read from dgram's state symbol first.
 */
function socketFd(socket: PinnableSocket): number {
  if ('fd' in socket && typeof socket.fd === 'number') return socket.fd
  const sym = Object.getOwnPropertySymbols(socket).find((s) => s.description === 'state symbol')
  const state = sym === undefined ? undefined : (socket as unknown as Record<symbol, { handle?: { fd?: number } }>)[sym]
  const fd = state?.handle?.fd ?? (socket as unknown as { _handle?: { fd?: number } })._handle?.fd
  if (typeof fd !== 'number' || fd < 0) throw new Error('the socket has no file descriptor yet (bind it first)')
  return fd
}

/**
 * SO_BINDTOIFINDEX through `native`, the addon as the daemon loaded it. Must run after bind: libuv creates the OS
 * socket only at bind time (verified here: setting it before bind fails with EBADF). The window between bind and this
 * call is a few microseconds in the same tick; a broadcast from another interface landing in it would be answered once.
 */
export function bindToInterfaceWith(native: NativeLoad): BindToInterface {
  return async (socket, ifindex) => {
    const { addon, reason } = native
    if (addon === undefined) throw new Error(`no native addon (${reason ?? 'not loaded'})`)
    addon.setsockoptInt(socketFd(socket), SOL_SOCKET, SO_BINDTOIFINDEX, ifindex)
  }
}

/** Names of the non-loopback interfaces that carry an IPv4 address; more than one means a multi-homed box. */
export function ipv4Interfaces(native: NativeLoad = loadNative()): string[] {
  return ipv4InterfaceNames(listInterfaces(native))
}
