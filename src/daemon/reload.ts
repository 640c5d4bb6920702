/**
 * What a SIGHUP does with each config key, as a table: every top-level key of the config schema (and each nested key
 * of a section whose keys differ) is either live, with how it is applied, or needs a restart, with why. Restart
 * keys that changed are logged and returned in the reload result, so `systemctl reload` never silently ignores an
 * edit. test/daemon/reload.test.ts walks the schema, so a new key without a row here fails the tests by name.
 */
import type { BootStateOptions, LoadResult } from '../catalog/state.js'
import { bootSourcesOf } from '../config/boot-sources.js'
import type { Config, ConfigData } from '../config/schema.js'
import type { Logger } from '../host/log.js'
import type { TrackerSettings } from '../addresses/tracker.js'
import { readApiToken } from '../http/api/auth.js'
import { trackerSettings } from './tracking.js'

/** The part of the daemon that applies a group of live keys. */
export type Applier = 'catalog' | 'log' | 'token' | 'tracker'

/** One row: how a key takes effect on SIGHUP. */
export type ReloadRule =
  | { readonly kind: 'live'; readonly by: Applier; readonly how: string }
  | { readonly kind: 'restart'; readonly why: string }
  | { readonly kind: 'nested'; readonly keys: Readonly<Record<string, ReloadRule>> }

const live = (by: Applier, how: string): ReloadRule => ({ kind: 'live', by, how })
const restart = (why: string): ReloadRule => ({ kind: 'restart', why })
const nested = (keys: Record<string, ReloadRule>): ReloadRule => ({ kind: 'nested', keys })

const CATALOG = 'the catalog loads again from config.yaml and the folders, in slices beside the serving one, and is swapped in whole; the watchers move to the new folders'
const TRACKER = "the tracker takes the new settings (tracker.configure); the next evaluation, within a quarter of stray_after, uses them"

/** Every config key and what SIGHUP does with it. */
export const RELOAD_TABLE = {
  interface: restart('every listener is bound to its address'),
  address: restart('every listener is bound to it'),
  log_level: live('log', 'the logger level is set'),
  data_dir: restart('the store (pxebox.db: machine records, API-written groups/profiles), observed.json and the lease log are open there'),
  assets_dir: restart('the HTTP asset routes serve the folder given at start'),
  matchbox_dir: live('catalog', CATALOG),
  ignition_dir: live('catalog', CATALOG),
  generic_dir: live('catalog', CATALOG),
  butane_files_dir: live('catalog', CATALOG),
  dhcp: restart('the DHCP sockets, pool, reservations and lease log are set up at start'),
  tracking: nested({
    enabled: restart('starts or stops the port 68 listener and the ARP capture'),
    arp: restart('starts or stops the tcpdump capture and arping probes'),
    stray_after: live('tracker', TRACKER),
    conflict_window: live('tracker', TRACKER),
    allowed_servers: live('tracker', TRACKER),
    max_bindings: live('tracker', `${TRACKER}; tables over a lowered bound are trimmed at once`),
    max_macs: live('tracker', `${TRACKER}; tables over a lowered bound are trimmed at once`),
    max_servers: live('tracker', `${TRACKER}; listed servers stay until silent for conflict_window`),
    max_findings: live('tracker', TRACKER),
  }),
  tftp: restart('the TFTP listener and its limits are set up at start'),
  http: restart('the HTTP listener, the public URL (also in DHCP boot file names) and the sendfile choice are set up at start'),
  api: nested({
    token: live('token', 'the API reads the token per request'),
    token_file: live('token', 'the file is read again on every SIGHUP, changed or not'),
    open_reads: restart('the API routes are built with it'),
    max_event_streams: restart('the event stream limit is built into the API'),
  }),
  machines: nested({
    stuck_after: restart('the API and dashboard are built with it'),
    ipxe_not_run_after: restart('the iPXE hand-off watch is built with it at start'),
    max_records: restart('the machine records are loaded (and cut to it) at start'),
  }),
  discovery: restart('the holding script and its poll interval are built into the HTTP routes at start'),
  syslog: restart('the syslog socket is bound at start, and its address goes into scripts and DHCP option 7'),
  store: restart('the store (SQLite in data_dir, or the etcd cluster) is opened at start, and the appliance registers under its name and site then'),
  profiles: live('catalog', CATALOG),
  groups: live('catalog', CATALOG),
} as const satisfies Record<keyof ConfigData, ReloadRule>

/** The keys (dotted) that differ between two configs, by what a reload can do about them. */
export interface ReloadPlan {
  /** Live keys changed since the last applied config. */
  readonly live: string[]
  /** Restart keys that differ from the config the daemon started with. */
  readonly restart: string[]
}

/**
 * Compare `next` with what runs: live keys against the last applied config, restart keys against the started one (a
 * restart key changed by an earlier SIGHUP is still not in effect, so it is reported again).
 */
export function planReload(started: Config, applied: Config, next: Config): ReloadPlan {
  const plan: ReloadPlan = { live: [], restart: [] }
  const same = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b)
  const walk = (rules: Readonly<Record<string, ReloadRule>>, s: unknown, a: unknown, n: unknown, prefix: string): void => {
    for (const [key, rule] of Object.entries(rules)) {
      const at = (o: unknown) => (o as Record<string, unknown> | undefined)?.[key]
      const name = `${prefix}${key}`
      if (rule.kind === 'nested') walk(rule.keys, at(s), at(a), at(n), `${name}.`)
      else if (rule.kind === 'live' && !same(at(a), at(n))) plan.live.push(name)
      else if (rule.kind === 'restart' && !same(at(s), at(n))) plan.restart.push(name)
    }
  }
  walk(RELOAD_TABLE, started, applied, next, '')
  return plan
}

/** What a reload did: live keys applied, restart keys changed but not in effect. */
export interface ReloadResult {
  applied: string[]
  restart_needed: string[]
}

/** The running parts the live keys reach. */
export interface ReloadTargets {
  readonly logger: Logger
  /** Load new catalog sources (daemon's Catalog.reload). */
  readonly catalog: (sources: BootStateOptions) => Promise<LoadResult>
  /** Replace the API token the API reads per request. */
  readonly setToken: (token: string | undefined) => void
  /** The running tracker; undefined when tracking is off. */
  readonly tracker?: { configure(settings: TrackerSettings): void }
  /** pxebox's HTTP base as computed at start (`http` needs a restart), for the GRUB trial render of shim-grub groups. */
  readonly publicUrl?: string
}

/**
 * The daemon's reload: applies the live keys of each new config and reports the restart keys. Either the whole new
 * config's live part is applied or none of it: the token is read and the catalog loaded before anything changes, and
 * a failure throws with the old config still in effect.
 */
export function createReloader(started: Config, targets: ReloadTargets): (next: Config) => Promise<ReloadResult> {
  let applied = started
  return async (next) => {
    const plan = planReload(started, applied, next)
    const { logger } = targets
    if (plan.restart.length > 0) logger.warn({ keys: plan.restart }, 'these config changes take effect after a restart')
    // Always: a watched file or the token file may have changed without a key changing.
    const token = readApiToken(next.api)
    const result = await targets.catalog(bootSourcesOf(next, targets.publicUrl))
    if (!result.ok) throw new Error(`boot configuration rejected: ${result.errors.join('; ')}`)
    targets.setToken(token)
    targets.tracker?.configure(trackerSettings(next.tracking))
    if (next.log_level !== applied.log_level) logger.level = next.log_level
    applied = next
    return { applied: plan.live, restart_needed: plan.restart }
  }
}
