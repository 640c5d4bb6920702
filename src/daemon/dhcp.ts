/**
 * Starts pxebox's DHCP side as config says (proxy, authoritative or off) and joins it to address tracking, which the
 * daemon started before (daemon/tracking.ts): the DHCP server's packet hook feeds the tracker, our own authoritative
 * replies are recorded as leases. Kept out of daemon.ts so the daemon only calls one function and shows its line.
 */
import type { Config } from '../config/schema.js'
import type { EventSink } from '../machines/events.js'
import type { Logger } from '../host/log.js'
import type { PxeInterface } from '../host/interfaces.js'
import type { NativeLoad } from '../host/native.js'
import { arpingProbe } from '../addresses/arp-probe.js'
import { inSubnet, prefixToNetmask } from '../host/ipv4.js'
import type { TrackingService } from '../addresses/tracking-service.js'
import { startAuthoritativeDhcp, type LeaseBookChoice } from '../boot/authoritative-service.js'
import type { Store } from '../store/index.js'
import { startProxyDhcp } from '../boot/dhcp-service.js'
import { syslogTarget } from './syslog-service.js'
import type { DhcpMachineLookup } from '../boot/proxy-policy.js'

/** Thrown for config that only the interface can judge (range outside its subnet); the daemon makes it a StartError. */
export class AddressConfigError extends Error {
  readonly code = 'PXEBOX_DHCP_RANGE'
  override name = 'AddressConfigError'
}

/** Authoritative mode's range and reservations must lie inside the interface's subnet; throws AddressConfigError. */
export function checkDhcpRange(config: Config, iface: PxeInterface): void {
  const d = config.dhcp
  if (d.mode !== 'authoritative') return
  const outside = [...(d.range === undefined ? [] : [d.range.start, d.range.end]), ...d.reservations.map((r) => r.address)].filter(
    (ip) => !inSubnet(ip, iface.address, iface.prefix),
  )
  if (outside.length > 0 || d.range === undefined) {
    throw new AddressConfigError(`dhcp.range/reservations: ${outside.join(', ') || 'no range'} not inside ${iface.name}'s subnet ${iface.address}/${iface.prefix}`)
  }
}

/** What the daemon passes in. */
export interface DhcpStartOptions {
  config: Config
  iface: PxeInterface
  /** The daemon's one load of the native addon (the port 67 socket's pinning). */
  native: NativeLoad
  publicUrl: string
  lookup: DhcpMachineLookup
  chainloadedRecently: (mac: string) => boolean
  events: EventSink
  logger: Logger
  /** The daemon's Store: authoritative leases go through it when it is shared by several appliances. */
  store: Store
  /** The running tracking service to feed; undefined when tracking is disabled. */
  tracking?: TrackingService
  /** Well-known ports; tests may move them. */
  ports?: { dhcp?: number; pxe?: number }
}

/** The running DHCP service. */
export interface DhcpService {
  /** The banner's DHCP line; undefined when DHCP is off. */
  line?: string
  close(): Promise<void>
}

/** Starts DHCP as `dhcp.mode` says (nothing when off); on failure closes whatever it had started and rethrows. */
export async function startDhcp(o: DhcpStartOptions): Promise<DhcpService> {
  const { config, iface, logger, tracking } = o
  const d = config.dhcp
  const authoritative = d.mode === 'authoritative'
  checkDhcpRange(config, iface)
  const closers: (() => Promise<void>)[] = []
  const close = async (): Promise<void> => {
    for (const c of closers.reverse()) await c().catch((err: unknown) => logger.warn({ err }, 'error while closing DHCP'))
  }
  try {
    const common = {
      interfaceName: iface.name,
      address: iface.address,
      pinning: d.interface_pinning,
      native: o.native,
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
        leaseBook: leaseBookFor(o.store),
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
        ...(tracking === undefined ? {} : { onReply: (r) => tracking.observeOwnReply(r) }),
      })
      closers.push(() => dhcp.close())
      const problems = dhcp.recovered.problems.length
      dhcpLine =
        `authoritative on ${iface.address}:67 and :4011, ${d.range.start}-${d.range.end}, ${dhcp.leases().length} active leases in ${dhcp.recovered.file}` +
        `${problems > 0 ? ` (${problems} damaged lease records dropped, see log)` : ''}${dhcp.pinned ? ` (pinned to ${iface.name})` : ''}`
    }
    return { ...(dhcpLine === undefined ? {} : { line: dhcpLine }), close }
  } catch (err) {
    await close()
    throw err
  }
}

/**
 * Which lease book the authoritative server uses: the Store when it is shared by several appliances (etcd: an address
 * is claimed there, so two appliances never give one address to two machines), else the lease log in data_dir (a
 * durable append with group commit, about five times the grants per second of a durable SQLite commit:
 * bench/lease-commit.ts). The embedded SQLite store is never shared, so for now this is always the log.
 */
function leaseBookFor(store: Store): LeaseBookChoice {
  return store.backend === 'etcd' ? { book: 'store', store } : { book: 'log' }
}

/** syslogTarget's address as the authoritative server's option 7, or nothing when syslog is off or not on 514. */
function logServerOf(target: { syslogAddress?: string }): { logServer?: string } {
  return target.syslogAddress === undefined ? {} : { logServer: target.syslogAddress }
}
