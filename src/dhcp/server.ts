/**
 * The DHCP/PXE UDP server: a port 67 socket (bound to 0.0.0.0 to hear broadcasts, pinned to the PXE interface) and
 * a port 4011 socket bound to the interface address. It decodes, calls a handler, encodes and sends the reply to
 * where RFC 2131 section 4.1 and the PXE spec say. It knows nothing about PXE policy.
 *
 * The receive loop never dies on one packet: decode and handler errors are logged at debug (peer and packet in
 * base64) and the packet is dropped. Only a socket error ends the server.
 */
import { bindSocket, closeSocket } from '../host/udp-socket.js'
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram'
import type { Logger } from '../host/log.js'
import { silentLogger } from '../host/log.js'
import { isDhcpError } from './errors.js'
import { decode, encode, type DhcpPacket } from './packet.js'
import { bindToInterfaceWith, interfaceIndex, ipv4Interfaces, type BindToInterface } from './pin.js'
import { loadNative, type NativeLoad } from '../host/native.js'

/** Which socket a request came in on: 'dhcp' (67) or 'pxe' (4011). */
export type DhcpPort = 'dhcp' | 'pxe'

/** A UDP peer. */
export interface Peer {
  address: string
  port: number
}

/** One decoded request handed to the handler. */
export interface DhcpRequest {
  packet: DhcpPacket
  port: DhcpPort
  peer: Peer
}

/** Returns the reply to send, or undefined for none. May be async. */
export type DhcpHandler = (request: DhcpRequest) => DhcpPacket | undefined | Promise<DhcpPacket | undefined>

/** Server options; everything but the interface and address has a production default. */
export interface DhcpServerOptions {
  /** The PXE interface, e.g. `eth1`; the port 67 socket is pinned to it. */
  interfaceName: string
  /** Our IPv4 address on that interface; the 4011 socket binds to it. */
  address: string
  /** 'auto': pin, and refuse to start on a multi-homed box when pinning fails. 'off': never pin. */
  pinning: 'auto' | 'off'
  /** Ports, so tests can run unprivileged on high ports: dhcp 67, pxe 4011, client 68. */
  ports?: { dhcp?: number; pxe?: number; client?: number }
  /** Where non-relayed replies on 67 go; 255.255.255.255 unless a test needs otherwise. */
  broadcastAddress?: string
  /** How to pin; tests inject a failing one to show the multi-homed refusal. */
  bindToInterface?: BindToInterface
  /** Non-loopback IPv4 interfaces of this box (default: from os.networkInterfaces()). */
  listInterfaces?: () => string[]
  /** The native addon as the daemon loaded it (pinning, interface lookup); loaded here when not given. */
  native?: NativeLoad
  /**
   * Sees every decoded packet on either socket before the handler (an address tracker watching the VLAN's DHCP
   * traffic); it must not throw or block, and a failing one is logged at debug and ignored.
   */
  onPacket?: PacketObserver
}

/** Called with every decoded packet a server receives, whether or not it is answered. */
export type PacketObserver = (packet: DhcpPacket, meta: { port: DhcpPort; peer: Peer }) => void

/** Packets the server dropped before the handler, by reason. */
export interface DhcpServerDrops {
  /** On 67, a giaddr that no relay can have (broadcast, multicast, loopback, 0/8, class E, our own address). */
  giaddr: number
}

/** A running server. */
export interface DhcpServer {
  /** Counted drops (metrics, tests). */
  readonly drops: Readonly<DhcpServerDrops>
  /** True when the port 67 socket is pinned to the interface. */
  readonly pinned: boolean
  /** The bound ports (useful when 0 was asked). */
  readonly ports: { dhcp: number; pxe: number }
  /** Resolves when the server has stopped: undefined after close(), the error after a socket error. */
  readonly closed: Promise<Error | undefined>
  close(): Promise<void>
}

/** Thrown when the server refuses to start (not for bind errors, which are the OS's own). */
export class DhcpServerStartError extends Error {
  readonly code = 'ERR_DHCP_SERVER_START'
  override name = 'DhcpServerStartError'
}

