/**
 * What held pxebox's event loop: the stalls the loop probe saw (bench/lib/loop-probe.ts: a tick more than 20 ms late,
 * so any DHCP offer due then waited as long), each named by what a V8 CPU profile (`node --cpu-prof`) sampled in
 * that window: the outermost pxebox function (which task: a timer's save, a socket's message handler) and the
 * innermost pxebox function or runtime frame (where the time went: JSON.stringify, the garbage collector). Both use
 * CLOCK_MONOTONIC, so the windows line up. bench/abuse.ts --profile prints this after a run.
 */
import { readFileSync } from 'node:fs'

interface ProfileNode {
  id: number
  callFrame: { functionName: string; url: string; lineNumber: number }
  children?: number[]
}

interface CpuProfile {
  nodes: ProfileNode[]
  startTime: number
  endTime: number
  samples: number[]
  timeDeltas: number[]
}

/** One stall the loop probe saw, with what the profile says ran in it. */
export interface Stall {
  /** When the late tick ran, ms from the profile's start. */
  atMs: number
  /** How late the probe's tick was (ms). */
  lateMs: number
  /** Outermost pxebox frames (which task), ms of samples each, largest first. */
  tasks: [string, number][]
  /** Innermost pxebox frames or runtime frames (where the time went), ms each, largest first. */
  where: [string, number][]
}

/** The stall profile of one run. */
export interface StallProfile {
  thresholdMs: number
  profiledMs: number
  /** Share of the profile's samples that were not idle. */
  busyShare: number
  stalls: Stall[]
  /** Over all stalls: ms by innermost frame, largest first. */
  whereTotals: [string, number][]
}

const PXEBOX = /\/dist\/src\/(.*)$/

/** `function file:line` for a frame of pxebox's own code, undefined for anything else. */
function pxeboxFrame(n: ProfileNode): string | undefined {
  const m = PXEBOX.exec(n.callFrame.url)
  if (m === null) return undefined
  return `${n.callFrame.functionName || '(anonymous)'} ${m[1]}:${n.callFrame.lineNumber + 1}`
}

/** A frame outside pxebox: a runtime pseudo-frame, a builtin, or a package (`fastify`, `pino`). */
function otherFrame(n: ProfileNode): string {
  const url = n.callFrame.url
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url)
  if (pkg !== null) return `${n.callFrame.functionName || '(anonymous)'} [${pkg[1]}]`
  if (url.startsWith('node:')) return `${n.callFrame.functionName || '(anonymous)'} [${url}]`
  return n.callFrame.functionName || '(anonymous)'
}

const add = (m: Map<string, number>, k: string, v: number): void => void m.set(k, (m.get(k) ?? 0) + v)
const sorted = (m: Map<string, number>, n: number): [string, number][] =>
  [...m]
    .sort((a, b) => b[1] - a[1])
    .slice(0, n)
    .map(([k, v]) => [k, Math.round(v * 10) / 10])

/**
 * Reads the CPU profile `file` and, for each of the loop probe's `stalls` (bench/lib/loop-probe.ts: the late tick's
 * CLOCK_MONOTONIC time in us and its lateness), names what the samples in that window ran.
 */
