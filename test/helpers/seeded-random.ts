/** Seeded randomness for property and fuzz tests: a failure reproduces from its seed. */

/** A seeded PRNG (mulberry32), so a run repeats exactly from its seed (loss patterns, fuzz inputs, edit sequences). */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}
