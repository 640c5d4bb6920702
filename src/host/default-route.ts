/**
 * The IPv4 default routes of this network namespace, read from /proc/net/route. That file is per namespace: /proc/net
 * is /proc/self/net, which shows the reading process's network namespace, so it stays right inside a container or an
 * `ip netns exec`, where /sys/class/net may belong to another namespace (see interfaces.ts). It lists the main
 * routing table only, which is where a default route set by DHCP, ifupdown, networkd or NetworkManager lives.
 * `interface: auto` uses it to pick the box's own LAN on a multi-homed box (interfaces.ts).
 */
import { readFileSync } from 'node:fs'
import { endianness } from 'node:os'

/** One IPv4 default route (0.0.0.0/0) that is up. */
export interface DefaultRoute {
  iface: string
  /** The next hop, dotted quad; undefined for a route straight onto the link (no gateway). */
  gateway?: string
  metric: number
}

// linux/route.h
const RTF_UP = 0x0001
const RTF_GATEWAY = 0x0002
const RTF_REJECT = 0x0200

/**
 * Parses /proc/net/route's text into its default routes, lowest metric first. The kernel prints addresses as the
 * hex of the 32-bit value in host byte order (so 192.0.2.1 is `010200C0` on x86), flags and metric in hex/decimal.
 * Lines that do not have the expected columns are skipped: a default route we cannot read only means `auto` decides
 * by its next rule.
 */
export function parseDefaultRoutes(text: string, littleEndian = endianness() === 'LE'): DefaultRoute[] {
  const routes: DefaultRoute[] = []
  for (const line of text.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/)
    if (f.length < 8) continue
    const [iface, destination, gateway, flagsHex, , , metricText, mask] = f as [string, string, string, string, string, string, string, string]
    const flags = Number.parseInt(flagsHex, 16)
    if (!/^[0-9A-Fa-f]{8}$/.test(gateway) || !Number.isInteger(flags) || !/^\d+$/.test(metricText)) continue
    if (destination !== '00000000' || mask !== '00000000') continue
    if ((flags & RTF_UP) === 0 || (flags & RTF_REJECT) !== 0) continue
    const route: DefaultRoute = { iface, metric: Number(metricText) }
    if ((flags & RTF_GATEWAY) !== 0) route.gateway = hexToIp(gateway, littleEndian)
    routes.push(route)
  }
  return routes.sort((a, b) => a.metric - b.metric)
}

/** This namespace's IPv4 default routes, lowest metric first; empty when there are none or the file is unreadable. */
export function readDefaultRoutes(): DefaultRoute[] {
  try {
    return parseDefaultRoutes(readFileSync('/proc/net/route', 'utf8'))
  } catch {
    return []
  }
}

function hexToIp(hex: string, littleEndian: boolean): string {
  const bytes = Buffer.from(hex, 'hex')
  if (littleEndian) bytes.reverse()
  return [...bytes].join('.')
}