/**
 * Where a reply goes (RFC 2131 section 4.1, PXE spec 2.1 section 2.2.2): on 67, to the relay at giaddr:67 when
 * giaddr is set (the receive loop has dropped giaddrs no relay can have, see usableRelayAddress), else broadcast to
 * port 68 (the client has no address yet; iPXE only accepts offers from port 67).
 * On 4011, unicast back to the request's source (EDK2 sends from 4011, iPXE from 68), or to ciaddr when the source
 * is unusable.
 */
export function replyDestination(
  request: Pick<DhcpPacket, 'giaddr' | 'ciaddr'>,
  port: DhcpPort,
  peer: Peer,
  ports: { dhcp: number; client: number },
  broadcastAddress = '255.255.255.255',
): Peer {
  if (port === 'pxe') {
    if (peer.address !== '0.0.0.0') return peer
    return { address: request.ciaddr, port: peer.port }
  }
  if (request.giaddr !== '0.0.0.0') return { address: request.giaddr, port: ports.dhcp }
  return { address: broadcastAddress, port: ports.client }
}

/**
 * True when `giaddr` can be a relay agent's address (RFC 1542 4.1.1: the relay puts the address of the interface the
 * request came in on). A spoofed giaddr of 255.255.255.255, a multicast group, loopback or our own address would make
 * us send replies to a broadcast domain or to ourselves (a reflection loop); such requests are dropped.
 */
export function usableRelayAddress(giaddr: string, ourAddress: string): boolean {
  if (giaddr === ourAddress) return false
  const [a = 0] = giaddr.split('.').map(Number)
  return a !== 0 && a !== 127 && a < 224 // 0/8 "this network", 127/8 loopback, 224/4 multicast, 240/4 class E + broadcast
}

