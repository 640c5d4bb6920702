/** What the boot store's watchers watch: per folder, which entry names are files a load reads. */
import { basename, dirname } from 'node:path'
import { matchboxWatchDirs } from './matchbox-dir.js'

/** Per watched folder, which entry names are files a load reads. */
export type WatchPlan = Map<string, (name: string) => boolean>

/** Editor and tool droppings (.#x, x~, .x.swp, x.tmp, x.log): never read by a load. */
const dropping = (name: string): boolean => name.startsWith('.') || name.endsWith('~') || /\.(swp|swx|tmp|log)$/i.test(name)

/**
 * What to watch for `sources`: the Matchbox root for its four folders appearing, groups/ and profiles/ for the
 * `*.json` readMatchboxDir reads, each template folder for the files the last load read (`reads`, which includes a
 * missing one, so creating it reloads), and the Butane files folder for any file (`local:` may name any).
 */
export function watchPlan(sources: { readonly matchboxDir?: string; readonly filesDir?: string }, reads: readonly string[]): WatchPlan {
  const plan: WatchPlan = new Map()
  const m = sources.matchboxDir
  if (m !== undefined) {
    const [root, groups, profiles, ignition, generic] = matchboxWatchDirs(m)
    const folders = new Set([groups, profiles, ignition, generic].map((d) => basename(d!)))
    plan.set(root!, (name) => folders.has(name))
    const json = (name: string) => name.endsWith('.json') && !dropping(name)
    plan.set(groups!, json)
    plan.set(profiles!, json)
    // Watched even before a profile names a file there, so a folder created late is picked up.
    plan.set(ignition!, () => false)
    plan.set(generic!, () => false)
  }
  const names = new Map<string, Set<string>>()
  for (const path of reads) {
    const dir = dirname(path)
    names.set(dir, (names.get(dir) ?? new Set()).add(basename(path)))
  }
  for (const [dir, set] of names) plan.set(dir, (name) => set.has(name))
  if (sources.filesDir !== undefined) {
    const before = plan.get(sources.filesDir)
    plan.set(sources.filesDir, (name) => !dropping(name) || before?.(name) === true)
  }
  return plan
}
