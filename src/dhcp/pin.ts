/**
 * Pinning the port 67 socket to one interface. Node's dgram cannot bind to a device, and a socket bound to
 * 0.0.0.0:67 (needed to hear broadcasts) hears DISCOVERs from every interface; on a multi-homed box pxebox would
 * then answer PXE clients on networks it does not serve. Linux's SO_BINDTOIFINDEX (5.0+, socket(7)) restricts
 * receive and makes broadcasts leave through that device; it is set through the `sockopt` native addon, which only
 * passes integers (so SO_BINDTODEVICE, which takes a name, is out of reach).
 */
import type { Socket } from 'node:dgram'
import { readFileSync } from 'node:fs'
import { networkInterfaces, type NetworkInterfaceInfo } from 'node:os'

/** socket(7): SOL_SOCKET level and SO_BINDTOIFINDEX option number on Linux. */
export const SOL_SOCKET = 1
export const SO_BINDTOIFINDEX = 62

/** Sets SO_BINDTOIFINDEX on a bound dgram socket; throws when the addon or the kernel cannot. */
export type BindToInterface = (socket: Socket, ifindex: number) => Promise<void>

/**
 * The socket's file descriptor. dgram has no public accessor; `_handle` works but prints a deprecation warning
 * (DEP0112) into the daemon's log, so the handle is read from dgram's state symbol first.
 */
function socketFd(socket: Socket): number {
  const sym = Object.getOwnPropertySymbols(socket).find((s) => s.description === 'state symbol')
  const state = sym === undefined ? undefined : (socket as unknown as Record<symbol, { handle?: { fd?: number } }>)[sym]
  const fd = state?.handle?.fd ?? (socket as unknown as { _handle?: { fd?: number } })._handle?.fd
  if (typeof fd !== 'number' || fd < 0) throw new Error('the socket has no file descriptor yet (bind it first)')
  return fd
}

/**
 * SO_BINDTOIFINDEX through `sockopt`. Must run after bind: libuv creates the OS socket only at bind time
 * (verified here: setting it before bind fails with EBADF). The window between bind and this call is a few
 * microseconds in the same tick; a broadcast from another interface landing in it would be answered once.
 */
export const bindToInterfaceWithSockopt: BindToInterface = async (socket, ifindex) => {
  // A variable specifier: `sockopt` ships no types, and a missing native build must surface here, not at load.
  const specifier = 'sockopt'
  const mod = (await import(specifier)) as {
    default?: { setsockopt: (s: unknown, level: number, name: number, value: number) => void }
    setsockopt?: (s: unknown, level: number, name: number, value: number) => void
  }
  const setsockopt = mod.default?.setsockopt ?? mod.setsockopt
  if (setsockopt === undefined) throw new Error('the sockopt module has no setsockopt')
  setsockopt({ _handle: { fd: socketFd(socket) } }, SOL_SOCKET, SO_BINDTOIFINDEX, ifindex)
}

/** The kernel's index of interface `name` (from /sys/class/net/<name>/ifindex); throws when it does not exist. */
export function interfaceIndex(name: string): number {
  if (!/^[^/\s]{1,15}$/.test(name) || name === '.' || name === '..') throw new Error(`bad interface name ${JSON.stringify(name)}`)
  const n = Number(readFileSync(`/sys/class/net/${name}/ifindex`, 'utf8').trim())
  if (!Number.isInteger(n) || n <= 0) throw new Error(`interface ${name} has no usable ifindex`)
  return n
}

/** Names of the non-loopback interfaces that carry an IPv4 address; more than one means a multi-homed box. */
export function ipv4Interfaces(table: NodeJS.Dict<NetworkInterfaceInfo[]> = networkInterfaces()): string[] {
  return Object.keys(table).filter((n) => (table[n] ?? []).some((a) => a.family === 'IPv4' && !a.internal))
}
