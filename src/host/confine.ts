/**
 * Root confinement: resolve a request's relative path under a served folder and refuse anything that leaves it
 * (`..`, absolute paths, NUL, symlinks pointing out). One implementation for TFTP and HTTP, so an escape fixed for one
 * protocol is fixed for both. Each protocol first turns its wire syntax (TFTP's latin1 bytes and backslashes, HTTP's
 * percent-encoding) into a relative path; this module knows nothing about either.
 */
import { open, realpath, stat, type FileHandle } from 'node:fs/promises'
import { fstatSync, watch, type FSWatcher, type Stats } from 'node:fs'
import { isAbsolute, join, posix, relative, sep } from 'node:path'
import { walkPath } from './path-walk.js'

/** A path refused because it would leave the root; `code` is stable for tests and logs. */
export class ConfinementError extends Error {
  readonly code = 'ERR_PATH_TRAVERSAL'
  constructor(message: string) {
    super(message)
    this.name = 'ConfinementError'
  }
}

/** A regular file found under the root. */
export interface ConfinedFile {
  /** Real path (symlinks followed), inside the root's real path. */
  path: string
  stats: Stats
}

/** Options for createConfinedRoot. */
export interface ConfinedRootOptions {
  /** How long the root's resolved real path is trusted before it is resolved again (default 1000 ms). */
  recheckMs?: number
  /** Clock, for tests (default Date.now). */
  now?: () => number
  /**
   * Remember resolved files, invalidated by fs.watch on every directory their resolution read (default off). Bounded
   * to this many files (default 1024); call `close()` to release the watches.
   */
  cacheFiles?: number
}

/** Resolves relative paths under one root. */
export interface ConfinedRoot {
  readonly root: string
  /**
   * The regular file `relPath` names under the root, or undefined when there is none (missing, a directory, a
   * dangling link, the root itself). Throws ConfinementError when the path or a symlink on it leads out of the root.
   */
  resolve(relPath: string): Promise<ConfinedFile | undefined>
  /**
   * resolve(), then the file opened for reading and checked to be the one resolved (same device and inode, by fstat
   * on the descriptor): a rename or symlink swap between the check and the open would otherwise open whatever the
   * path names by then. A changed file is resolved once more, uncached. The caller closes the handle.
   */
  open(relPath: string): Promise<{ file: ConfinedFile; handle: FileHandle } | undefined>
  /** Drops the cache and closes its directory watches (a no-op without `cacheFiles`). */
  close(): void
}

/** Errors that mean "no such file" rather than a fault: the request names something that is not there. */
function isMissing(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException).code
  return code === 'ENOENT' || code === 'ENOTDIR' || code === 'ELOOP' || code === 'ENAMETOOLONG'
}

/**
 * Checks a relative path lexically: no NUL, not absolute, does not normalize to outside (`a/../../x`). Returns it
 * normalized, without leading `./` or trailing slashes ('' for the root itself). The protocols refuse these earlier
 * with their own messages; this is the line that holds if one of them forgets.
 */
export function confinedRelativePath(relPath: string): string {
  if (relPath.includes('\0')) throw new ConfinementError('NUL in path')
  if (isAbsolute(relPath) || posix.isAbsolute(relPath)) throw new ConfinementError('absolute path')
  const normalized = posix.normalize(relPath)
  if (normalized === '..' || normalized.startsWith('../')) throw new ConfinementError('path leads out of the root')
  return normalized === '.' ? '' : normalized.replace(/\/+$/, '')
}

/** Whether `real` is `root` or below it (both real paths). */
function inside(root: string, real: string): boolean {
  const rel = relative(root, real)
  return rel === '' || (rel !== '..' && !rel.startsWith(`..${sep}`) && !isAbsolute(rel))
}