export function stallProfile(file: string, stalls: readonly { endUs: number; lateMs: number }[], thresholdMs: number, periodMs = 5): StallProfile {
  const p = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile
  const byId = new Map<number, ProfileNode>()
  const parent = new Map<number, number>()
  for (const n of p.nodes) {
    byId.set(n.id, n)
    for (const c of n.children ?? []) parent.set(c, n.id)
  }
  // Per node: [outermost pxebox frame, innermost pxebox frame or the node's own frame], computed once.
  const labels = new Map<number, [string, string]>()
  const labelOf = (id: number): [string, string] => {
    const known = labels.get(id)
    if (known !== undefined) return known
    const self = byId.get(id) as ProfileNode
    let outer: string | undefined
    let inner: string | undefined
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const f = pxeboxFrame(byId.get(at) as ProfileNode)
      if (f === undefined) continue
      inner ??= f
      outer = f
    }
    const own = otherFrame(self)
    // The collector and the runtime's own frames are where the time went, whoever was running.
    const runtime = pxeboxFrame(self) === undefined
    const label: [string, string] = [outer ?? own, runtime ? (inner === undefined ? own : `${own} in ${inner}`) : (inner as string)]
    labels.set(id, label)
    return label
  }

  // Sample i covers (times[i] - deltas[i], times[i]] in absolute us.
  const times: number[] = []
  let t = p.startTime
  let idle = 0
  for (let i = 0; i < p.samples.length; i++) {
    const d = p.timeDeltas[i] ?? 0
    t += d
    times.push(t)
    if ((byId.get(p.samples[i] as number) as ProfileNode).callFrame.functionName === '(idle)') idle += d
  }
  const firstAfter = (us: number): number => {
    let lo = 0
    let hi = times.length
    while (lo < hi) {
      const mid = (lo + hi) >> 1
      if ((times[mid] as number) <= us) lo = mid + 1
      else hi = mid
    }
    return lo
  }
  const out: Stall[] = []
  const whereTotals = new Map<string, number>()
  for (const st of stalls) {
    if (st.endUs < p.startTime || st.endUs > p.endTime) continue
    const from = st.endUs - (st.lateMs + periodMs) * 1000
    const tasks = new Map<string, number>()
    const where = new Map<string, number>()
    for (let i = firstAfter(from); i < times.length && (times[i] as number) <= st.endUs; i++) {
      const node = byId.get(p.samples[i] as number) as ProfileNode
      const d = (p.timeDeltas[i] ?? 0) / 1000
      if (node.callFrame.functionName === '(idle)') {
        add(where, '(idle: pxebox waited, not scheduled or in a syscall)', d)
        continue
      }
      const [outer, inner] = labelOf(node.id)
      add(tasks, outer, d)
      add(where, inner, d)
    }
    for (const [k, v] of where) add(whereTotals, k, v)
    out.push({ atMs: Math.round((st.endUs - p.startTime) / 1000), lateMs: st.lateMs, tasks: sorted(tasks, 3), where: sorted(where, 4) })
  }
  const span = p.endTime - p.startTime
  return { thresholdMs, profiledMs: Math.round(span / 1000), busyShare: span > 0 ? 1 - idle / span : 0, stalls: out, whereTotals: sorted(whereTotals, 14) }
}

/** The report lines: the longest stalls with what ran in them, and the time in all stalls by where it went. */
export function stallLines(s: StallProfile, longest = 10): string[] {
  const out: string[] = []
  const total = s.stalls.reduce((a, x) => a + x.lateMs, 0)
  const over = (ms: number): number => s.stalls.filter((x) => x.lateMs > ms).length
  out.push(
    `loop stalls (probe tick late > ${s.thresholdMs} ms, in the CPU profile's span): ${s.stalls.length} in ${(s.profiledMs / 1000).toFixed(0)} s ` +
      `(> 50 ms: ${over(50)}, > 100 ms: ${over(100)}), ${(total / 1000).toFixed(1)} s in all; main thread busy ${(100 * s.busyShare).toFixed(0)}% of the profile`,
  )
  out.push(`  longest ${longest}:`)
  for (const x of [...s.stalls].sort((a, b) => b.lateMs - a.lateMs).slice(0, longest)) {
    out.push(`    ${x.lateMs} ms at ${(x.atMs / 1000).toFixed(1)} s: tasks ${x.tasks.map(([k, v]) => `${k} (${v.toFixed(0)})`).join('; ')}`)
    out.push(`      where: ${x.where.map(([k, v]) => `${k} (${v.toFixed(0)})`).join('; ')}`)
  }
  out.push('  time in all stalls, by where it went (ms):')
  for (const [k, v] of s.whereTotals) out.push(`    ${v.toFixed(0).padStart(7)}  ${k}`)
  return out
}
