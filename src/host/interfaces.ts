/**
 * The PXE interface: which one, its IPv4 address, MTU, index and whether it has carrier. Asked of this network
 * namespace's kernel through the native addon (getifaddrs, if_nametoindex, SIOCGIFMTU: native/netif.c), never
 * guessed from routing (pxe-protocol.md: option 54 must be our address on the PXE VLAN). Two sources are avoided on
 * purpose: `/sys/class/net` belongs to another namespace in container set-ups that share the host's /sys, and Node's
 * `os.networkInterfaces()` leaves out every interface that is not RUNNING, so a bridge with no port up, or a cable
 * unplugged at boot, made pxebox refuse to start although its sockets bind fine and answer once the link comes up.
 * Without the addon those two are the fallback, with their limits.
 */
import { readFileSync } from 'node:fs'
import { networkInterfaces } from 'node:os'
import { readDefaultRoutes, type DefaultRoute } from './default-route.js'
import { ipToInt } from './ipv4.js'
import { loadNative, type NativeLoad } from './native.js'

/** One network interface of this namespace. */
export interface LinkInfo {
  name: string
  /** The kernel's ifindex; 0 when unknown. */
  index: number
  mtu: number
  /** Administratively up (IFF_UP). */
  up: boolean
  /** Carrier: the link is operational (IFF_RUNNING). */
  running: boolean
  loopback: boolean
  ipv4: { address: string; prefix: number }[]
}

/** The interface pxebox serves on. */
export interface PxeInterface {
  name: string
  address: string
  /** Prefix length of `address` on this interface. */
  prefix: number
  mtu: number
  ifindex: number
  /** False when the link is down or has no carrier: pxebox serves anyway, and answers once it comes up. */
  carrier: boolean
  /** Other non-loopback interfaces with an IPv4 address: non-empty means a multi-homed box. */
  others: string[]
  /** With `interface: auto`: why this interface was picked (pickAutoInterface), for the log. */
  chosenBy?: string
}

/** Thrown when the configured interface or address cannot be used; the message says what to change. */
export class InterfaceError extends Error {
  readonly code = 'PXEBOX_INTERFACE'
  override name = 'InterfaceError'
}

/**
 * Every interface of this namespace, from the kernel through the addon, else from Node and /sys (running ones only).
 * `native`: the addon as the daemon loaded it; loaded here when not given.
 */
export function listInterfaces(native: NativeLoad = loadNative()): LinkInfo[] {
  const { addon } = native
  if (addon !== undefined) return addon.interfaces()
  const table = networkInterfaces()
  return Object.entries(table).map(([name, addrs = []]) => ({
    name,
    index: Number(readSys(`/sys/class/net/${name}/ifindex`)) || 0,
    mtu: Number(readSys(`/sys/class/net/${name}/mtu`)) || 1500,
    // libuv lists only interfaces that are UP and RUNNING.
    up: true,
    running: true,
    loopback: addrs.some((a) => a.internal),
    ipv4: addrs.filter((a) => a.family === 'IPv4').map((a) => ({ address: a.address, prefix: Number(a.cidr?.split('/')[1] ?? 24) })),
  }))
}

/** Names of the non-loopback interfaces that carry an IPv4 address; more than one means a multi-homed box. */
export function ipv4InterfaceNames(links: LinkInfo[] = listInterfaces()): string[] {
  return links.filter((l) => !l.loopback && l.ipv4.length > 0).map((l) => l.name)
}

/**
 * Resolve `interface` (a name or `auto`) and the optional `address` from config against the interfaces present.
 * `links` and `defaultRoutes` are parameters so tests can describe any box.
 */
export function resolvePxeInterface(
  wanted: string,
  address: string | undefined,
  links: LinkInfo[] = listInterfaces(),
  defaultRoutes: DefaultRoute[] = readDefaultRoutes(),
): PxeInterface {
  const candidates = ipv4InterfaceNames(links)
  let name = wanted
  let chosenBy: string | undefined
  if (wanted === 'auto') ({ name, reason: chosenBy } = pickAutoInterface(links, address, defaultRoutes))
  // Loopback is never picked by `auto`, but may be named: a namespace holding only lo is how tests and demos run.
  const link = links.find((l) => l.name === name)
  if (link === undefined) {
    const known = links.map((l) => l.name).join(', ')
    throw new InterfaceError(`interface "${name}" does not exist (this box has: ${known})`)
  }
  let chosen: LinkInfo['ipv4'][number] | undefined
  if (address !== undefined) {
    chosen = link.ipv4.find((a) => a.address === address)
    if (!chosen) {
      const have = link.ipv4.map((a) => a.address).join(', ') || 'none'
      throw new InterfaceError(`address ${address} is not on interface ${name} (it has: ${have})`)
    }
  } else {
    chosen = link.ipv4[0]
    if (!chosen) throw new InterfaceError(`interface ${name} has no IPv4 address; add one or set \`address:\``)
  }
  return {
    name,
    address: chosen.address,
    prefix: chosen.prefix,
    mtu: link.mtu || 1500,
    ifindex: link.index,
    carrier: link.up && link.running,
    others: candidates.filter((n) => n !== name),
    ...(chosenBy === undefined ? {} : { chosenBy }),
  }
}

