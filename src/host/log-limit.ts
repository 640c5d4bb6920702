/**
 * A summarizing log gate: lets the first `maxPerWindow` lines of one kind through in each window, counts the rest, and
 * hands one summary per window to the caller. Refusal logs are written by whoever sends the traffic: a spoofed flood
 * turned every TFTP refusal into a warn line (15 MB of log in 10 s, issue 13). Any server that logs per packet
 * (TFTP, DHCP, the address tracker, syslog) can put its per-packet lines behind one gate each.
 *
 *   const gate = createLogGate({
 *     onSummary: (s) => logger.warn(s, `suppressed ${s.suppressed} TFTP refusals from ${s.sources} clients in the last 10 s`),
 *   })
 *   if (gate.admit(peer.address, 'rate limit')) logger.warn({ peer }, 'TFTP request refused: over its request rate')
 *   ...
 *   gate.stop() // on close: flushes a pending summary
 *
 * Windows are fixed and start with the first admit() after a quiet one. The summary comes from an unref'd timer at
 * the window's end (so the last burst is reported even when nothing follows it), only for windows that suppressed
 * something. Memory is bounded: distinct sources are counted up to `maxSources` (the summary then says so), and
 * kinds are the caller's few constants.
 */

/** What one window suppressed. */
export interface LogGateSummary {
  /** Lines suppressed in the window. */
  suppressed: number
  /** Distinct keys among them (at most `maxSources`; see `sourcesCapped`). */
  sources: number
  /** True when there were more distinct keys than counted. */
  sourcesCapped: boolean
  /** Suppressed lines per kind, for the kinds passed to admit(). */
  kinds: Record<string, number>
  /** The window length, for the message. */
  windowMs: number
}

/** Options for createLogGate. */
export interface LogGateOptions {
  /** Lines let through per window (default 20). */
  maxPerWindow?: number
  /** Window length (default 10,000 ms). */
  windowMs?: number
  /** Distinct keys counted per window (default 10,000); a spoofed-source flood cannot grow the gate past it. */
  maxSources?: number
  /** Called once per window that suppressed anything. Must not throw. */
  onSummary: (summary: LogGateSummary) => void
  /** Clock, for tests (default Date.now). */
  now?: () => number
}

/** A gate in front of one family of log lines. */
export interface LogGate {
  /**
   * Counts one line from `key` (usually the peer's address) of `kind` (a short constant such as 'rate limit');
   * true means log it, false means it was counted for the summary instead.
   */
  admit(key: string, kind?: string): boolean
  /** Ends the current window now: emits its summary if it suppressed anything. */
  flush(): void
  /** Flushes and stops the timer; admit() keeps working (and gating) afterwards, without summaries. */
  stop(): void
}

/** Kinds are meant to be constants; a caller passing wire data as a kind still cannot grow the gate. */
const MAX_KINDS = 32

/** Creates a gate; see the module comment. */
export function createLogGate(options: LogGateOptions): LogGate {
  const maxPerWindow = options.maxPerWindow ?? 20
  const windowMs = options.windowMs ?? 10_000
  const maxSources = options.maxSources ?? 10_000
  const now = options.now ?? Date.now
  let windowStart = -Infinity
  let admitted = 0
  let suppressed = 0
  let sourcesCapped = false
  const sources = new Set<string>()
  const kinds = new Map<string, number>()
  let timer: NodeJS.Timeout | undefined
  let stopped = false

  function flush(): void {
    if (timer !== undefined) clearTimeout(timer)
    timer = undefined
    if (suppressed > 0) {
      const summary: LogGateSummary = { suppressed, sources: sources.size, sourcesCapped, kinds: Object.fromEntries(kinds), windowMs }
      try {
        options.onSummary(summary)
      } catch {
        // A summary that cannot be written must not take the caller's packet path down with it.
      }
    }
    windowStart = -Infinity
    admitted = 0
    suppressed = 0
    sourcesCapped = false
    sources.clear()
    kinds.clear()
  }

  return {
    admit(key, kind) {
      const t = now()
      if (t - windowStart >= windowMs) {
        flush()
        windowStart = t
      }
      if (admitted < maxPerWindow) {
        admitted++
        return true
      }
      suppressed++
      if (sources.size < maxSources) sources.add(key)
      else if (!sources.has(key)) sourcesCapped = true
      if (kind !== undefined && (kinds.has(kind) || kinds.size < MAX_KINDS)) kinds.set(kind, (kinds.get(kind) ?? 0) + 1)
      if (timer === undefined && !stopped) {
        timer = setTimeout(flush, Math.max(0, windowStart + windowMs - t))
        timer.unref()
      }
      return false
    },
    flush,
    stop() {
      stopped = true
      flush()
    },
  }
}
