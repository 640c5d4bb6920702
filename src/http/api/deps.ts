/**
 * What the `/v1` API needs from the rest of pxebox, and the per-route access levels. Kept apart from plugin.ts so
 * the route files import these types without importing the plugin that registers them (an import cycle).
 */
import type { BootState } from '../../catalog/state.js'
import type { ApplianceView } from '../../store/etcd-registry.js'
import type { BootOverlay } from '../../catalog/overlay.js'
import type { MachineStore } from '../../machines/store.js'
import type { Store } from '../../store/index.js'
import type { ApiAuth } from './auth.js'
import type { EventFanoutStats } from './event-fanout.js'
import type { FindingView, LeaseView } from './schemas.js'

/** The address tracker's read side, when it runs (src/addresses). */
export interface TrackingView {
  leases(): readonly LeaseView[]
  findings(): readonly FindingView[]
}

/** What the API needs. */
export interface ApiDeps {
  readonly machines: MachineStore
  /** Current boot state (groups, profiles) for views and boot_once. */
  readonly store: { get(): BootState }
  readonly auth: ApiAuth
  /** No progress for this long makes a machine stuck (config machines.stuck_after, ms here). */
  readonly stuckAfterMs: number
  /** API-written groups/profiles; absent: group/profile writes answer 501. */
  readonly overlay?: BootOverlay
  /** Leases and findings, when tracking runs (it may start after the API); undefined: `available: false`. */
  readonly tracking?: () => TrackingView | undefined
  /**
   * Findings the boot side makes (firmware did not run iPXE, src/boot/ipxe-handoff.ts), listed with the tracker's in
   * `/v1/findings` whether tracking runs or not.
   */
  readonly bootFindings?: () => readonly FindingView[]
  /** The appliance registry of a shared (etcd) store: GET /v1/appliances; absent on the embedded store. */
  readonly appliances?: () => readonly ApplianceView[]
  /**
   * The store shared by the fleet (etcd), when there is one: GET /v1/fleet/machines reads every appliance's machine
   * records from it, a page at a time, and /v1/fleet/findings every appliance's findings. Absent on the embedded
   * store.
   */
  readonly sharedStore?: Pick<Store, 'list' | 'page'>
  /** False while the shared store does not answer: writes are refused with 503 at once (issue 17 outage rule). */
  readonly storeUp?: () => boolean
  /**
   * IPv4 addresses pxebox has seen a MAC use on the wire (DHCP chaddr from that address, the address tracker's
   * bindings), most recent first: the only evidence the tokenless installed callback accepts (HttpDeps.addressesOf).
   */
  readonly addressesOf: (mac: string) => readonly string[]
  /** `/v1/events` streams open at once (config api.max_event_streams); default 64. */
  readonly maxEventStreams?: number
  /** Bytes one event stream may have queued before it is closed as a slow reader; default 256 KiB (tests lower it). */
  readonly maxEventQueuedBytes?: number
  /** Handed the event fan-out's stats once the plugin loads (buildApp: for /metrics). */
  readonly publishEventStats?: (stats: () => EventFanoutStats) => void
  /** Where `/assets/` files live (config assets_dir), named when a profile's kernel path is refused. */
  readonly assetsDir?: string
  /** pxebox version, for the OpenAPI document. */
  readonly version: string
  readonly now?: () => number
}

/** Who may call a route: anyone, readers (token unless open_reads), writers (token), or the machine itself. */
export type Access = 'open' | 'read' | 'write' | 'machine'
