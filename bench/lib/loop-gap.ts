/**
 * The longest the event loop went without a turn while a benchmark's work ran in this process: a 1 ms interval notes
 * the gap between its turns (how long a DHCP offer, TFTP block or HTTP reply due then would have waited). The in-process
 * counterpart of loop-probe.ts, for benches that run the code under test themselves (fleet-list.ts, lease-commit.ts).
 */

/** Starts watching the loop; the returned function stops and gives the longest gap seen (ms), the last one included. */
export function watchLoopGaps(): () => number {
  let last = performance.now()
  let worst = 0
  const tick = setInterval(() => {
    const now = performance.now()
    worst = Math.max(worst, now - last)
    last = now
  }, 1)
  return () => {
    clearInterval(tick)
    return Math.max(worst, performance.now() - last)
  }
}
