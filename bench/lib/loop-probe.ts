/**
 * A preload (`node --import dist/bench/lib/loop-probe.js`) that times pxebox's event loop from inside: a 5 ms
 * interval notes how late each tick is, and every lateness over 20 ms is a stall (one macrotask, or a GC pause, that
 * held the loop that long: every DHCP offer due meanwhile waited for it). At exit it writes the stalls and the lateness
 * histogram as JSON to $PXEBOX_LOOP_PROBE_FILE. bench/abuse.ts --profile uses it beside --cpu-prof, whose samples say
 * what ran in each stall (bench/lib/stall-profile.ts).
 */
import { writeFileSync } from 'node:fs'
import { monitorEventLoopDelay } from 'node:perf_hooks'

/** What the probe writes. */
export interface LoopProbeResult {
  /**
   * Stalls over `thresholdMs`: when the late tick ran (CLOCK_MONOTONIC in us, the clock of a V8 CPU profile's
   * timestamps, so the profile's samples in the stall can be picked out) and how late it was.
   */
  stalls: { endUs: number; lateMs: number }[]
  thresholdMs: number
  /** Event-loop delay percentiles from perf_hooks (ms). */
  delay: { p50: number; p99: number; p999: number; max: number }
}

const file = process.env['PXEBOX_LOOP_PROBE_FILE']
if (file !== undefined && file !== '') {
  const periodMs = 5
  const thresholdMs = 20
  const histogram = monitorEventLoopDelay({ resolution: 5 })
  histogram.enable()
  const stalls: LoopProbeResult['stalls'] = []
  const nowUs = (): number => Number(process.hrtime.bigint() / 1000n)
  let expected = nowUs() + periodMs * 1000
  const timer = setInterval(() => {
    const t = nowUs()
    const late = (t - expected) / 1000
    if (late > thresholdMs) stalls.push({ endUs: t, lateMs: Math.round(late) })
    expected = t + periodMs * 1000
  }, periodMs)
  timer.unref()
  process.on('exit', () => {
    const ms = (ns: number): number => Math.round(ns / 1e4) / 100
    const result: LoopProbeResult = {
      stalls,
      thresholdMs,
      delay: { p50: ms(histogram.percentile(50)), p99: ms(histogram.percentile(99)), p999: ms(histogram.percentile(99.9)), max: ms(histogram.max) },
    }
    writeFileSync(file, JSON.stringify(result))
  })
}
