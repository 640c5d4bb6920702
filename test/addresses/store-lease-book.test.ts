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
