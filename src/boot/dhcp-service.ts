/**
 * The proxyDHCP service the daemon starts: the DHCP server (src/dhcp/server.ts) wired to the proxy policy, with a
 * log line and a boot event for every decision.
 *
 * Events and log lines are written once the receive batch's replies have left (same turn, after the send).
 * Events: every reply records a 'dhcp' event (step 'offer' or 'ack'); a PXE or HTTP-boot client that is ignored
 * (pxe: false, unknown architecture, ...) records step 'ignore' with the reason, because an operator asking "why did
 * this machine not boot" needs to see it. Ordinary DHCP clients (udhcpc, the site server's own traffic, REQUESTs on
 * 67) only get a debug log line: they are the bulk of DHCP traffic and not boot attempts.
 */
import { startDhcpServer, type BindToInterface, type DhcpRequest, type DhcpServerDrops, type PacketObserver } from '../dhcp/index.js'
import type { EventSink } from '../machines/events.js'
import { silentLogger, type Logger } from '../host/log.js'
import type { NativeLoad } from '../host/native.js'
import { decideProxyReply, type DhcpMachineLookup, type ProxyDecision } from './proxy-policy.js'

/** What the daemon passes in (from config and the other services). */
export interface ProxyDhcpOptions {
  interfaceName: string
  /** Our address on the PXE interface (config `address`): option 54, siaddr, and the 4011 bind address. */
  address: string
  /** config dhcp.interface_pinning */
  pinning: 'auto' | 'off'
  /** http.public_url, e.g. `http://10.0.0.2:8080` */
  httpBaseUrl: string
  /** Where the firmware folder is served over HTTP for UEFI HTTP boot; default `<httpBaseUrl>/firmware`. */
  firmwareBaseUrl?: string
  lookup: DhcpMachineLookup
  /** True when this MAC fetched a first-stage iPXE binary over TFTP within the last few seconds. */
  chainloadedRecently: (mac: string) => boolean
  logger?: Logger
  events: EventSink
  /** Sees every packet on 67/4011, answered or not (the address tracker). */
  onPacket?: PacketObserver
  /** Test hooks: high ports, broadcast address, pinning implementation, interface list. */
  ports?: { dhcp?: number; pxe?: number; client?: number }
  broadcastAddress?: string
  bindToInterface?: BindToInterface
  listInterfaces?: () => string[]
  /** The native addon as the daemon loaded it (DHCP server's pinning); loaded by the server when not given. */
  native?: NativeLoad
}

/** A running proxyDHCP service. */
export interface ProxyDhcpService {
  readonly pinned: boolean
  /** Counted drops (metrics, tests). */
  readonly drops: Readonly<DhcpServerDrops>
  readonly ports: { dhcp: number; pxe: number }
  close(): Promise<void>
}

/** The socket-level options (interface, pinning, test hooks) both DHCP services hand to startDhcpServer. */
export function dhcpServerOptions(opts: ProxyDhcpOptions): Parameters<typeof startDhcpServer>[0] {
  return {
    interfaceName: opts.interfaceName,
    address: opts.address,
    pinning: opts.pinning,
    ...(opts.ports === undefined ? {} : { ports: opts.ports }),
    ...(opts.broadcastAddress === undefined ? {} : { broadcastAddress: opts.broadcastAddress }),
    ...(opts.bindToInterface === undefined ? {} : { bindToInterface: opts.bindToInterface }),
    ...(opts.listInterfaces === undefined ? {} : { listInterfaces: opts.listInterfaces }),
    ...(opts.native === undefined ? {} : { native: opts.native }),
    ...(opts.onPacket === undefined ? {} : { onPacket: opts.onPacket }),
  }
}

