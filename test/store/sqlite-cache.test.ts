// Every SQLite handle pxebox opens gets a 2 MiB page cache, not the 16 MB better-sqlite3 builds SQLite with (the
// cache never gives memory back, issue 18's RSS creep). The store's own handle is not reachable from outside, so the
// helper is checked on a handle of its own here; bench/storm.sh --repeat shows the effect on the daemon.
import t from 'tap'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { limitPageCache, PAGE_CACHE_KIB } from '../../src/store/sqlite-cache.js'

t.test('the page cache is bounded to PAGE_CACHE_KIB', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'pxebox-cache-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const db = new Database(join(dir, 'x.db'))
  t.teardown(() => db.close())
  const before = db.pragma('cache_size', { simple: true }) as number
  t.ok(before < -PAGE_CACHE_KIB, `better-sqlite3's default is larger (${before} KiB as a negative number)`)
  limitPageCache(db)
  t.equal(db.pragma('cache_size', { simple: true }), -PAGE_CACHE_KIB, 'cache_size after limitPageCache')
  t.equal(PAGE_CACHE_KIB, 2000, "SQLite's own default, 2 MiB")
})
