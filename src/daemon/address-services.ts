/**
 * Starts pxebox's DHCP side as config says (proxy, authoritative or off) together with address tracking, and joins
 * them: the DHCP server's packet hook feeds the tracker, our own authoritative replies are recorded as leases, the
 * ARP probe is shared. Kept out of daemon.ts so the daemon only calls one function and shows its lines.
 */
import type { Config } from '../config/schema.js'
import type { EventSink } from '../machines/events.js'
import type { Logger } from '../host/log.js'
import type { PxeInterface } from '../host/interfaces.js'
import { arpingProbe } from '../addresses/arp-probe.js'
import { inSubnet, prefixToNetmask } from '../host/ipv4.js'
import { startAddressTracking, type AddressQueries, type TrackingService } from '../addresses/tracking-service.js'
import { startAuthoritativeDhcp } from '../boot/authoritative-service.js'
import { startProxyDhcp } from '../boot/dhcp-service.js'
import { syslogTarget } from './syslog-service.js'
import type { DhcpMachineLookup } from '../boot/proxy-policy.js'

/** Thrown for config that only the interface can judge (range outside its subnet); the daemon makes it a StartError. */
export class AddressConfigError extends Error {
  readonly code = 'PXEBOX_DHCP_RANGE'
  override name = 'AddressConfigError'
}

/** What the daemon passes in. */
export interface AddressServicesOptions {
  config: Config
  iface: PxeInterface
  publicUrl: string
  lookup: DhcpMachineLookup
  chainloadedRecently: (mac: string) => boolean
  events: EventSink
  logger: Logger
  /** Well-known ports; tests may move them. */
  ports?: { dhcp?: number; pxe?: number; client?: number }
}

/** The running DHCP + tracking services. */
export interface AddressServices {
  /** Banner lines: DHCP (undefined when off) and tracking (undefined when disabled). */
  dhcpLine?: string
  trackingLine?: string
  /** leases(), findings(), machines(), counts(): for the API and metrics; undefined when tracking is disabled. */
  queries?: AddressQueries & { addressesOf(mac: string): string[] }
  close(): Promise<void>
}

/** Starts DHCP and tracking; on failure closes whatever it had started and rethrows. */
export async function startAddressServices(o: AddressServicesOptions): Promise<AddressServices> {
  const { config, iface, logger } = o
  const d = config.dhcp
  const authoritative = d.mode === 'authoritative'
  if (authoritative) {
    const outside = [
      ...(d.range === undefined ? [] : [d.range.start, d.range.end]),
      ...d.reservations.map((r) => r.address),
    ].filter((ip) => !inSubnet(ip, iface.address, iface.prefix))
    if (outside.length > 0 || d.range === undefined) {
      throw new AddressConfigError(
        `dhcp.range/reservations: ${outside.join(', ') || 'no range'} not inside ${iface.name}'s subnet ${iface.address}/${iface.prefix}`,
      )
    }
  }
  const closers: (() => Promise<void>)[] = []
  const close = async (): Promise<void> => {
    for (const c of closers.reverse()) await c().catch((err: unknown) => logger.warn({ err }, 'error while closing DHCP/tracking'))
  }
  try {
    let tracking: TrackingService | undefined
    const t = config.tracking
    if (t.enabled) {
      tracking = await startAddressTracking({
        interfaceName: iface.name,
        dataDir: config.data_dir,
        strayAfterMs: t.stray_after * 1000,
        conflictWindowMs: t.conflict_window * 1000,
        allowedServers: t.allowed_servers,
        limits: { maxBindings: t.max_bindings, maxMacs: t.max_macs, maxServers: t.max_servers, maxFindings: t.max_findings },
        ...(authoritative ? { ownServers: [iface.address] } : {}),
        arp: t.arp,
        listenClientPort: !authoritative,
        logger,
        ...(o.ports?.client === undefined ? {} : { clientPort: o.ports.client }),
      })
      closers.push(() => tracking!.close())
      tracking.arpReady.catch(() => undefined) // logged by the capture
    }
    const common = {
      interfaceName: iface.name,
      address: iface.address,
      pinning: d.interface_pinning,
      httpBaseUrl: o.publicUrl,
      lookup: o.lookup,
      chainloadedRecently: o.chainloadedRecently,
      logger,
      events: o.events,
      ...(o.ports === undefined ? {} : { ports: o.ports }),
      ...(tracking === undefined ? {} : { onPacket: tracking.observer }),
    }
    let dhcpLine: string | undefined
    if (d.mode === 'proxy') {
      const dhcp = await startProxyDhcp(common)
      closers.push(() => dhcp.close())
      dhcpLine = `proxy on ${iface.address}:67 and :4011${dhcp.pinned ? ` (pinned to ${iface.name})` : ''}`
    } else if (authoritative && d.range !== undefined) {
      const dhcp = await startAuthoritativeDhcp({
        ...common,
        dataDir: config.data_dir,
        range: d.range,
        reservations: d.reservations,
        leaseSeconds: d.lease_time,
        netmask: d.netmask ?? prefixToNetmask(iface.prefix),
        ...(d.router === undefined ? {} : { router: d.router }),
        dns: d.dns,
        // Option 7: our syslog receiver, so installers that honour it log into the machine's record (issue 20).
        ...logServerOf(syslogTarget(config, iface.address)),
        declineHoldSeconds: d.decline_hold,
        ...(d.arp_probe_ms > 0 ? { probe: arpingProbe({ interfaceName: iface.name, timeoutMs: d.arp_probe_ms }) } : {}),
        ...(tracking === undefined ? {} : { onReply: (r) => tracking!.observeOwnReply(r) }),
      })
      closers.push(() => dhcp.close())
      const problems = dhcp.recovered.problems.length
      dhcpLine =
        `authoritative on ${iface.address}:67 and :4011, ${d.range.start}-${d.range.end}, ${dhcp.leases().length} active leases` +
        `${problems > 0 ? ` (${problems} damaged lease log records dropped, see log)` : ''}${dhcp.pinned ? ` (pinned to ${iface.name})` : ''}`
    }
    return {
      ...(dhcpLine === undefined ? {} : { dhcpLine }),
      ...(tracking === undefined
        ? {}
        : {
            trackingLine: `${tracking.leases().length} bindings, ARP ${t.arp ? 'on' : 'off'}, stray after ${t.stray_after} s, data ${config.data_dir}/observed.json`,
            queries: tracking,
          }),
      close,
    }
  } catch (err) {
    await close()
    throw err
  }
}

/** syslogTarget's address as the authoritative server's option 7, or nothing when syslog is off or not on 514. */
function logServerOf(target: { syslogAddress?: string }): { logServer?: string } {
  return target.syslogAddress === undefined ? {} : { logServer: target.syslogAddress }
}
