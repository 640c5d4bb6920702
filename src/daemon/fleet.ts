/**
 * This appliance in the fleet's registry (store/etcd-registry.ts), started as the shared store allows.
 *
 * etcd answering at start: registered before anything serves, so a second appliance with a live name is a start-up
 * error (issue 17: "not a silent merge"). etcd not answering at start (the outage layer serves from its copy): the
 * appliance serves anyway and registers once the outage layer reports etcd up again; a name found taken then cannot
 * stop a running appliance that is booting machines, so it is logged as an error, with the holder, and this one stays
 * unregistered until restarted with another `store.name`.
 */
import type { Logger } from '../host/log.js'
import { registerAppliance, RegistryNameTaken, type ApplianceRecord, type ApplianceRegistry, type ApplianceView, type EtcdStore, type MirroredStore } from '../store/index.js'

/** How long a registration that failed for want of etcd waits before it tries again (ms). */
const RETRY_MS = 3000

/** The registry as the daemon uses it. */
export interface FleetMembership {
  /** Every appliance known (empty until this one registered). */
  list(): ApplianceView[]
  close(): Promise<void>
}

/** Options for joinFleet. */
export interface JoinFleetOptions {
  readonly mirror: MirroredStore
  readonly etcd: EtcdStore
  readonly self: Omit<ApplianceRecord, 'heartbeat' | 'host' | 'pid'>
  readonly logger: Logger
  readonly signal?: AbortSignal
}

/** Registers now when etcd answers (RegistryNameTaken rejects), else once it does. */
export async function joinFleet(o: JoinFleetOptions): Promise<FleetMembership> {
  const register = (): Promise<ApplianceRegistry> => registerAppliance(o.etcd, o.self, { logger: o.logger, ...(o.signal === undefined ? {} : { signal: o.signal }) })
  // Filled in when the registration succeeds, which may be long after this returns (etcd down at start).
  const state: { registry?: ApplianceRegistry; retry?: NodeJS.Timeout; closed: boolean; trying: boolean } = { closed: false, trying: false }

  const later = async (): Promise<void> => {
    if (state.closed || state.registry !== undefined || state.trying) return
    state.trying = true
    try {
      const r = await register()
      if (state.closed) return void (await r.close())
      state.registry = r
      unsubscribe()
      o.logger.info({ appliance: o.self.name, site: o.self.site }, `registered as appliance ${o.self.name} (site ${o.self.site}) now that etcd answers`)
    } catch (err) {
      if (err instanceof RegistryNameTaken) {
        unsubscribe()
        return void o.logger.error({ holder: err.holder }, `${err.message}; this appliance goes on serving unregistered`)
      }
      // etcd gone again: the next up change tries; still up (a lease call failed): a timer does.
      o.logger.warn({ err: (err as Error).message }, `registering appliance ${o.self.name} failed; trying again ${o.mirror.up ? `in ${RETRY_MS / 1000} s` : 'when etcd answers'}`)
      if (o.mirror.up) state.retry = setTimeout(() => void later(), RETRY_MS)
    } finally {
      state.trying = false
    }
  }

  const unsubscribe = o.mirror.onUpChange((up) => {
    if (up) void later()
  })
  if (o.mirror.up) {
    try {
      state.registry = await register()
      unsubscribe()
    } catch (err) {
      if (err instanceof RegistryNameTaken) {
        unsubscribe()
        throw err
      }
      o.logger.warn({ err: (err as Error).message }, `registering appliance ${o.self.name} failed; trying again in ${RETRY_MS / 1000} s`)
      state.retry = setTimeout(() => void later(), RETRY_MS)
    }
  }
  return {
    list: () => state.registry?.list() ?? [],
    async close() {
      state.closed = true
      clearTimeout(state.retry)
      unsubscribe()
      await state.registry?.close()
    },
  }
}
