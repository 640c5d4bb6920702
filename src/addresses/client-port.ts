/**
 * Listening on port 68 to see the site DHCP server's OFFER/ACK broadcasts (sent to 255.255.255.255:68 when a client
 * sets the broadcast flag, RFC 2131 section 4.1). The socket is opened with SO_REUSEADDR so a DHCP client on this
 * box can still bind 68 (Linux delivers a broadcast to every socket bound to the port with SO_REUSEADDR), and it
 * never sends anything.
 */
import { createSocket, type Socket } from 'node:dgram'
import { decode, type DhcpPacket } from '../dhcp/index.js'
import { bindToInterfaceWith, interfaceIndex } from '../dhcp/pin.js'
import { silentLogger, type Logger } from '../host/log.js'
import { loadNative, type NativeLoad } from '../host/native.js'

/** Options: where to listen and where packets go. */
export interface ClientPortOptions {
  interfaceName: string
  onPacket: (packet: DhcpPacket) => void
  /** Port (68; tests may use another). */
  port?: number
  /** Pin to the interface (SO_BINDTOIFINDEX) so broadcasts from other interfaces are not mistaken for the VLAN's. */
  pin?: boolean
  /** The native addon as the daemon loaded it (pinning); loaded here when not given. */
  native?: NativeLoad
  logger?: Logger
}

/** A bound port 68 listener. */
export interface ClientPortListener {
  readonly port: number
  close(): Promise<void>
}

/** Binds 0.0.0.0:68 with address reuse and feeds every decodable DHCP packet to `onPacket`. */
export async function listenClientPort(opts: ClientPortOptions): Promise<ClientPortListener> {
  const log = (opts.logger ?? silentLogger).child({ proto: 'dhcp-watch', iface: opts.interfaceName })
  const socket: Socket = createSocket({ type: 'udp4', reuseAddr: true })
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject)
    socket.bind({ port: opts.port ?? 68, address: '0.0.0.0' }, () => {
      socket.off('error', reject)
      resolve()
    })
  })
  if (opts.pin !== false) {
    try {
      const native = opts.native ?? loadNative()
      await bindToInterfaceWith(native)(socket, interfaceIndex(opts.interfaceName, native))
    } catch (err) {
      log.debug({ err }, 'port 68 listener not pinned to the interface')
    }
  }
  socket.on('message', (msg, rinfo) => {
    let packet: DhcpPacket
    try {
      packet = decode(msg)
    } catch (err) {
      log.debug({ err, peer: rinfo, packet: msg.toString('base64') }, 'malformed DHCP packet on port 68 ignored')
      return
    }
    try {
      opts.onPacket(packet)
    } catch (err) {
      log.debug({ err }, 'port 68 observer failed')
    }
  })
  socket.on('error', (err) => log.warn({ err }, 'port 68 listener error'))
  return {
    port: socket.address().port,
    close: () =>
      new Promise<void>((resolve) => {
        try {
          socket.close(() => resolve())
        } catch {
          resolve()
        }
      }),
  }
}
