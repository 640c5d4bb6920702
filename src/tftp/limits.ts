/**
 * Per-client limits: a request rate (a fixed one-window counter per IP) and a share of the transfer slots. After a
 * power event every machine asks once or twice (UEFI probes, then fetches); a client asking dozens of times a second,
 * or holding dozens of transfers, is looping or hostile.
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

/** Concurrent slots per key, each taken with tryAcquire() and given back with release(). */
export interface SlotQuota {
  /** Takes one of `key`'s slots; false when it holds all of them. */
  tryAcquire(key: string): boolean
  /** Gives one back; call once per successful tryAcquire(). */
  release(key: string): void
  /** Slots `key` holds now. */
  held(key: string): number
}

/**
 * At most `max` concurrent slots per key. The global transfer cap alone let one IP take every slot (520 unanswered
 * RRQs, issue 13); a share per client keeps the rest for everyone else. Keys holding nothing are forgotten at once,
 * so the map is bounded by the slots in use.
 */
export function createSlotQuota(max: number): SlotQuota {
  const holding = new Map<string, number>()
  return {
    tryAcquire(key) {
      const n = holding.get(key) ?? 0
      if (n >= max) return false
      holding.set(key, n + 1)
      return true
    },
    release(key) {
      const n = (holding.get(key) ?? 0) - 1
      if (n > 0) holding.set(key, n)
      else holding.delete(key)
    },
    held: (key) => holding.get(key) ?? 0,
  }
}
