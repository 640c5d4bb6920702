/**
 * The PXE interface: which one, its IPv4 address, MTU and index. Read from `os.networkInterfaces()` and
 * `/sys/class/net`, never guessed from routing (pxe-protocol.md: option 54 must be our address on the PXE VLAN).
 */
import { readFileSync } from 'node:fs'
import { networkInterfaces, type NetworkInterfaceInfo } from 'node:os'

/** The interface pxebox serves on. */
export interface PxeInterface {
  name: string
  address: string
  /** Prefix length of `address` on this interface. */
  prefix: number
  mtu: number
  ifindex: number
  /** Other non-loopback interfaces with an IPv4 address: non-empty means a multi-homed box. */
  others: string[]
}

/** Thrown when the configured interface or address cannot be used; the message says what to change. */
export class InterfaceError extends Error {
  readonly code = 'PXEBOX_INTERFACE'
  override name = 'InterfaceError'
}

type Table = NodeJS.Dict<NetworkInterfaceInfo[]>

/**
 * Resolve `interface` (a name or `auto`) and the optional `address` from config against the interfaces present.
 * `table` and `sysfs` are parameters so tests can describe any box.
 */
export function resolvePxeInterface(
  wanted: string,
  address: string | undefined,
  table: Table = networkInterfaces(),
  sysfs: (path: string) => string | null = readSys,
): PxeInterface {
  const ipv4 = (name: string) => (table[name] ?? []).filter((a) => a.family === 'IPv4' && !a.internal)
  const candidates = Object.keys(table).filter((n) => ipv4(n).length > 0)
  // Loopback is never picked by `auto`, but may be named: a namespace holding only lo is how tests and demos run.
  const usable = (name: string) => (table[name] ?? []).filter((a) => a.family === 'IPv4' && (!a.internal || name === wanted))
  let name = wanted
  if (wanted === 'auto') {
    if (candidates.length === 0) throw new InterfaceError('interface: auto found no interface with an IPv4 address; set `interface:` to the PXE VLAN interface')
    if (candidates.length > 1) {
      throw new InterfaceError(
        `interface: auto is ambiguous, this box has ${candidates.length} interfaces with IPv4 (${candidates.join(', ')}); set \`interface:\` to the PXE VLAN one`,
      )
    }
    name = candidates[0]!
  } else if (!(name in table)) {
    const known = Object.keys(table).join(', ')
    throw new InterfaceError(`interface "${name}" does not exist (this box has: ${known}); is the VLAN interface up?`)
  }
  const addrs = usable(name)
  let chosen: NetworkInterfaceInfo | undefined
  if (address !== undefined) {
    chosen = addrs.find((a) => a.address === address)
    if (!chosen) {
      const have = addrs.map((a) => a.address).join(', ') || 'none'
      throw new InterfaceError(`address ${address} is not on interface ${name} (it has: ${have})`)
    }
  } else {
    chosen = addrs[0]
    if (!chosen) throw new InterfaceError(`interface ${name} has no IPv4 address; add one or set \`address:\``)
  }
  const prefix = chosen.cidr ? Number(chosen.cidr.split('/')[1]) : 24
  const mtu = Number(sysfs(`/sys/class/net/${name}/mtu`) ?? 1500) || 1500
  const ifindex = Number(sysfs(`/sys/class/net/${name}/ifindex`) ?? 0) || 0
  return { name, address: chosen.address, prefix, mtu, ifindex, others: candidates.filter((n) => n !== name) }
}

function readSys(path: string): string | null {
  try {
    return readFileSync(path, 'utf8').trim()
  } catch {
    return null
  }
}
