/**
 * Reads a growing pino log (JSON lines) incrementally, a bench's view of a daemon's log volume: lines and bytes,
 * warn (level 40) and error/fatal (50, 60) lines, and which warn messages are most frequent. Each poll reads only
 * what was appended since the last one, so a log of hundreds of MB costs no more than its growth.
 */
import { openSync, readSync, closeSync, fstatSync } from 'node:fs'

/** Counts over what one poll read (or over everything so far). */
export interface LogCounts {
  lines: number
  bytes: number
  warn: number
  error: number
}

/** A watch on one log file. */
export interface LogWatch {
  /** Reads what was appended since the last poll; returns the counts of those lines. */
  poll(): LogCounts
  /** Counts since the watch started. */
  total(): LogCounts
  /** The `n` most frequent warn messages (pino's `msg`, MACs, addresses and numbers masked), with their counts. */
  topWarnings(n: number): [string, number][]
  /** The last `n` lines read (for a post-mortem). */
  tail(n: number): string[]
}

const WARN = /"level":40[,}]/
const ERROR = /"level":(50|60)[,}]/
const MSG = /"msg":"((?:[^"\\]|\\.)*)"/
const TAIL_KEEP = 40

/** Watches `file` from its first byte (start the watch before the daemon writes; the file may not exist yet). */
export function watchLog(file: string): LogWatch {
  let offset = 0
  let partial = ''
  const total: LogCounts = { lines: 0, bytes: 0, warn: 0, error: 0 }
  const warnings = new Map<string, number>()
  let last: string[] = []
  const chunk = Buffer.alloc(1 << 20)
  return {
    poll() {
      const counts: LogCounts = { lines: 0, bytes: 0, warn: 0, error: 0 }
      let fd: number
      try {
        fd = openSync(file, 'r')
      } catch {
        return counts
      }
      try {
        const size = fstatSync(fd).size
        while (offset < size) {
          const n = readSync(fd, chunk, 0, Math.min(chunk.length, size - offset), offset)
          if (n <= 0) break
          offset += n
          counts.bytes += n
          const lines = (partial + chunk.toString('utf8', 0, n)).split('\n')
          partial = lines.pop() ?? ''
          counts.lines += lines.length
          for (const line of lines) {
            if (WARN.test(line)) {
              counts.warn++
              // Addresses and numbers vary per line ("a second DHCP server 10.213.1.2"): the message's kind is the rest.
              const msg = (MSG.exec(line)?.[1] ?? '(no msg)')
                .replace(/\b([0-9a-f]{2}[:-]){5}[0-9a-f]{2}\b/gi, '<mac>')
                .replace(/\d+(\.\d+){3}/g, '<ip>')
                .replace(/\d+/g, 'N')
                .slice(0, 120)
              warnings.set(msg, (warnings.get(msg) ?? 0) + 1)
            } else if (ERROR.test(line)) counts.error++
          }
          last = [...last, ...lines.slice(-TAIL_KEEP)].slice(-TAIL_KEEP)
        }
      } finally {
        closeSync(fd)
      }
      for (const k of ['lines', 'bytes', 'warn', 'error'] as const) total[k] += counts[k]
      return counts
    },
    total: () => ({ ...total }),
    topWarnings: (n) => [...warnings].sort((a, b) => b[1] - a[1]).slice(0, n),
    tail: (n) => [...last, ...(partial === '' ? [] : [partial])].slice(-n),
  }
}
