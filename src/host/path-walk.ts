/**
 * Which directories a path's resolution depends on: every directory whose entries the kernel reads to resolve it,
 * symlinks followed the way realpath(3) follows them. A cache of resolved paths (host/confine.ts) watches these: a
 * rename, a new symlink or a replaced file anywhere on the way shows up as an event on one of them.
 */
import { lstat, readlink } from 'node:fs/promises'
import type { Stats } from 'node:fs'
import { dirname, join } from 'node:path'

/** Symlinks followed before giving up, as the kernel's ELOOP limit (MAXSYMLINKS, 40). */
const MAX_LINKS = 40

/** The end of a walk: the real path, its lstat, and each directory read on the way. */
export interface PathWalk {
  real: string
  stats: Stats
  dirs: Set<string>
}

/**
 * Walks `rel` (relative, normalized) from `realBase` (a real path) one component at a time with lstat and readlink.
 * Returns undefined where realpath would fail (a missing component, a file used as a folder, a symlink loop).
 */
export async function walkPath(realBase: string, rel: string): Promise<PathWalk | undefined> {
  const dirs = new Set<string>()
  let base = realBase
  let stats: Stats | undefined
  const rest = rel.split('/').reverse()
  let links = 0
  while (rest.length > 0) {
    const name = rest.pop() as string
    if (name === '' || name === '.') continue
    if (name === '..') {
      // base is always a real path here, so its parent is where `..` leads (symlinks were resolved before it).
      base = dirname(base)
      stats = undefined
      continue
    }
    const next = join(base, name)
    dirs.add(base)
    try {
      stats = await lstat(next)
      if (stats.isSymbolicLink()) {
        if (++links > MAX_LINKS) return undefined
        const target = await readlink(next)
        if (target.startsWith('/')) base = '/'
        for (const part of target.split('/').reverse()) rest.push(part)
        stats = undefined
        continue
      }
    } catch {
      return undefined
    }
    if (rest.some((p) => p !== '' && p !== '.') && !stats.isDirectory()) return undefined
    base = next
  }
  if (stats === undefined) stats = await lstat(base).catch(() => undefined)
  return stats === undefined ? undefined : { real: base, stats, dirs }
}