/**
 * `interface: auto`: which interface, and why. The installed default config says `auto`, and a box with a second
 * IPv4 interface (docker0, virbr0, a VPN, a management port) must still start on it, so the rules, in order:
 * 1. the only non-loopback interface with IPv4;
 * 2. the one holding `address:`, when that is set;
 * 3. the one the default route leaves through (lowest metric): the box's own LAN, where a proxyDHCP sits next to the
 *    site's DHCP server, while bridges for local VMs or containers and most VPNs carry no default route;
 * 4. the only one with a private (RFC 1918) address.
 * Where none decides, an InterfaceError listing every candidate: guessing there could answer PXE on the wrong VLAN.
 */
export function pickAutoInterface(links: LinkInfo[], address: string | undefined, defaultRoutes: DefaultRoute[]): { name: string; reason: string } {
  const candidates = links.filter((l) => !l.loopback && l.ipv4.length > 0)
  if (candidates.length === 0) throw new InterfaceError('interface: auto found no interface with an IPv4 address; set `interface:` to the PXE VLAN interface')
  if (candidates.length === 1) return { name: candidates[0]!.name, reason: 'the only non-loopback interface with an IPv4 address' }
  const listed = candidates.map((l) => `${l.name} ${l.ipv4.map((a) => `${a.address}/${a.prefix}`).join(' ')}`).join(', ')
  if (address !== undefined) {
    const holder = candidates.find((l) => l.ipv4.some((a) => a.address === address))
    if (holder !== undefined) return { name: holder.name, reason: `it holds address ${address}` }
    throw new InterfaceError(`interface: auto: no interface holds address ${address} (this box has: ${listed})`)
  }
  const names = new Set(candidates.map((l) => l.name))
  const routes = defaultRoutes.filter((r) => names.has(r.iface))
  const best = routes.filter((r) => r.metric === routes[0]?.metric)
  if (best.length > 0 && best.every((r) => r.iface === best[0]!.iface)) {
    const route = best[0]!
    return { name: route.iface, reason: `the default route leaves through it${route.gateway ? ` (via ${route.gateway})` : ''}; other IPv4 interfaces: ${[...names].filter((n) => n !== route.iface).join(', ')}` }
  }
  const privateOnes = candidates.filter((l) => l.ipv4.some((a) => isPrivateIPv4(a.address)))
  if (privateOnes.length === 1) {
    const routeNote = best.length > 0 ? `default routes of equal metric through ${[...new Set(best.map((r) => r.iface))].join(', ')}` : 'no default route'
    return { name: privateOnes[0]!.name, reason: `the only one with a private (RFC 1918) address (${routeNote})` }
  }
  const routeNote = best.length > 0 ? `default routes of equal metric through ${[...new Set(best.map((r) => r.iface))].join(' and ')}` : 'no default route through any of them'
  throw new InterfaceError(
    `interface: auto is ambiguous: this box has ${candidates.length} interfaces with IPv4 (${listed}), ${routeNote}, ` +
      `and ${privateOnes.length === 0 ? 'none' : privateOnes.length} with a private address; set \`interface:\` to the PXE VLAN one`,
  )
}

/** RFC 1918 section 3: 10/8, 172.16/12, 192.168/16. */
function isPrivateIPv4(address: string): boolean {
  const n = ipToInt(address)
  if (n === undefined) return false
  return n >>> 24 === 0x0a || n >>> 20 === 0xac1 || n >>> 16 === 0xc0a8
}

/**
 * The kernel's index of interface `name`: if_nametoindex(3) through the addon, else `/sys/class/net/<name>/ifindex`.
 * Throws when there is no such interface. `native`: the addon as the daemon loaded it; loaded here when not given.
 */
export function interfaceIndex(name: string, native: NativeLoad = loadNative()): number {
  if (!/^[^/\s]{1,15}$/.test(name) || name === '.' || name === '..') throw new Error(`bad interface name ${JSON.stringify(name)}`)
  const { addon } = native
  const n = addon !== undefined ? addon.nameToIndex(name) : Number(readSys(`/sys/class/net/${name}/ifindex`))
  if (!Number.isInteger(n) || n <= 0) throw new Error(`interface ${name} does not exist`)
  return n
}

function readSys(path: string): string | null {
  try {
    return readFileSync(path, 'utf8').trim()
  } catch {
    return null
  }
}
