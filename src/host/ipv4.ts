/** IPv4 address arithmetic for pools and subnet checks: dotted quads to 32-bit integers and back. */

/** Parses a dotted quad to an unsigned 32-bit integer; undefined when it is not one. */
export function ipToInt(ip: string): number | undefined {
  const parts = ip.split('.')
  if (parts.length !== 4) return undefined
  let n = 0
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p)) return undefined
    const v = Number(p)
    if (v > 255) return undefined
    n = n * 256 + v
  }
  return n
}

/** Formats an unsigned 32-bit integer as a dotted quad. */
export function intToIp(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.')
}

/** The netmask of a prefix length as a dotted quad (24 -> 255.255.255.0). */
export function prefixToNetmask(prefix: number): string {
  return intToIp(prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0)
}

/** Prefix length of a contiguous netmask, or undefined when the mask has holes. */
export function netmaskToPrefix(mask: string): number | undefined {
  const n = ipToInt(mask)
  if (n === undefined) return undefined
  const bits = n.toString(2).padStart(32, '0')
  return /^1*0*$/.test(bits) ? bits.indexOf('0') === -1 ? 32 : bits.indexOf('0') : undefined
}

/** True when `ip` is inside `network/prefix`. */
export function inSubnet(ip: string, network: string, prefix: number): boolean {
  const a = ipToInt(ip)
  const b = ipToInt(network)
  if (a === undefined || b === undefined) return false
  const mask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0
  return ((a & mask) >>> 0) === ((b & mask) >>> 0)
}
