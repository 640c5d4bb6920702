/**
 * Per-client request rate limit: a fixed one-window counter per IP. After a power event every machine asks once or
 * twice (UEFI probes, then fetches); a client asking dozens of times a second is looping or hostile.
 */

/** A counter of requests per key within a time window. */
export interface RateLimiter {
  /** Counts one request from `key`; false when it is over the limit. */
  allow(key: string): boolean
  /** Stops the pruning timer. */
  stop(): void
}

/** Allows `max` requests per `windowMs` per key. Idle keys are pruned so a spoofed-source flood cannot grow memory. */
export function createRateLimiter(max: number, windowMs: number, now: () => number = Date.now): RateLimiter {
  const windows = new Map<string, { start: number; count: number }>()
  const prune = setInterval(() => {
    const t = now()
    for (const [key, w] of windows) if (t - w.start >= windowMs) windows.delete(key)
  }, Math.max(windowMs, 1000) * 10)
  prune.unref()
  return {
    allow(key) {
      const t = now()
      const w = windows.get(key)
      if (!w || t - w.start >= windowMs) {
        windows.set(key, { start: t, count: 1 })
        return max >= 1
      }
      w.count++
      return w.count <= max
    },
    stop() {
      clearInterval(prune)
    },
  }
}