/** Whether two lookups found the same file in the same state (a rename or rewrite in between changes one of these). */
function sameFile(a: ConfinedFile, b: ConfinedFile): boolean {
  return a.path === b.path && a.stats.ino === b.stats.ino && a.stats.dev === b.stats.dev && a.stats.size === b.stats.size &&
    a.stats.mtimeMs === b.stats.mtimeMs && a.stats.ctimeMs === b.stats.ctimeMs
}

/**
 * A confined view of `root`. The root's real path is resolved again once it is `recheckMs` old: operators update
 * firmware by swapping a symlink (`ln -sfn new root`, atomic); resolving once at start served the old tree until it
 * was deleted, then nothing (issue 13). One realpath a second costs nothing next to one per request; a failed
 * resolution is not kept, so a root that reappears is found on the next request.
 *
 * With `cacheFiles`, a found file is remembered and served without a realpath or stat until an fs.watch event on one
 * of the directories its resolution read (path-walk.ts) drops it: in a boot storm the asset path's realpath and stat
 * were 5% of the daemon's CPU for answers that never change (issue 18). The cache only memoizes the uncached
 * decision: a file enters it after realpath has confined it twice, once before and once after its watches were in
 * place, so a change racing the fill is either seen by the second check or reported by a watch. Refusals and
 * not-founds are never cached (a flood of names would grow it), and a change to the root's real path drops it all.
 */
