/**
 * IPv4 addresses: the one parser pxebox has (the DHCP codec, config checks, lease records, the address tracker and the
 * ARP probe all use it), dotted quads to 32-bit integers and back, and subnet arithmetic for pools.
 */

/**
 * The same rule as ipToInt as a JSON-schema pattern (the config schema cannot call code): four decimal octets
 * 0-255 without leading zeros. test/host/ipv4.test.ts checks that the two agree.
 */
export const IPV4_PATTERN = '^((25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)\\.){3}(25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)$'

/** Parses a dotted quad to an unsigned 32-bit integer; undefined when it is not one. */
export function ipToInt(ip: string): number | undefined {
  const parts = ip.split('.')
  if (parts.length !== 4) return undefined
  let n = 0
  for (const p of parts) {
    // No leading zeros: `010` is octal to inet_aton and decimal to humans; refuse rather than guess.
    if (!/^(0|[1-9]\d{0,2})$/.test(p)) return undefined
    const v = Number(p)
    if (v > 255) return undefined
    n = n * 256 + v
  }
  return n
}

/** True when `ip` is a dotted quad ipToInt accepts. */
export function isIPv4(ip: string): boolean {
  return ipToInt(ip) !== undefined
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
