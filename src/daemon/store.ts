/**
 * The store the config chooses (`store.backend`): SQLite in data_dir, or an etcd cluster shared with other
 * appliances (README "Fleet"), and the banner line that says which and where.
 *
 * etcd unreachable at start: pxebox logs it and tries again every RETRY_MS until it answers (or the daemon is told
 * to stop), rather than exiting. The outage rule is that an appliance keeps working through an etcd outage;
 * an appliance restarted during one (a power cut of the rack) should come up the moment etcd does, not need an
 * operator to start it again after systemd gave up restarting it. It does not serve meanwhile: without the store it
 * has no shared catalog or machine records yet (the local cache that would let it boot machines then is the next step).
 */
import { hostname } from 'node:os'
import type { Config } from '../config/schema.js'
import type { Logger } from '../host/log.js'
import { openEmbeddedStore, openEtcdStore, StoreUnavailableError, type Store } from '../store/index.js'

/** How often a start waiting for etcd tries again. */
export const STORE_RETRY_MS = 2000

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

/** The banner's store line. */
export function storeLine(store: Store, who: ApplianceIdentity): string {
  return store.backend === 'etcd' ? `${store.location}  (shared; appliance ${who.name}, site ${who.site})` : `sqlite ${store.location}`
}

/**
 * Open the configured store. For etcd, waits (logging each failed try) while no member answers; rejects with the
 * last StoreUnavailableError once `signal` aborts, and at once for any other error (TLS files, a bad prefix).
 */
export async function openConfiguredStore(config: Config, logger: Logger, signal?: AbortSignal): Promise<Store> {
  const s = config.store
  if (s.backend === 'sqlite') return openEmbeddedStore(config.data_dir, logger)
  const tls = s.tls === undefined ? undefined : { caFile: s.tls.ca_file, ...(s.tls.cert_file === undefined ? {} : { certFile: s.tls.cert_file }), ...(s.tls.key_file === undefined ? {} : { keyFile: s.tls.key_file }) }
  const opts = { endpoints: s.endpoints, prefix: s.prefix, logger, ...(tls === undefined ? {} : { tls }) }
  const aborted = (): boolean => signal?.aborted === true
  for (let attempt = 1; ; attempt++) {
    try {
      const store = await openEtcdStore(opts)
      if (attempt > 1) logger.info({ endpoints: s.endpoints, attempts: attempt }, `etcd answers after ${attempt} tries; starting`)
      return store
    } catch (err) {
      if (!(err instanceof StoreUnavailableError) || aborted()) throw err
      logger.warn({ endpoints: s.endpoints, attempt }, `${err.message}; pxebox waits for etcd and tries again in ${STORE_RETRY_MS / 1000} s (it serves once etcd answers)`)
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, STORE_RETRY_MS)
        signal?.addEventListener('abort', () => (clearTimeout(timer), resolve()), { once: true })
      })
      if (aborted()) throw err
    }
  }
}
