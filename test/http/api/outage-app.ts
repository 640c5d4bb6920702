/**
 * The operator app over the outage layer (the etcd backend's front, issue 17) whose remote is a SQLite store that can
 * be made to fail: the setup the API's outage tests share (files.test.ts, store-outage.test.ts).
 */
import type { Test } from 'tap'
import { join } from 'node:path'
import { openMirroredStore, openSqliteStore, type MirroredStore } from '../../../src/store/index.js'
import { failingStore, type FailingStore } from '../../helpers/failing-store.js'
import { operatorApp, TOKEN, type OperatorApp } from './fixture.js'

/** The app, the failing remote (set `down`, `breakWatches()`) and the outage layer in front of it. */
export interface OutageApp {
  o: OperatorApp
  remote: FailingStore
  store: MirroredStore
}

/** operatorApp (token TOKEN) whose data Store is the outage layer over a failing store; all closed when `t` ends. */
export async function outageApp(t: Test): Promise<OutageApp> {
  let remote!: FailingStore
  let store!: MirroredStore
  const o = await operatorApp(t, {
    token: TOKEN,
    openDataStore: async (file) => {
      const shared = await openSqliteStore({ file: `${file}.shared` })
      t.teardown(() => shared.close())
      remote = failingStore(shared)
      // probeMs 50: the layer notices the remote is back within the test's waits.
      store = await openMirroredStore({ remote, file: join(file, '..', 'store-cache.db'), queued: ['machine'], probeMs: 50 })
      return store
    },
  })
  return { o, remote, store }
}
