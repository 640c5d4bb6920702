/**
 * Long catalog work in slices that give the event loop back. DHCP, TFTP and HTTP share one loop with the catalog
 * load; a SIGHUP reload of 10,000 groups used to hold it for ~8 s, so every machine booting meanwhile timed out
 * (issue 16). A loop over groups calls `slice()` between items: once the slice has run `budgetMs`, it waits for
 * setImmediate, which runs after pending I/O callbacks (an `await` on a resolved promise only runs other microtasks,
 * never a socket's callback). The boot path then waits at most one slice.
 */

/**
 * Yields to the event loop when the current slice has used its budget. A per-item loop awaits only a returned
 * promise (`const y = slicer.slice(); if (y) await y`): `await undefined` still makes a promise and a microtask turn,
 * and at 100,000 groups through six such loops that was ~100 MB of garbage per load (issue 16).
 */
export interface Slicer {
  /** Undefined while the slice has time left, else a promise that resolves after the event loop has run once. */
  slice(): Promise<void> | undefined
}

/** Default time one slice may hold the event loop: well under the 20 ms p99 the boot path is held to. */
export const SLICE_MS = 4

/** A slicer with `budgetMs` per slice; `budgetMs` Infinity never yields (pxebox validate, which serves nothing). */
export function createSlicer(budgetMs: number = SLICE_MS): Slicer {
  let started = performance.now()
  return {
    slice() {
      if (performance.now() - started < budgetMs) return undefined
      return new Promise<void>((resolve) =>
        setImmediate(() => {
          started = performance.now()
          resolve()
        }),
      )
    },
  }
}

/** A slicer that never yields, for callers with nothing else on the loop. */
export const unsliced: Slicer = { slice: () => undefined }

/**
 * `items` sorted by `key` (code-unit order), in slices: sorting 100,000 group ids at once holds the loop ~100 ms.
 * Runs of 2,048 are sorted, then merged pairwise, yielding every 4,096 elements. Stable.
 */
export async function sortSliced<T>(items: readonly T[], key: (item: T) => string, slicer: Slicer): Promise<T[]> {
  const RUN = 2048
  const byKey = (a: T, b: T): number => {
    const x = key(a)
    const y = key(b)
    return x < y ? -1 : x > y ? 1 : 0
  }
  let runs: T[][] = []
  for (let i = 0; i < items.length; i += RUN) {
    runs.push(items.slice(i, i + RUN).sort(byKey))
    const y = slicer.slice()
    if (y) await y
  }
  while (runs.length > 1) {
    const next: T[][] = []
    for (let i = 0; i < runs.length; i += 2) {
      const a = runs[i]!
      const b = runs[i + 1]
      if (b === undefined) {
        next.push(a)
        continue
      }
      // Already in order (a catalog read in file-name order is sorted by id): joined without comparing each item.
      if (byKey(a[a.length - 1]!, b[0]!) <= 0) {
        next.push(a.concat(b))
        const y = slicer.slice()
        if (y) await y
        continue
      }
      const out: T[] = new Array<T>(a.length + b.length)
      let x = 0
      let y = 0
      let k = 0
      while (x < a.length && y < b.length) {
        out[k++] = byKey(b[y]!, a[x]!) < 0 ? b[y++]! : a[x++]!
        if ((k & 4095) === 0) {
          const y = slicer.slice()
          if (y) await y
        }
      }
      while (x < a.length) out[k++] = a[x++]!
      while (y < b.length) out[k++] = b[y++]!
      next.push(out)
    }
    runs = next
  }
  return runs[0] ?? []
}
