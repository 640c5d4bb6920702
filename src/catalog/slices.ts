/**
 * Long catalog work in slices that give the event loop back. DHCP, TFTP and HTTP share one loop with the catalog
 * load; a SIGHUP reload of 10,000 groups used to hold it for ~8 s, so every machine booting meanwhile timed out
 * (issue 16). A loop over groups calls `slice()` between items: once the slice has run `budgetMs`, it waits for
 * setImmediate, which runs after pending I/O callbacks (an `await` on a resolved promise only runs other microtasks,
 * never a socket's callback). The boot path then waits at most one slice.
 */

/** Yields to the event loop when the current slice has used its budget. */
export interface Slicer {
  /** Resolves at once while the slice has time left, else after the event loop has run once. */
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
