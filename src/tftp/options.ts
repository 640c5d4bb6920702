/**
 * TFTP option negotiation (RFC 2347) as one pure function: what the client asked, what we can do, what we answer.
 */
import type { TftpOption } from './packet.js'

/** RFC 2348: blksize is valid from 8 to 65464 octets. */
export const MIN_BLKSIZE = 8
export const MAX_BLKSIZE = 65464
/** RFC 1350 block size, used when blksize is not negotiated. */
export const DEFAULT_BLKSIZE = 512
/** RFC 7440: windowsize is valid from 1 to 65535 blocks. */
export const MAX_WINDOWSIZE = 65535

/** What the server allows. */
export interface NegotiationLimits {
  /** Interface MTU: DATA packets must fit in one unfragmented datagram. */
  mtu: number
  /** Operator cap on blksize. */
  maxBlockSize: number
  /** Operator cap on windowsize. */
  maxWindowSize: number
  /**
   * Largest RFC 2349 timeout (seconds) accepted (default 255, the RFC's maximum). The retransmit timer sets how long an
   * unanswered transfer holds its slot: timeout=255 held one for 25 minutes (issue 13).
   */
  maxTimeoutSeconds?: number
  /** Peer is IPv6 (40-byte IP header instead of 20). */
  ipv6?: boolean
}

/** The outcome of negotiation for one request. */
export interface Negotiated {
  /** Options to acknowledge, in request order. Empty means: no OACK, send DATA 1 straight away (RFC 2347). */
  oack: TftpOption[]
  blksize: number
  windowsize: number
  /** Retransmit timeout the client asked for (RFC 2349), when accepted. */
  timeoutMs?: number
  /** The client asked for tsize (a UEFI size probe often follows with ERROR 8). */
  tsizeRequested: boolean
}

/** Largest blksize whose DATA packet fits the MTU: MTU minus IP, UDP (8) and TFTP DATA (4) headers. */
export function blksizeForMtu(mtu: number, ipv6 = false): number {
  return mtu - (ipv6 ? 40 : 20) - 8 - 4
}

function parseDecimal(value: string): number | undefined {
  if (!/^[0-9]{1,10}$/.test(value)) return undefined
  return Number(value)
}

/**
 * Decides which requested options to accept. Unknown, malformed or out-of-range options are left out of the OACK
 * (RFC 2347: the server omits options it does not support). blksize above what the path or the cap allows is
 * answered with the smaller value (RFC 2348 lets the server reply with a smaller size); windowsize likewise (RFC 7440).
 */
export function negotiate(options: TftpOption[], fileSize: number, limits: NegotiationLimits): Negotiated {
  const result: Negotiated = { oack: [], blksize: DEFAULT_BLKSIZE, windowsize: 1, tsizeRequested: false }
  const seen = new Set<string>()
  const blkCap = Math.max(MIN_BLKSIZE, Math.min(MAX_BLKSIZE, limits.maxBlockSize, blksizeForMtu(limits.mtu, limits.ipv6)))
  const windowCap = Math.max(1, Math.min(MAX_WINDOWSIZE, limits.maxWindowSize))
  for (const [rawName, value] of options) {
    const name = rawName.toLowerCase()
    // A repeated option keeps its first value; answering twice would confuse clients.
    if (seen.has(name)) continue
    seen.add(name)
    const n = parseDecimal(value)
    switch (name) {
      case 'blksize':
        if (n === undefined || n < MIN_BLKSIZE) break
        result.blksize = Math.min(n, blkCap)
        result.oack.push(['blksize', String(result.blksize)])
        break
      case 'tsize':
        // RFC 2349: in a RRQ the client sends 0 and the server answers with the real size.
        if (n === undefined) break
        result.tsizeRequested = true
        result.oack.push(['tsize', String(fileSize)])
        break
      case 'timeout':
        // RFC 2349: 1..255 seconds, and the OACK "must match the value specified by the client": the server cannot
        // answer a smaller one. Above the cap the option is left out of the OACK (RFC 2347 lets the server omit what
        // it does not accept) and both sides keep their own timers.
        if (n === undefined || n < 1 || n > Math.min(255, limits.maxTimeoutSeconds ?? 255)) break
        result.timeoutMs = n * 1000
        result.oack.push(['timeout', String(n)])
        break
      case 'windowsize':
        if (n === undefined || n < 1 || n > MAX_WINDOWSIZE) break
        result.windowsize = Math.min(n, windowCap)
        result.oack.push(['windowsize', String(result.windowsize)])
        break
      default:
        break
    }
  }
  return result
}
