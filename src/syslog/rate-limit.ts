/**
 * Token buckets for the syslog receiver: one per source address and one for everything, so a flooding sender (or a
 * forged-source flood) costs a counter increment per datagram instead of a decode, a log line and a timeline append.
 *
 * Pure: time comes in as an argument (milliseconds, any monotonic origin), so tests step it by hand.
 */

/** A bucket's shape: it refills at `ratePerSecond` up to `burst` tokens; each datagram takes one. */
export interface TokenBucketLimits {
  ratePerSecond: number
  burst: number
}

/** One bucket. */
export interface TokenBucket {
  /** Takes a token if one is there; false means "over the limit, drop". */
  take(nowMs: number): boolean
}

/** Buckets by key (the source address), at most `maxKeys` of them. */
export interface KeyedTokenBuckets {
  take(key: string, nowMs: number): boolean
  /** How many keys have a bucket now (for a metrics gauge). */
  readonly size: number
}

interface BucketState {
  tokens: number
  lastMs: number
}

/** Refills `state` for the time since its last use, then takes a token if one is there. */
function takeFrom(state: BucketState, limits: TokenBucketLimits, nowMs: number): boolean {
  // A clock that went backwards (tests, a monotonic source mixed up with wall time) must not add tokens.
  const elapsed = Math.max(0, nowMs - state.lastMs)
  state.tokens = Math.min(limits.burst, state.tokens + (elapsed * limits.ratePerSecond) / 1000)
  state.lastMs = nowMs
  if (state.tokens < 1) return false
  state.tokens -= 1
  return true
}

/** A single bucket, full at `nowMs`. */
export function createTokenBucket(limits: TokenBucketLimits, nowMs: number): TokenBucket {
  const state: BucketState = { tokens: limits.burst, lastMs: nowMs }
  return { take: (now) => takeFrom(state, limits, now) }
}

/**
 * A bucket per key, created full on first sight. When `maxKeys` buckets exist the oldest-created one is forgotten:
 * memory stays bounded under a flood of forged source addresses. A forgotten sender comes back with a full bucket,
 * which is why the receiver has a global bucket too.
 */
export function createKeyedTokenBuckets(limits: TokenBucketLimits, maxKeys: number): KeyedTokenBuckets {
  const buckets = new Map<string, BucketState>()
  return {
    take(key, nowMs) {
      let state = buckets.get(key)
      if (state === undefined) {
        if (buckets.size >= maxKeys) {
          const oldest = buckets.keys().next().value
          if (oldest !== undefined) buckets.delete(oldest)
        }
        state = { tokens: limits.burst, lastMs: nowMs }
        buckets.set(key, state)
      }
      return takeFrom(state, limits, nowMs)
    },
    get size() {
      return buckets.size
    },
  }
}
