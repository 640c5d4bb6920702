/**
 * How many inotify watches this process holds, from /proc (Linux): every fs.watch on a directory is one, on the
 * inotify descriptor libuv opens for the loop. A test counts them before and after to show watches were released,
 * which a later change to a file cannot show (a watch that is still there reports it just the same).
 */
import { readdirSync, readFileSync, readlinkSync } from 'node:fs'

export function inotifyWatches(): number {
  let watches = 0
  for (const fd of readdirSync('/proc/self/fd')) {
    let target: string
    try {
      target = readlinkSync(`/proc/self/fd/${fd}`)
    } catch {
      continue // the descriptor readdir itself used, closed by now
    }
    if (target !== 'anon_inode:inotify') continue
    // proc(5): one "inotify wd:..." line per watch on that descriptor.
    watches += readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8').split('\n').filter((l) => l.startsWith('inotify wd:')).length
  }
  return watches
}
