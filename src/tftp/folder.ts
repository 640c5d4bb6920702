/**
 * Serving a folder: relative paths resolved under a root (host/confine.ts) and an in-memory cache so hundreds of
 * machines fetching the same iPXE binary after a power event cost one disk read. Knows nothing about PXE: the boot
 * layer (boot/tftp-files.ts) decides which relative path a request means.
 *
 * Resolutions are remembered too (confine.ts `cacheFiles`: watched, dropped by an fs.watch event on a directory the
 * path went through), so a request for a file served before costs no realpath and stat. Those were a realpath, an
 * lstat per path component and a stat on libuv's pool for every RRQ: in a 50-machine bench/storm.sh round, 55 of the
 * 71 resolutions the daemon made, all for snponly.efi (issue 18).
 */
import { readFile } from 'node:fs/promises'
import { ConfinementError, createConfinedRoot, type ConfinedFile } from '../host/confine.js'
import { normalizeRequestPath, TftpAccessError, type TftpFile, type TftpFileHandler } from './files.js'

/** Options for createTftpFolder. */
export interface TftpFolderOptions {
  root: string
  /** Files up to this size are read once and served from memory (default 16 MiB). */
  cacheMaxFileBytes?: number
  /** Bound on all cached bytes; least recently used files are dropped first (default 128 MiB). */
  cacheMaxTotalBytes?: number
  /** How long the root's resolved real path is trusted before it is resolved again (default 1000 ms; confine.ts). */
  rootRecheckMs?: number
  /** Clock, for tests (default Date.now). */
  now?: () => number
  /** Resolved paths remembered, each watched until it changes (default TFTP_RESOLVED_FILES; 0: resolve every request). */
  resolvedFiles?: number
}

/** Resolutions a folder remembers: a TFTP root holds a handful of boot files, a folder of assets a few per profile. */
export const TFTP_RESOLVED_FILES = 256

/** A served folder. */
export interface TftpFolder {
  readonly root: string
  /**
   * The regular file at `path` (relative, already normalized) under the root, or null when there is none. Throws
   * TftpAccessError when the path or a symlink on it leads out of the root.
   */
  open(path: string): Promise<TftpFile | null>
  /** Drops the remembered resolutions and closes their directory watches; open() still works, resolving each time. */
  close(): void
}

interface CacheEntry {
  mtimeMs: number
  size: number
  data: Buffer
}

/** A folder served with a bounded cache keyed by real path, mtime and size. */
export function createTftpFolder(options: TftpFolderOptions): TftpFolder {
  const maxFile = options.cacheMaxFileBytes ?? 16 * 1024 * 1024
  const maxTotal = options.cacheMaxTotalBytes ?? 128 * 1024 * 1024
  // Map order doubles as LRU order: a hit is re-inserted at the end.
  const cache = new Map<string, CacheEntry>()
  const loading = new Map<string, Promise<Buffer>>()
  let cachedBytes = 0
  const confined = createConfinedRoot(options.root, {
    cacheFiles: options.resolvedFiles ?? TFTP_RESOLVED_FILES,
    ...(options.rootRecheckMs !== undefined ? { recheckMs: options.rootRecheckMs } : {}),
    ...(options.now ? { now: options.now } : {}),
  })

  function remember(path: string, entry: CacheEntry): void {
    const old = cache.get(path)
    if (old) {
      cachedBytes -= old.size
      cache.delete(path)
    }
    cache.set(path, entry)
    cachedBytes += entry.size
    for (const [key, victim] of cache) {
      if (cachedBytes <= maxTotal) break
      cache.delete(key)
      cachedBytes -= victim.size
    }
  }

  async function load(path: string, mtimeMs: number, size: number): Promise<Buffer> {
    const hit = cache.get(path)
    if (hit && hit.mtimeMs === mtimeMs && hit.size === size) {
      cache.delete(path)
      cache.set(path, hit)
      return hit.data
    }
    // Hundreds of clients asking at once share one read.
    const key = `${path}\0${mtimeMs}\0${size}`
    let pending = loading.get(key)
    if (!pending) {
      pending = readFile(path).then((data) => {
        // A file that changed between stat and read is served as read, but cached under what was read.
        if (data.length === size) remember(path, { mtimeMs, size, data })
        return data
      })
      pending.finally(() => loading.delete(key)).catch(() => {})
      loading.set(key, pending)
    }
    return pending
  }

  async function open(path: string): Promise<TftpFile | null> {
    let found: ConfinedFile | undefined
    try {
      found = await confined.resolve(path)
    } catch (err) {
      if (err instanceof ConfinementError) throw new TftpAccessError(err.message)
      throw err
    }
    if (found === undefined) return null
    const { path: real, stats } = found
    if (stats.size > maxFile) return { name: path, size: stats.size, content: { path: real, size: stats.size } }
    const data = await load(real, stats.mtimeMs, stats.size)
    return { name: path, size: data.length, content: data }
  }

  return { root: options.root, open, close: () => confined.close() }
}

/** The plain handler: the request's path under the folder, nothing else (no prefixes, no generated files). */
export function folderHandler(folder: TftpFolder): TftpFileHandler {
  return async (request) => folder.open(normalizeRequestPath(request.filename))
}