/** Binds both sockets, pins the 67 one, and serves until close() or a socket error. */
export async function startDhcpServer(
  opts: DhcpServerOptions,
  handler: DhcpHandler,
  logger: Logger = silentLogger,
): Promise<DhcpServer> {
  const dhcpPort = opts.ports?.dhcp ?? 67
  const pxePort = opts.ports?.pxe ?? 4011
  const clientPort = opts.ports?.client ?? 68
  const broadcastAddress = opts.broadcastAddress ?? '255.255.255.255'
  const log = logger.child({ proto: 'dhcp', iface: opts.interfaceName })

  // Replies go to IP literals (the client, its relay, or broadcast): a lookup that answers at once spares every send
  // dgram's default dns.lookup and its deferral to the next tick.
  const literal = (host: string, _opts: unknown, cb: (err: null, address: string, family: number) => void) => cb(null, host, 4)
  const dhcpSocket = createSocket({ type: 'udp4', lookup: literal })
  const pxeSocket = createSocket({ type: 'udp4', lookup: literal })
  let pinned = false
  const native = opts.native ?? loadNative()
  const otherInterfaces = (): string[] => (opts.listInterfaces ?? (() => ipv4Interfaces(native)))().filter((n) => n !== opts.interfaceName)
  try {
    await bindSocket(dhcpSocket, dhcpPort)
    dhcpSocket.setBroadcast(true)
    if (opts.pinning === 'auto') {
      try {
        await (opts.bindToInterface ?? bindToInterfaceWith(native))(dhcpSocket, interfaceIndex(opts.interfaceName, native))
        pinned = true
      } catch (err) {
        const others = otherInterfaces()
        if (others.length > 0) {
          throw new DhcpServerStartError(
            `cannot pin the DHCP socket to ${opts.interfaceName} (SO_BINDTOIFINDEX: ${(err as Error).message}), and this ` +
              `box has other IPv4 interfaces (${others.join(', ')}): pxebox would answer PXE clients on all of them. ` +
              'Run pxebox in a network namespace holding only the PXE interface, or set dhcp.interface_pinning: off ' +
              'to accept answering on every interface.',
          )
        }
        log.warn({ err }, 'cannot pin the DHCP socket to the interface; single-homed box, serving unpinned')
      }
    } else if (otherInterfaces().length > 0) {
      log.warn('interface_pinning is off on a multi-homed box: PXE DISCOVERs from every interface will be answered')
    }
    await bindSocket(pxeSocket, pxePort, opts.address)
  } catch (err) {
    await Promise.all([closeSocket(dhcpSocket), closeSocket(pxeSocket)])
    throw err
  }

  const boundDhcpPort = dhcpSocket.address().port
  const drops: DhcpServerDrops = { giaddr: 0 }
  let closing = false
  let resolveClosed: (err: Error | undefined) => void = () => {}
  const closed = new Promise<Error | undefined>((r) => (resolveClosed = r))
  const shutdown = async (err?: Error): Promise<void> => {
    if (closing) return
    closing = true
    await Promise.all([closeSocket(dhcpSocket), closeSocket(pxeSocket)])
    resolveClosed(err)
  }

  const failed = (err: unknown, peer: Peer, port: DhcpPort, msg: Buffer): void => {
    // A codec error means a hostile or odd request; anything else is a bug in the handler: say so louder.
    const level = isDhcpError(err) ? 'debug' : 'warn'
    log[level]({ err, peer, port, packet: msg.toString('base64') }, 'DHCP handler failed; packet dropped')
  }

  const answer = (socket: Socket, port: DhcpPort, msg: Buffer, peer: Peer, packet: DhcpPacket, reply: DhcpPacket | undefined): void => {
    if (reply === undefined) return
    let out: Buffer
    try {
      out = encode(reply)
    } catch (err) {
      failed(err, peer, port, msg)
      return
    }
    if (closing) return
    const to = replyDestination(packet, port, peer, { dhcp: boundDhcpPort, client: clientPort }, broadcastAddress)
    try {
      socket.send(out, to.port, to.address, (err) => {
        if (err) log.warn({ err, to, xid: packet.xid }, 'sending DHCP reply failed')
      })
    } catch (err) {
      // dgram throws synchronously for some destinations (port 0 from a hostile packet's source, bad addresses).
      log.debug({ err, to, peer, packet: msg.toString('base64') }, 'DHCP reply not sendable; dropped')
    }
  }

  const receive = (socket: Socket, port: DhcpPort, msg: Buffer, rinfo: RemoteInfo): void => {
    const peer = { address: rinfo.address, port: rinfo.port }
    let packet: DhcpPacket
    try {
      packet = decode(msg)
    } catch (err) {
      log.debug({ err, peer, port, packet: msg.toString('base64') }, 'dropped malformed DHCP packet')
      return
    }
    if (port === 'dhcp' && packet.giaddr !== '0.0.0.0' && !usableRelayAddress(packet.giaddr, opts.address)) {
      drops.giaddr++
      log.debug({ peer, giaddr: packet.giaddr, xid: packet.xid }, 'dropped DHCP packet: giaddr cannot be a relay agent')
      return
    }
    if (opts.onPacket !== undefined) {
      try {
        opts.onPacket(packet, { port, peer })
      } catch (err) {
        log.debug({ err, peer, port }, 'DHCP packet observer failed')
      }
    }
    let result: ReturnType<DhcpHandler>
    try {
      result = handler({ packet, port, peer })
    } catch (err) {
      failed(err, peer, port, msg)
      return
    }
    // A handler that decides at once (proxyDHCP) is answered in this turn: no promise and no microtask hop before
    // the reply leaves. One that waits (the authoritative server's lease write, ARP probe) is answered when it settles.
    if (result instanceof Promise) {
      result.then(
        (reply) => answer(socket, port, msg, peer, packet, reply),
        (err: unknown) => failed(err, peer, port, msg),
      )
    } else {
      answer(socket, port, msg, peer, packet, result)
    }
  }

  for (const [socket, port] of [
    [dhcpSocket, 'dhcp'],
    [pxeSocket, 'pxe'],
  ] as const) {
    socket.on('message', (msg, rinfo) => receive(socket, port, msg, rinfo))
    socket.on('error', (err) => {
      log.error({ err, port }, 'DHCP socket error; server stopping')
      void shutdown(err)
    })
  }
  log.info({ address: opts.address, ports: { dhcp: dhcpPort, pxe: pxePort }, pinned }, 'DHCP server listening')

  return {
    pinned,
    drops,
    ports: { dhcp: boundDhcpPort, pxe: pxeSocket.address().port },
    closed,
    close: () => shutdown(),
  }
}
