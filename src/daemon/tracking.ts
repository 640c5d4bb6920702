/**
 * Starts address tracking as config `tracking` says, before the services that feed it (the DHCP server's packet hook,
 * our own authoritative replies) and the ones that read it (machine records, metrics, the API), so nothing has to
 * reach it through a closure over a variable assigned later.
 */
import type { Config } from '../config/schema.js'
import type { Logger } from '../host/log.js'
import type { PxeInterface } from '../host/interfaces.js'
import type { NativeLoad } from '../host/native.js'
import type { TrackerOptions, TrackerSettings } from '../addresses/tracker.js'
import { startAddressTracking, type TrackingService } from '../addresses/tracking-service.js'

/** What the daemon passes in. */
export interface TrackingStartOptions {
  config: Config
  iface: PxeInterface
  /** The daemon's one load of the native addon (the port 68 listener's pinning). */
  native: NativeLoad
  logger: Logger
  /** Proxy mode: which machines boot shim -> GRUB, whose site ACK must name pxebox as next-server. */
  shimGrub?: TrackerOptions['shimGrub']
  /** Test hook: the port 68 listener's port. */
  clientPort?: number
}

/** The tracker's live settings from config `tracking` (also what a reload applies). */
export function trackerSettings(t: Config['tracking']): TrackerSettings {
  return {
    strayAfterMs: t.stray_after * 1000,
    conflictWindowMs: t.conflict_window * 1000,
    allowedServers: t.allowed_servers,
    maxBindings: t.max_bindings,
    maxMacs: t.max_macs,
    maxServers: t.max_servers,
    maxFindings: t.max_findings,
  }
}

/** Starts tracking, or returns undefined when `tracking.enabled` is false. */
export async function startTracking(o: TrackingStartOptions): Promise<TrackingService | undefined> {
  const { config, iface } = o
  const t = config.tracking
  if (!t.enabled) return undefined
  const authoritative = config.dhcp.mode === 'authoritative'
  const tracking = await startAddressTracking({
    interfaceName: iface.name,
    dataDir: config.data_dir,
    ...trackerSettings(t),
    ...(authoritative ? { ownServers: [iface.address] } : {}),
    ...(authoritative || o.shimGrub === undefined ? {} : { shimGrub: o.shimGrub }),
    arp: t.arp,
    // In authoritative mode nothing else serves the VLAN, so there are no site server replies on 68 to see.
    listenClientPort: !authoritative,
    logger: o.logger,
    native: o.native,
    ...(o.clientPort === undefined ? {} : { clientPort: o.clientPort }),
  })
  tracking.arpReady.catch(() => undefined) // logged by the capture
  return tracking
}

/** The banner's tracking line. */
export function trackingLine(tracking: TrackingService | undefined, config: Config): string {
  if (tracking === undefined) return 'off'
  const t = config.tracking
  return `${tracking.leases().length} bindings, ARP ${t.arp ? 'on' : 'off'}, stray after ${t.stray_after} s, data ${config.data_dir}/observed.json`
}
