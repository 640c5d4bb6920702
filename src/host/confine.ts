/**
 * Root confinement: resolve a request's relative path under a served folder and refuse anything that leaves it
 * (`..`, absolute paths, NUL, symlinks pointing out). One implementation for TFTP and HTTP, so an escape fixed for one
 * protocol is fixed for both. Each protocol first turns its wire syntax (TFTP's latin1 bytes and backslashes, HTTP's
 * percent-encoding) into a relative path; this module knows nothing about either.
 */
import { realpath, stat } from 'node:fs/promises'
import type { Stats } from 'node:fs'
import { isAbsolute, join, posix, relative, sep } from 'node:path'

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
}

/** Resolves relative paths under one root. */
export interface ConfinedRoot {
  readonly root: string
  /**
   * The regular file `relPath` names under the root, or undefined when there is none (missing, a directory, a
   * dangling link, the root itself). Throws ConfinementError when the path or a symlink on it leads out of the root.
   */
  resolve(relPath: string): Promise<ConfinedFile | undefined>
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

/**
 * A confined view of `root`. The root's real path is resolved again once it is `recheckMs` old: operators update
 * firmware by swapping a symlink (`ln -sfn new root`, atomic); resolving once at start served the old tree until it
 * was deleted, then nothing (issue 13). One realpath a second costs nothing next to one per request; a failed
 * resolution is not kept, so a root that reappears is found on the next request.
 */
export function createConfinedRoot(root: string, options: ConfinedRootOptions = {}): ConfinedRoot {
  const recheckMs = options.recheckMs ?? 1000
  const now = options.now ?? Date.now
  let rootReal: { path: Promise<string>; at: number } | undefined

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

  async function resolve(relPath: string): Promise<ConfinedFile | undefined> {
    const rel = confinedRelativePath(relPath)
    if (rel === '') return undefined
    // A missing root (an assets_dir not created yet, a firmware symlink mid-swap) is a not-found like a missing file
    // below it; any other failure (EACCES) propagates as a server error.
    let realRoot: string
    let real: string
    try {
      realRoot = await resolveRoot()
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

  return { root, resolve }
}
