/**
 * The DHCP/PXE UDP server: a port 67 socket (bound to 0.0.0.0 to hear broadcasts, pinned to the PXE interface) and
 * a port 4011 socket bound to the interface address. It decodes, calls a handler, encodes and sends the reply to
 * where RFC 2131 section 4.1 and the PXE spec say. It knows nothing about PXE policy. The sockets read and answer in
 * batches (src/host/batch-udp.ts: recvmmsg/sendmmsg through the addon, node:dgram without it).
 *
 * The receive loop never dies on one packet: decode and handler errors are logged at debug (peer and packet in
 * base64) and the packet is dropped. Only a socket error ends the server.
 */
import { openBatchUdp, type BatchUdpHandlers, type BatchUdpSocket } from '../host/batch-udp.js'
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
  /** Datagrams larger than the batched socket's 2,048-byte slot (no DHCP client sends one); dropped unread. */
  oversized: number
  /** Replies the kernel did not send (EAGAIN/ENOBUFS under a full queue, an unreachable destination...). */
  send: number
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
  const native = opts.native ?? loadNative()
  const drops: DhcpServerDrops = { giaddr: 0, oversized: 0, send: 0 }
  let closing = false
  let resolveClosed: (err: Error | undefined) => void = () => {}
  const closed = new Promise<Error | undefined>((r) => (resolveClosed = r))
  let sockets: BatchUdpSocket[] = []
  const shutdown = async (err?: Error): Promise<void> => {
    if (closing) return
    closing = true
    await Promise.all(sockets.map((s) => s.close()))
    resolveClosed(err)
  }

  const failed = (err: unknown, peer: Peer, port: DhcpPort, msg: Buffer): void => {
    // A codec error means a hostile or odd request; anything else is a bug in the handler: say so louder.
    const level = isDhcpError(err) ? 'debug' : 'warn'
    log[level]({ err, peer, port, packet: msg.toString('base64') }, 'DHCP handler failed; packet dropped')
  }

  let boundDhcpPort = dhcpPort
  const answer = (socket: BatchUdpSocket, port: DhcpPort, msg: Buffer, peer: Peer, packet: DhcpPacket, reply: DhcpPacket | undefined): void => {
    if (reply === undefined || closing) return
    let out: Buffer
    try {
      out = encode(reply)
    } catch (err) {
      failed(err, peer, port, msg)
      return
    }
    const to = replyDestination(packet, port, peer, { dhcp: boundDhcpPort, client: clientPort }, broadcastAddress)
    socket.send(out, to.address, to.port)
  }

  const receive = (socket: BatchUdpSocket, port: DhcpPort, view: Buffer, address: string, peerPort: number): void => {
    const peer = { address, port: peerPort }
    let packet: DhcpPacket
    try {
      packet = decode(view) // copies: the view is the socket's reused buffer
    } catch (err) {
      log.debug({ err, peer, port, packet: view.toString('base64') }, 'dropped malformed DHCP packet')
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
      failed(err, peer, port, view)
      return
    }
    // A handler that decides at once (proxyDHCP) is answered in this batch: its reply leaves with the batch's others
    // in one sendmmsg. One that waits (the authoritative server's lease write, ARP probe) is answered when it settles.
    if (result instanceof Promise) {
      const msg = Buffer.from(view) // the failure log needs the request after the batch's buffer has moved on
      result.then(
        (reply) => answer(socket, port, msg, peer, packet, reply),
        (err: unknown) => failed(err, peer, port, msg),
      )
    } else {
      answer(socket, port, view, peer, packet, result)
    }
  }

  const handlers = (port: DhcpPort, socket: () => BatchUdpSocket): BatchUdpHandlers => ({
    datagram: (msg, address, peerPort) => receive(socket(), port, msg, address, peerPort),
    oversized: (address, peerPort) => {
      drops.oversized++
      log.debug({ peer: { address, port: peerPort }, port }, 'dropped DHCP datagram: larger than any DHCP request')
    },
    sendFailed: (code, address, toPort) => {
      // EAGAIN/ENOBUFS: the interface's queue is full under a storm; the client retransmits, as after a lost reply.
      drops.send++
      log.debug({ code, to: { address, port: toPort }, port }, 'DHCP reply not sent; dropped')
    },
    error: (err) => {
      log.error({ err, port }, 'DHCP socket error; server stopping')
      void shutdown(err)
    },
  })

  let pinned = false
  const otherInterfaces = (): string[] => (opts.listInterfaces ?? (() => ipv4Interfaces(native)))().filter((n) => n !== opts.interfaceName)
  let dhcpSocket: BatchUdpSocket | undefined
  let pxeSocket: BatchUdpSocket | undefined
  try {
    dhcpSocket = await openBatchUdp(native.addon, { address: '0.0.0.0', port: dhcpPort, broadcast: true }, handlers('dhcp', () => dhcpSocket!))
    sockets = [dhcpSocket]
    if (opts.pinning === 'auto') {
      try {
        await (opts.bindToInterface ?? bindToInterfaceWith(native))(dhcpSocket.pinnable, interfaceIndex(opts.interfaceName, native))
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
    pxeSocket = await openBatchUdp(native.addon, { address: opts.address, port: pxePort, broadcast: false }, handlers('pxe', () => pxeSocket!))
    sockets = [dhcpSocket, pxeSocket]
  } catch (err) {
    closing = true
    await Promise.all(sockets.map((s) => s.close()))
    throw err
  }
  boundDhcpPort = dhcpSocket.port
  log.info({ address: opts.address, ports: { dhcp: dhcpPort, pxe: pxePort }, pinned, batched: dhcpSocket.batched }, 'DHCP server listening')

  return {
    pinned,
    drops,
    ports: { dhcp: boundDhcpPort, pxe: pxeSocket.port },
    closed,
    close: () => shutdown(),
  }
}
