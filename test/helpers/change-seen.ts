/**
 * Waiting for a watched cache to hear of a change on disk (host/confine.ts and what uses it).
 */
import type { Test } from 'tap'

/**
 * Asks (`resolveOnce`) until `done` says the answer is the new one, at most `ms` (a watch event arrives within a loop
 * turn or two of the change; 2 s is far beyond that, and bounds a cache that never hears of it). Every answer on the
 * way must pass `ok`, asserted as `what`: a stale answer is what was served before the change (for confine.ts, the
 * file that was confined then), never anything else.
 */
export async function until<T>(t: Test, resolveOnce: () => Promise<T>, done: (v: T) => boolean, ok: (v: T) => boolean, ms = 2000, what = 'every answer while the change is seen is confined'): Promise<T> {
  const end = Date.now() + ms
  for (;;) {
    const v = await resolveOnce()
    t.ok(ok(v), what) || t.comment(v)
    if (done(v) || Date.now() > end) return v
    await new Promise((r) => setTimeout(r, 5))
  }
}
