/**
 * What the HTTP routes share: dependencies plus a small per-app memory of which machine last fetched a script from
 * which IP, so that asset downloads (which carry no labels) can be attributed to a MAC/group in boot events.
 */
import type { EventSink } from '../machines/events.js'
import type { Logger } from '../host/log.js'
import type { BootMatch, BootState } from '../catalog/state.js'
import type { AssetSender } from './sendfile.js'
import type { Labels } from '../catalog/labels.js'

/** How `/ipxe` holds machines no group matches (config `discovery:`). */
export interface DiscoverySettings {
  /** Seconds between the holding script's polls of `/ipxe`. */
  readonly pollSeconds: number
}

/** The machine seen last on an IP. */
export interface RecentMachine {
  readonly mac?: string
  readonly group: string
  readonly profile: string
}

/** Shared by the route modules of one app. */
export interface HttpContext {
  readonly store: { get(): BootState }
  readonly assetsDir: string
  readonly publicUrl: string
  /** The app's asset sender when the addon is built and sendfile not turned off; absent: bodies are copied (copyRange). */
  readonly sender?: AssetSender
  readonly logger: Logger
  readonly events: EventSink
  /** IPs pxebox has seen a MAC use (for `bind_to_lease`); see HttpDeps.addressesOf. */
  readonly addressesOf: (mac: string) => readonly string[]
  /** When this MAC reported installed, if it did (boot_once profiles then get a local-disk boot from `/ipxe`). */
  readonly installedAt?: (mac: string) => string | undefined
  /** `discovery.mode: hold`: `/ipxe` answers a machine no group matches with the holding script. Absent: 404. */
  readonly discovery?: DiscoverySettings
  /** What a machine reported from the holding script, as selector labels (boot/inventory.ts factLabels). */
  readonly factsOf?: (mac: string) => Labels
  /** IPv4 address machines should send syslog to (`set syslog` in the scripts), when pxebox receives syslog. */
  readonly syslogAddress?: string
  /** The `/boot.ipxe` text (fixed per app). */
  readonly bootstrap: string
  remember(ip: string, mac: string | undefined, match: BootMatch): void
  recall(ip: string): RecentMachine | undefined
}

/** Bounded IP -> machine memory (the entry that changed longest ago is evicted first). */
export function recentMachines(limit = 4096): Pick<HttpContext, 'remember' | 'recall'> {
  const byIp = new Map<string, RecentMachine>()
  return {
    remember(ip, mac, match) {
      const known = byIp.get(ip)
      // The same machine asking again (the common case) changes nothing; a delete and set per request cost ~2 µs.
      if (known !== undefined && known.mac === mac && known.group === match.group.id && known.profile === match.profile.id) return
      byIp.delete(ip)
      byIp.set(ip, mac !== undefined ? { mac, group: match.group.id, profile: match.profile.id } : { group: match.group.id, profile: match.profile.id })
      if (byIp.size > limit) byIp.delete(byIp.keys().next().value!)
    },
    recall: (ip) => byIp.get(ip),
  }
}
