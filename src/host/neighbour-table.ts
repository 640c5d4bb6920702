/**
 * The kernel's IPv4 neighbour (ARP) table limits, and whether they fit the machines pxebox answers. Every TFTP block,
 * HTTP byte and unicast DHCP reply to a machine needs its neighbour entry. The table is one for the whole kernel, every
 * network namespace and container included. Above gc_thresh2 (512 by default) entries older than 5 s are dropped, so
 * a storm's replies wait on ARP again. At gc_thresh3 (1,024) no new entry is made ("neighbor table overflow" in
 * dmesg) and replies to further machines are lost until the client retransmits. Measured in bench/storm.sh: at 1,000
 * machines the defaults cost thousands of retransmits and halved boots/min. Neither dnsmasq nor a web server says
 * anything about it, so pxebox warns at start.
 */
import { readFileSync } from 'node:fs'

/** The limits that matter (net.ipv4.neigh.default.gc_thresh2 and gc_thresh3). */
export interface NeighbourLimits {
  /** Soft limit: above it, entries older than 5 s are collected. */
  readonly gcThresh2: number
  /** Hard limit: no new entry above it. */
  readonly gcThresh3: number
}

const SYSCTL = '/proc/sys/net/ipv4/neigh/default'

/**
 * Reads the limits, or undefined when /proc does not show them: a container without /proc/sys, another kernel. Then
 * no advice is given.
 */
export function readNeighbourLimits(read: (path: string) => string = (p) => readFileSync(p, 'utf8')): NeighbourLimits | undefined {
  try {
    const gcThresh2 = Number(read(`${SYSCTL}/gc_thresh2`).trim())
    const gcThresh3 = Number(read(`${SYSCTL}/gc_thresh3`).trim())
    if (!Number.isInteger(gcThresh2) || !Number.isInteger(gcThresh3) || gcThresh2 <= 0 || gcThresh3 <= 0) return undefined
    return { gcThresh2, gcThresh3 }
  } catch {
    return undefined
  }
}

/**
 * Values that fit `machines` with room for the rest of the box: gc_thresh2 at least twice the machines and
 * gc_thresh3 twice that, gc_thresh1 (below which nothing is collected) a quarter of it. Powers of two, as the kernel's
 * defaults are.
 */
export function suggestedLimits(machines: number): { gcThresh1: number; gcThresh2: number; gcThresh3: number } {
  const pow2 = (n: number) => 2 ** Math.ceil(Math.log2(Math.max(2, n)))
  // Never below the kernel's own defaults (128, 512, 1,024): the advice is only given above them.
  const gcThresh2 = Math.max(1024, pow2(2 * machines))
  return { gcThresh1: gcThresh2 / 4, gcThresh2, gcThresh3: 2 * gcThresh2 }
}

/**
 * The warning for an operator when `machines` (the machines pxebox knows, or the addresses its DHCP range hands out,
 * whichever is more) do not fit under the soft limit; undefined when they do.
 */
export function neighbourTableAdvice(machines: number, limits: NeighbourLimits): string | undefined {
  if (machines <= limits.gcThresh2) return undefined
  const s = suggestedLimits(machines)
  return (
    `the kernel's neighbour (ARP) table is smaller than this VLAN: ${machines} machines, but entries are collected above ` +
    `${limits.gcThresh2} (net.ipv4.neigh.default.gc_thresh2) and refused above ${limits.gcThresh3} (gc_thresh3), for ` +
    'every namespace of this box together. When many machines boot at once, replies wait on ARP again or are lost ' +
    '("neighbor table overflow" in dmesg). Raise the limits: sysctl -w ' +
    `net.ipv4.neigh.default.gc_thresh1=${s.gcThresh1} net.ipv4.neigh.default.gc_thresh2=${s.gcThresh2} ` +
    `net.ipv4.neigh.default.gc_thresh3=${s.gcThresh3}, and put the same in /etc/sysctl.d/ to keep them.`
  )
}
