/**
 * Chainload memory: which MACs fetched a first-stage iPXE binary from our TFTP a moment ago. The proxy policy asks it
 * for groups with `chainload_ipxe`, because an iPXE option ROM and the iPXE it chainloads send identical DHCP options
 * (see proxy-policy.ts): the only difference is that the second one just came from our TFTP server.
 *
 * The MAC is known at the TFTP layer because such offers name the file with a `<mac>/` prefix (TFTP files.ts maps the
 * prefix to the same file and records the MAC in the transfer event).
 */
import type { BootEvent } from '../machines/events.js'

/** iPXE first-stage binaries: what counts as "chainloaded". */
const IPXE_BINARY = /(^|\/)(undionly\.kpxe|undionly\.kkpxe|ipxe\.pxe|ipxe\.efi|snponly\.efi|snp\.efi)$/

/** Remembers recent iPXE transfers per MAC. */
export interface ChainloadTracker {
  /** Feed every boot event; only successful TFTP transfers of iPXE binaries with a MAC are kept. */
  observe(event: BootEvent): void
  /** True when `mac` fetched an iPXE binary within the window. */
  recently(mac: string, now?: number): boolean
}

/**
 * A tracker with a `windowMs` memory (default 120 s: a BIOS ROM's TFTP fetch, iPXE's start and its DHCP take a few
 * seconds on real hardware, far less than a reboot, so a machine that reboots later chainloads again).
 */
export function createChainloadTracker(windowMs = 120_000, clock: () => number = Date.now): ChainloadTracker {
  const seen = new Map<string, number>()
  return {
    observe(event) {
      if (event.kind !== 'tftp' || event.outcome !== 'ok' || !event.mac) return
      const file = String(event.detail.file ?? '')
      if (!IPXE_BINARY.test(file)) return
      const now = clock()
      seen.set(event.mac, now)
      // Forget stale entries so a long-running daemon does not grow with every MAC ever seen.
      if (seen.size > 10_000) for (const [mac, at] of seen) if (now - at > windowMs) seen.delete(mac)
    },
    recently(mac, now = clock()) {
      const at = seen.get(mac)
      return at !== undefined && now - at <= windowMs
    },
  }
}
