/**
 * The Store-backed lease book over the embedded SQLite store (lease-book-suite.ts; the etcd backend runs the same
 * suite with its own factory).
 */
import t, { type Test } from 'tap'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { openMirroredStore, openSqliteStore } from '../../src/store/index.js'
import { failingStore } from '../helpers/failing-store.js'
import { storeLeaseBookSuite } from './lease-book-suite.js'
import { LEASE_KIND, openStoreLeaseBook } from '../../src/addresses/store-lease-book.js'
import { LeaseUnavailableError } from '../../src/addresses/lease-book.js'

async function tempDir(t: Test): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'pxebox-leasebook-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  return dir
}

storeLeaseBookSuite(t, async (t) => {
  const file = join(await tempDir(t), 'pxebox.db')
  return { open: () => openSqliteStore({ file }) }
})

// The same suite through the outage layer (store/mirrored.ts) over that database: the book reads the local copy (which
// follows the store's watch) and writes through to the shared store, as it does in front of etcd.
t.test('through the outage layer', async (t) => {
  storeLeaseBookSuite(t, async (t) => {
    const dir = await tempDir(t)
    const shared = await openSqliteStore({ file: join(dir, 'pxebox.db') })
    t.teardown(() => shared.close())
    let n = 0
    return { open: () => openMirroredStore({ remote: failingStore(shared), file: join(dir, `store-cache-${n++}.db`), queued: ['machine'] }) }
  })
})

// Over the outage layer a read succeeds from the local copy while the shared store is down, so the book must not take
// a successful read for the store's return (it did: its retry tick read the revision, then said "answers again" and
// offered addresses it could not grant). It follows the layer's own up/down instead.
t.test('through the outage layer: down while the shared store is, though reads still answer from the copy', async (t) => {
  const dir = await tempDir(t)
  const shared = await openSqliteStore({ file: join(dir, 'pxebox.db') })
  t.teardown(() => shared.close())
  const remote = failingStore(shared)
  const mirrored = await openMirroredStore({ remote, file: join(dir, 'store-cache.db'), queued: ['machine'], probeMs: 30 })
  t.teardown(() => mirrored.close())
  const book = await openStoreLeaseBook({ store: mirrored, retryMs: 20 })
  t.teardown(() => book.close())
  const until = async (what: string, ok: () => boolean): Promise<void> => {
    for (let i = 0; i < 300 && !ok(); i++) await new Promise((r) => setTimeout(r, 10))
    t.ok(ok(), what)
  }
  const at = Date.now()
  await book.grant({ mac: '52:54:00:aa:00:01', ip: '10.213.41.10', expires: at + 3_600_000, at })
  remote.down = true
  await until('the layer finds the shared store down', () => !mirrored.up)
  await until('the book is down with it', () => !book.up)
  await mirrored.revision()
  await new Promise((r) => setTimeout(r, 200)) // ten retry ticks
  t.equal(book.up, false, 'a read answered from the copy does not bring the book back up')
  await t.rejects(book.grant({ mac: '52:54:00:aa:00:02', ip: '10.213.41.11', expires: at + 3_600_000, at }), LeaseUnavailableError, 'no new address')
  remote.down = false
  await until('the layer finds it back', () => mirrored.up)
  await until('and the book grants again', () => book.up)
  await book.grant({ mac: '52:54:00:aa:00:02', ip: '10.213.41.11', expires: at + 3_600_000, at })
  t.equal(((await shared.get(LEASE_KIND, '52:54:00:aa:00:02'))?.value as { ip: string }).ip, '10.213.41.11', 'written to the shared store')
})