export function createConfinedRoot(root: string, options: ConfinedRootOptions = {}): ConfinedRoot {
  const recheckMs = options.recheckMs ?? 1000
  const now = options.now ?? Date.now
  const cacheMax = options.cacheFiles ?? 0
  let rootReal: { path: Promise<string>; at: number } | undefined
  // relative path -> file, in LRU order (a hit is re-inserted at the end).
  const cache = new Map<string, { root: string; file: ConfinedFile; dirs: Set<string> }>()
  // directory -> its watch and the cached relative paths whose resolution read it.
  const watches = new Map<string, { watcher: FSWatcher; keys: Set<string> }>()
  // Bumped by every watch event: a fill that saw it happen while checking does not enter the cache.
  let changes = 0
  let cacheRoot: string | undefined
  let closed = false
  let fills = 0
  // Lookups under way (root and relative path): concurrent misses for one file wait for the same one.
  const resolving = new Map<string, Promise<ConfinedFile | undefined>>()

  function resolveRoot(): Promise<string> {
    const t = now()
    if (rootReal === undefined || t - rootReal.at >= recheckMs) {
      const path = realpath(root)
      const entry = { path, at: t }
      rootReal = entry
      path.catch(() => {
        if (rootReal === entry) rootReal = undefined
      })
    }
    return rootReal.path
  }

  async function uncached(realRoot: string, rel: string): Promise<ConfinedFile | undefined> {
    let real: string
    try {
      real = await realpath(join(realRoot, rel))
    } catch (err) {
      if (isMissing(err)) return undefined
      throw err
    }
    if (!inside(realRoot, real)) throw new ConfinementError('symlink leads out of the root')
    if (real === realRoot) return undefined
    const stats = await stat(real)
    return stats.isFile() ? { path: real, stats } : undefined
  }

  function forget(key: string): void {
    const entry = cache.get(key)
    if (entry === undefined) return
    cache.delete(key)
    for (const dir of entry.dirs) release(dir, key)
  }

  /** `key` no longer depends on `dir`; the watch closes once nothing does. */
  function release(dir: string, key: string): void {
    const w = watches.get(dir)
    if (w === undefined) return
    w.keys.delete(key)
    if (w.keys.size > 0) return
    w.watcher.close()
    watches.delete(dir)
  }

  function changed(dir: string): void {
    changes++
    const w = watches.get(dir)
    if (w !== undefined) for (const key of [...w.keys]) forget(key)
  }

  /** Watches `dir` (if not yet); false when it cannot be watched (gone, no inotify watches left). */
  function watchDir(dir: string): boolean {
    if (watches.has(dir)) return true
    try {
      const watcher = watch(dir, { persistent: false }, () => changed(dir))
      watcher.on('error', () => changed(dir))
      watches.set(dir, { watcher, keys: new Set() })
      return true
    } catch {
      return false
    }
  }

  function clear(): void {
    for (const key of [...cache.keys()]) forget(key)
  }

  /**
   * Caches `first` if a second check, made once every directory its resolution reads is watched, finds the same file.
   * While it runs, its watches hold a pin (a key no entry has), so another entry's eviction cannot close one of them
   * and lose an event this fill relies on.
   */
  async function fill(realRoot: string, rel: string, first: ConfinedFile): Promise<void> {
    const pin = `\0fill ${++fills}`
    const pinned: string[] = []
    try {
      const walk = await walkPath(realRoot, rel)
      if (walk === undefined || walk.real !== first.path || !walk.stats.isFile()) return
      for (const dir of walk.dirs) {
        if (!watchDir(dir)) return
        watches.get(dir)?.keys.add(pin)
        pinned.push(dir)
      }
      // The watches are in place: any change from here on is reported. Check again what they now cover.
      const after = changes
      const again = await walkPath(realRoot, rel)
      const second = await uncached(realRoot, rel).catch(() => undefined)
      if (again === undefined || second === undefined || again.real !== first.path || !sameFile(first, second)) return
      if (![...again.dirs].every((d) => walk.dirs.has(d)) || changes !== after || closed) return
      if (cacheRoot !== realRoot) {
        clear()
        cacheRoot = realRoot
      }
      forget(rel)
      cache.set(rel, { root: realRoot, file: first, dirs: walk.dirs })
      for (const dir of walk.dirs) watches.get(dir)?.keys.add(rel)
      for (const key of cache.keys()) {
        if (cache.size <= cacheMax) break
        forget(key)
      }
    } finally {
      for (const dir of pinned) release(dir, pin)
    }
  }

  async function resolve(relPath: string): Promise<ConfinedFile | undefined> {
    const rel = confinedRelativePath(relPath)
    if (rel === '') return undefined
    // A missing root (an assets_dir not created yet, a firmware symlink mid-swap) is a not-found like a missing file
    // below it; any other failure (EACCES) propagates as a server error.
    let realRoot: string
    try {
      realRoot = await resolveRoot()
    } catch (err) {
      if (isMissing(err)) return undefined
      throw err
    }
    const hit = cache.get(rel)
    if (hit !== undefined && hit.root === realRoot) {
      cache.delete(rel)
      cache.set(rel, hit)
      return hit.file
    }
    if (cacheMax === 0) return uncached(realRoot, rel)
    // A rack powering on asks for one file many times at once, before the first answer is remembered: they share one
    // lookup and one fill (each is three realpaths and two walks) instead of each making its own.
    const key = `${realRoot}\0${rel}`
    let pending = resolving.get(key)
    if (pending === undefined) {
      pending = uncached(realRoot, rel).then(async (file) => {
        if (file !== undefined && !closed) await fill(realRoot, rel, file)
        return file
      })
      resolving.set(key, pending)
      pending.finally(() => resolving.delete(key)).catch(() => undefined)
    }
    return pending
  }

  async function openChecked(relPath: string): Promise<{ file: ConfinedFile; handle: FileHandle } | undefined> {
    for (let attempt = 0; attempt < 2; attempt++) {
      const file = await resolve(relPath)
      if (file === undefined) return undefined
      let handle: FileHandle
      try {
        handle = await open(file.path, 'r')
      } catch (err) {
        if (!isMissing(err)) throw err
        forget(confinedRelativePath(relPath))
        continue
      }
      // fstat of an open descriptor: no path lookup, no disk access (the inode is in memory), so no thread-pool trip.
      const now = fstatSync(handle.fd)
      if (now.ino === file.stats.ino && now.dev === file.stats.dev) return { file, handle }
      await handle.close()
      forget(confinedRelativePath(relPath))
    }
    throw new ConfinementError('the file changed while it was being opened')
  }

  return {
    root,
    resolve,
    open: openChecked,
    close() {
      closed = true
      clear()
    },
  }
}
