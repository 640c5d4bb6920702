/**
 * "Does anything answer ARP for this address?" (RFC 5227 section 2.1.1 probe: sender IP 0.0.0.0, so the probe
 * itself claims nothing), asked through Debian's `arping` (Thomas Habets' arping 2.x, package `arping`; not the
 * iputils one, whose flags differ: there -D is duplicate detection, here it is display mode). Exit status 0 means
 * at least one reply, 1 none. It needs CAP_NET_RAW only and works in a network namespace.
 */
import { isIPv4 } from '../host/ipv4.js'
import { spawn } from 'node:child_process'

/** The probe's verdict: something answered, nothing did, or the probe could not run. */
export type ProbeResult = 'answered' | 'silent' | 'error'

/** Probes `ip` on `interfaceName`. */
export type ArpProbe = (ip: string) => Promise<ProbeResult>

/** Probe settings. */
export interface ArpProbeOptions {
  interfaceName: string
  /** ARP requests to send (RFC 5227 PROBE_NUM is 3; 2 is plenty on one L2 segment). */
  count?: number
  /** Total wait, ms (arping's -w deadline). */
  timeoutMs?: number
  /** At most this many arping processes at once; more wait their turn. */
  concurrency?: number
  command?: string
}

/** An ArpProbe backed by `arping -0 -q -C 1 -c N -w T -i IFACE IP` (-C 1: stop at the first answer). */
export function arpingProbe(opts: ArpProbeOptions): ArpProbe {
  const count = opts.count ?? 2
  const timeoutS = (opts.timeoutMs ?? 1000) / 1000
  const limit = opts.concurrency ?? 32
  let running = 0
  const queue: (() => void)[] = []
  const slot = async (): Promise<void> => {
    if (running < limit) {
      running++
      return
    }
    await new Promise<void>((res) => queue.push(res))
  }
  const release = (): void => {
    const next = queue.shift()
    if (next !== undefined) next()
    else running--
  }
  return async (ip) => {
    if (!isIPv4(ip)) return 'error'
    await slot()
    try {
      return await new Promise<ProbeResult>((resolve) => {
        const c = spawn(
          opts.command ?? 'arping',
          // -W: gap between requests, so `count` requests fit inside the deadline.
          ['-0', '-q', '-C', '1', '-c', String(count), '-W', String(timeoutS / (count + 1)), '-w', String(timeoutS), '-i', opts.interfaceName, ip],
          { stdio: 'ignore' },
        )
        c.on('error', () => resolve('error'))
        c.on('exit', (code) => resolve(code === 0 ? 'answered' : code === 1 ? 'silent' : 'error'))
      })
    } finally {
      release()
    }
  }
}
