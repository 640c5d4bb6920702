/**
 * The Store layer: the interface (store.ts), the embedded backend (sqlite.ts), the etcd backend (etcd.ts), the outage
 * layer over a shared store (mirrored.ts, its local copy in mirror-copy.ts, its outbox flush in outbox-flush.ts, its
 * consumers' watches in mirror-watches.ts) and
 * the legacy-file migration helper.
 * It holds plain data and imports only src/host/, so every layer that owns a type (catalog, addresses, machines) can
 * build its typed facade on it.
 */
import { join } from 'node:path'
import type { Logger } from '../host/log.js'
import { openSqliteStore } from './sqlite.js'
import type { Store } from './store.js'

export * from './store.js'
export { openSqliteStore, type SqliteStoreOptions } from './sqlite.js'
export { connectEtcdStore, openEtcdStore, type EtcdStore, type EtcdStoreOptions, type EtcdTls } from './etcd.js'
export { registerAppliance, RegistryNameTaken, APPLIANCE_KIND, APPLIANCE_SEEN_KIND, type ApplianceRecord, type ApplianceView, type ApplianceRegistry, type RegistryOptions } from './etcd-registry.js'
export { retireLegacyFile } from './migrate.js'
export { openMirroredStore, storeUnavailable, type MirroredStore, type MirroredStoreOptions } from './mirrored.js'
export type { QueuedMerge } from './outbox-flush.js'

/** The embedded store's file inside data_dir. */
export const STORE_FILE = 'pxebox.db'

/** The daemon's default store: SQLite at `<data_dir>/pxebox.db`. */
export function openEmbeddedStore(dataDir: string, logger?: Logger): Promise<Store> {
  return openSqliteStore({ file: join(dataDir, STORE_FILE), ...(logger === undefined ? {} : { logger }) })
}
