/**
 * The page cache of every SQLite handle pxebox opens: 2 MiB, SQLite's own default.
 *
 * better-sqlite3 builds SQLite with SQLITE_DEFAULT_CACHE_SIZE=-16000, a 16 MB page cache per handle. The cache fills
 * as writes touch new pages and is never given back, so a busy appliance's RSS grew with it: heaptrack in the
 * repeated 1,000-machine storms of bench/storm.sh put SQLite's page cache at 11.8 MB of the daemon's 24 MB malloc
 * peak after three storms, the largest share of the creep issue 18 measures. The pages stay in the kernel's page
 * cache anyway (WAL mode reads them with pread), so a smaller cache costs a system call on a miss, not a disk read.
 */
import type Database from 'better-sqlite3'

/** The page cache's size in KiB (`PRAGMA cache_size` takes a negative number for KiB). */
export const PAGE_CACHE_KIB = 2000

/** Bounds `db`'s page cache; call it right after opening. */
export function limitPageCache(db: Database.Database): void {
  db.pragma(`cache_size = -${PAGE_CACHE_KIB}`)
}
