/** Seeded packet mutation for the randomized decode and server tests. */

/** xorshift32: a small seeded PRNG so failures reproduce. */
export function rng(seed: number): () => number {
  let x = seed >>> 0 || 1
  return () => {
    x ^= x << 13
    x >>>= 0
    x ^= x >>> 17
    x ^= x << 5
    x >>>= 0
    return x
  }
}

/** One random mutation of a real packet: bit flips, truncation, byte insertion or deletion, length-byte pokes. */
export function mutate(src: Buffer, next: () => number): Buffer {
  let b = Buffer.from(src)
  const rounds = 1 + (next() % 4)
  for (let i = 0; i < rounds; i++) {
    const kind = next() % 5
    const at = b.length === 0 ? 0 : next() % b.length
    if (kind === 0 && b.length > 0) b[at] = (b[at] as number) ^ (1 << next() % 8)
    else if (kind === 1) b = b.subarray(0, next() % (b.length + 1))
    else if (kind === 2) b = Buffer.concat([b.subarray(0, at), Buffer.from([next() & 0xff]), b.subarray(at)])
    else if (kind === 3 && b.length > 0) b = Buffer.concat([b.subarray(0, at), b.subarray(at + 1)])
    else if (b.length > 240) b[240 + (next() % (b.length - 240))] = next() & 0xff
  }
  return b
}