/** Starts proxyDHCP on 67 and 4011; rejects when the sockets cannot be bound or pinning is required but fails. */
export async function startProxyDhcp(opts: ProxyDhcpOptions): Promise<ProxyDhcpService> {
  const logger = (opts.logger ?? silentLogger).child({ proto: 'dhcp' })
  const ctx = {
    serverAddress: opts.address,
    httpBaseUrl: opts.httpBaseUrl,
    ...(opts.firmwareBaseUrl === undefined ? {} : { firmwareBaseUrl: opts.firmwareBaseUrl }),
    lookup: opts.lookup,
    chainloadedRecently: opts.chainloadedRecently,
  }

  // What the decisions of one receive batch leave to record: written after the batch's replies have left (the
  // server sends them together when the batch ends), so a log line and a machine-record update never delay a reply.
  // Nothing is lost: the flush runs in the same turn, right after the send.
  const noted: { req: DhcpRequest; decision: ProxyDecision }[] = []
  let flushQueued = false
  // One ISO time string per millisecond: every event of a batch shares it (toISOString costs ~1 us cold).
  let isoAt = -1
  let iso = ''
  const nowIso = (): string => {
    const ms = Date.now()
    if (ms !== isoAt) {
      isoAt = ms
      iso = new Date(ms).toISOString()
    }
    return iso
  }
  const note = (req: DhcpRequest, decision: ProxyDecision): void => {
    const f = decision.facts
    const mac = f.mac ?? req.packet.chaddr
    const xid = `0x${req.packet.xid.toString(16).padStart(8, '0')}`
    const arch = f.archLabel ?? f.arch
    const detail: Record<string, unknown> = {
      arch: f.arch,
      arch_label: f.archLabel,
      client_class: f.clientClass,
      vendor_class: f.vendorClass,
      group: f.group,
      port: req.port === 'dhcp' ? 67 : 4011,
    }
    if (decision.action === 'ignore') {
      logger.info({ mac, xid, arch, client_class: f.clientClass, decision: 'ignore', peer: req.peer, reason: decision.reason }, 'PXE client ignored')
      opts.events.record({
        time: nowIso(),
        kind: 'dhcp',
        ...(f.mac === undefined ? {} : { mac: f.mac }),
        ip: req.peer.address,
        step: 'ignore',
        outcome: decision.reason,
        detail,
      })
      return
    }
    logger.info({ mac, xid, arch, client_class: f.clientClass, decision: decision.step, peer: req.peer, boot_file: decision.bootFile, via: decision.via }, `proxyDHCP ${decision.step}`)
    detail.boot_file = decision.bootFile
    detail.via = decision.via
    opts.events.record({
      time: nowIso(),
      kind: 'dhcp',
      ...(f.mac === undefined ? {} : { mac: f.mac }),
      ip: req.peer.address,
      step: decision.step,
      outcome: 'ok',
      detail,
    })
  }
  const flush = (): void => {
    flushQueued = false
    // note() must not throw (the logger and EventSink never do); the loop index survives if one does anyway.
    for (let i = 0; i < noted.length; i++) {
      const n = noted[i] as (typeof noted)[number]
      note(n.req, n.decision)
    }
    noted.length = 0
  }

  const handle = (req: DhcpRequest) => {
    const decision: ProxyDecision = decideProxyReply(req.packet, req.port, ctx)
    // Ordinary DHCP traffic (most of what a busy VLAN sends) leaves here, before any event is built for it.
    if (decision.action === 'ignore' && !decision.pxeClient) {
      if (logger.isLevelEnabled('debug')) {
        const f = decision.facts
        logger.debug(
          { mac: f.mac ?? req.packet.chaddr, xid: `0x${req.packet.xid.toString(16).padStart(8, '0')}`, arch: f.archLabel ?? f.arch, client_class: f.clientClass, decision: 'ignore', peer: req.peer, reason: decision.reason },
          'not a proxyDHCP request; ignored',
        )
      }
      return undefined
    }
    noted.push({ req, decision })
    if (!flushQueued) {
      flushQueued = true
      queueMicrotask(flush)
    }
    return decision.action === 'reply' ? decision.reply : undefined
  }

  const server = await startDhcpServer(
    dhcpServerOptions(opts),
    handle,
    opts.logger ?? silentLogger, // the server adds its own {proto, iface}
  )
  return { pinned: server.pinned, drops: server.drops, ports: server.ports, close: () => server.close() }
}
