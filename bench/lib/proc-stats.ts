/**
 * A process's resident memory and CPU time from /proc, for benches that watch a daemon from outside.
 */
import { readFileSync } from 'node:fs'

/** Resident set size in MB (VmRSS), or NaN when the process is gone. */
export function rssMb(pid: number): number {
  try {
    const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
    return m ? Number(m[1]) / 1024 : NaN
  } catch {
    return NaN
  }
}

/** CPU time (user + system, ms) the process has used so far, or NaN when it is gone. */
export function cpuMs(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return ((Number(f[11]) + Number(f[12])) * 1000) / 100 // clock ticks, USER_HZ = 100
  } catch {
    return NaN
  }
}
