/** A Store handle for tests: the embedded backend at `<dir>/pxebox.db`, closed when the test ends. */
import type { Test } from 'tap'
import { join } from 'node:path'
import { openSqliteStore, STORE_FILE, type Store } from '../../src/store/index.js'

/** A new handle on `<dir>/pxebox.db` (two handles on one dir share the data: a reopen is a restart). */
export async function storeIn(t: Test, dir: string): Promise<Store> {
  const store = await openSqliteStore({ file: join(dir, STORE_FILE) })
  t.teardown(() => store.close())
  return store
}
