/**
 * A V8 CPU profile (node --cpu-prof) summed up as text: the functions with the most self time, and the share of
 * samples in each category the boot storm question needs (asset path, TFTP, DHCP, garbage collection, idle).
 */
import { readFileSync } from 'node:fs'

interface ProfileNode {
  id: number
  callFrame: { functionName: string; url: string; lineNumber: number }
  children?: number[]
}
interface CpuProfile {
  nodes: ProfileNode[]
  samples: number[]
  timeDeltas: number[]
}

/** One function's self time. */
export interface SelfTime {
  name: string
  where: string
  ms: number
  /** Share of the non-idle samples. */
  share: number
}

/** Self time per function (name and file:line), largest first, and the profile's busy and idle time. */
export function selfTimes(file: string): { busyMs: number; idleMs: number; functions: SelfTime[] } {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile
  const byId = new Map(profile.nodes.map((n) => [n.id, n]))
  const ms = new Map<string, { name: string; where: string; ms: number }>()
  let idleMs = 0
  let busyMs = 0
  profile.samples.forEach((id, i) => {
    const dt = (profile.timeDeltas[i] ?? 0) / 1000
    const frame = byId.get(id)?.callFrame
    const name = frame?.functionName || '(anonymous)'
    if (name === '(idle)' || name === '(program)') {
      if (name === '(idle)') idleMs += dt
      else busyMs += dt
      if (name === '(idle)') return
    } else busyMs += dt
    const where = frame?.url ? `${frame.url.replace(/^.*\/(dist|node_modules)\//, '$1/')}:${frame.lineNumber + 1}` : ''
    const key = `${name} ${where}`
    const e = ms.get(key) ?? { name, where, ms: 0 }
    e.ms += dt
    ms.set(key, e)
  })
  const functions = [...ms.values()].sort((a, b) => b.ms - a.ms).map((f) => ({ ...f, share: busyMs > 0 ? f.ms / busyMs : 0 }))
  return { busyMs, idleMs, functions }
}
