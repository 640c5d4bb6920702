/**
 * A process's resident memory and CPU time from /proc, for benches that watch a daemon from outside.
 */
import { readdirSync, readFileSync } from 'node:fs'

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

/**
 * CPU time (user + system, ms) of a process's threads so far: the main thread (the event loop), each of the threads
 * named in `names` (pxebox's "pxebox-sender" and "pxebox-tftp"), and every other thread (V8's GC and compiler helpers
 * and libuv's file-system pool, which Node 20 leaves all named "node"). Threads that already ended are not counted.
 */
export function threadCpuMs(pid: number, names: readonly string[]): { main: number; named: Record<string, number>; other: number } {
  const out = { main: 0, named: Object.fromEntries(names.map((n) => [n, 0])) as Record<string, number>, other: 0 }
  let tids: string[]
  try {
    tids = readdirSync(`/proc/${pid}/task`)
  } catch {
    return { main: NaN, named: Object.fromEntries(names.map((n) => [n, NaN])), other: NaN }
  }
  for (const tid of tids) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8')
      const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'))
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      const ms = ((Number(f[11]) + Number(f[12])) * 1000) / 100
      if (Number(tid) === pid) out.main += ms
      else if (comm in out.named) out.named[comm] = (out.named[comm] ?? 0) + ms
      else out.other += ms
    } catch {
      // the thread ended between the listing and the read
    }
  }
  return out
}
