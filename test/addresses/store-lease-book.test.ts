/**
 * The Store-backed lease book over the embedded SQLite store (lease-book-suite.ts; the etcd backend runs the same
 * suite with its own factory).
 */
import t, { type Test } from 'tap'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { openSqliteStore } from '../../src/store/index.js'
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
