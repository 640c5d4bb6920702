/**
 * The store the config chooses (`store.backend`): SQLite in data_dir, or an etcd cluster shared with other
 * appliances (README "Fleet") behind the outage layer, and the banner line that says which and where.
 *
 * With etcd the daemon's Store is the outage layer (store/mirrored.ts) over the etcd store: reads come from the local
 * copy `<data_dir>/store-cache.db`, machine records and timelines are queued while etcd does not answer, every other
 * write is refused (the API's 503). Queued machine writes are merged with what etcd holds when flushed (machines/merge.ts). The etcd store is made without a first round trip (connectEtcdStore) and the
 * layer opens it lazily: when etcd does not answer at start the daemon starts at once from the copy, so an appliance
 * restarted during an outage (a power cut of the rack) boots the machines it knows instead of waiting for etcd.
 * An appliance whose copy is empty (its first start) starts too, and serves config.yaml's own groups and profiles.
 */
import { hostname } from 'node:os'
import { join } from 'node:path'
import type { Config } from '../config/schema.js'
import type { Logger } from '../host/log.js'
import { MACHINE_KIND, mergeQueuedRecords, TIMELINE_KIND } from '../machines/records-store.js'
import { CLAIM_KIND, LEASE_KIND } from '../addresses/store-lease-book.js'
import { FINDING_KIND } from '../addresses/findings-store.js'
import { OVERLAY_KINDS } from '../catalog/overlay-store.js'
import { APPLIANCE_KIND, APPLIANCE_SEEN_KIND, connectEtcdStore, openEmbeddedStore, openMirroredStore, type EtcdStore, type MirroredStore, type Store } from '../store/index.js'

/** The local copy of a shared store, in data_dir. */
export const STORE_COPY_FILE = 'store-cache.db'

/**
 * Kinds queued while etcd does not answer: a machine's boot events must not be lost (issue 17: "machine events are
 * queued and written when etcd returns"). Leases are not: a new address needs a committed etcd write (the lease book
 * keeps renewals of live leases in memory itself), and groups/profiles and their files are operator writes that get a
 * 503. Findings are not either: they are re-derived, and republished whole when etcd answers (addresses/findings-store.ts).
 */
const QUEUED_KINDS = [MACHINE_KIND, TIMELINE_KIND]

/** Every kind the daemon keeps in a shared store: a new copy is filled by listing them (store/mirrored.ts). */
const SHARED_KINDS = [...OVERLAY_KINDS, MACHINE_KIND, TIMELINE_KIND, LEASE_KIND, CLAIM_KIND, FINDING_KIND, APPLIANCE_KIND, APPLIANCE_SEEN_KIND]

/** Who this appliance is in a fleet: the registry key and what machine records carry. */
export interface ApplianceIdentity {
  readonly name: string
  readonly site: string
}

/** `store.name` (default: the host name, cut to a registry key) and `store.site`. */
export function applianceIdentity(config: Config): ApplianceIdentity {
  const host = hostname().replace(/[^A-Za-z0-9_.-]/g, '-').slice(0, 63) || 'pxebox'
  return { name: config.store.name ?? host, site: config.store.site }
}

/** The opened store: what services use, and for etcd the outage layer and the etcd handle under it. */
export interface ConfiguredStore {
  /** What every service reads and writes: SQLite, or the outage layer over etcd. */
  readonly store: Store
  /** etcd only. `mirror` is `store`; `etcd` is the handle it wraps, for what only etcd has (the registry's leases). */
  readonly shared?: { readonly mirror: MirroredStore; readonly etcd: EtcdStore }
}

/**
 * Open the configured store. Never waits for etcd: the outage layer tries it once (the etcd client's call timeout)
 * and starts from its copy when it does not answer. Rejects with StoreError for what the operator must fix (a TLS
 * file, a bad prefix, a copy it cannot create).
 */
export async function openConfiguredStore(config: Config, logger: Logger): Promise<ConfiguredStore> {
  const s = config.store
  if (s.backend === 'sqlite') return { store: await openEmbeddedStore(config.data_dir, logger) }
  const tls = s.tls === undefined ? undefined : { caFile: s.tls.ca_file, ...(s.tls.cert_file === undefined ? {} : { certFile: s.tls.cert_file }), ...(s.tls.key_file === undefined ? {} : { keyFile: s.tls.key_file }) }
  const etcd = connectEtcdStore({ endpoints: s.endpoints, prefix: s.prefix, logger, ...(tls === undefined ? {} : { tls }) })
  try {
    const mirror = await openMirroredStore({ remote: etcd, file: join(config.data_dir, STORE_COPY_FILE), queued: QUEUED_KINDS, kinds: SHARED_KINDS, mergeQueued: mergeQueuedRecords, logger })
    return { store: mirror, shared: { mirror, etcd } }
  } catch (err) {
    await etcd.close()
    throw err
  }
}

/**
 * The banner's store line. For a shared store started during an outage it says so, and which state it serves: the
 * copy's revision and when etcd last answered while the copy followed it.
 */
export function storeLine(opened: ConfiguredStore, who: ApplianceIdentity, startedDown: boolean): string {
  const { store, shared } = opened
  if (shared === undefined) return `sqlite ${store.location}`
  const line = `${store.location}  (shared; appliance ${who.name}, site ${who.site})`
  if (!startedDown) return line
  const c = shared.mirror.copyState()
  const of = c.revision === 0 ? 'an empty copy (this appliance never reached etcd): config.yaml only' : `the copy of ${c.currentAt ?? 'an unknown time'} (revision ${c.revision})`
  return `${line}\n  ${''.padEnd(9)}  etcd unreachable at start: serving ${of} from ${c.file}`
}
