/**
 * Datagrams the kernel dropped at the receiver's socket because its buffer was full (the `drops` column of
 * /proc/net/udp and udp6). Under a flood most of the loss happens there, before pxebox sees anything, so the
 * receiver's own counters alone would understate a flood; a metrics exporter reads this on each scrape.
 */
import { readFileSync } from 'node:fs'
import { endianness } from 'node:os'
import { isIPv6 } from 'node:net'

/**
 * The `drops` value of the socket bound to `address:port` in /proc/net/udp text (IPv4 only: the address column is
 * the 32-bit address in host byte order, which is the reverse of dotted order on little-endian machines), or the
 * socket bound to `port` on any address for IPv6. Undefined when no line matches.
 */
export function socketDrops(procText: string, address: string, port: number, littleEndian = endianness() === 'LE'): number | undefined {
  const portHex = port.toString(16).toUpperCase().padStart(4, '0')
  let addrHex: string | undefined
  if (!isIPv6(address)) {
    const bytes = address.split('.').map((o) => Number(o).toString(16).toUpperCase().padStart(2, '0'))
    addrHex = (littleEndian ? bytes.reverse() : bytes).join('')
  }
  for (const line of procText.split('\n').slice(1)) {
    const cols = line.trim().split(/\s+/)
    const local = cols[1]
    const drops = cols[12]
    if (local === undefined || drops === undefined) continue
    const [a, p] = local.split(':')
    if (p !== portHex || (addrHex !== undefined && a !== addrHex)) continue
    const n = Number(drops)
    return Number.isSafeInteger(n) ? n : undefined
  }
  return undefined
}

/** Reads the kernel's drop count for the syslog socket at `address:port`; undefined where /proc is not readable. */
export function readSocketDrops(address: string, port: number): number | undefined {
  try {
    return socketDrops(readFileSync(isIPv6(address) ? '/proc/net/udp6' : '/proc/net/udp', 'utf8'), address, port)
  } catch {
    return undefined
  }
}
