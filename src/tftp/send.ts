/**
 * The one way TFTP sends a datagram through node:dgram to an address it learned from the wire: it never throws.
 *
 * A UDP source port is attacker-chosen. node:dgram throws ERR_SOCKET_BAD_PORT synchronously for port 0, and the old
 * listener answered a bad request from port 0 with an ERROR whose send threw, then sent again from its catch block:
 * one spoofed 30-byte datagram ended the daemon (issue 13). Here an unsendable peer is refused before the send and
 * anything dgram still throws (a closed socket during shutdown) is caught; the caller counts the drop.
 */
import type { Socket } from 'node:dgram'

/** A UDP endpoint as the wire reported it. */
export interface UdpPeer {
  address: string
  port: number
}

/**
 * True when a datagram can be addressed to `peer`: port 1-65535 and an address. A source port of 0 means the sender
 * takes no replies (RFC 768), and no socket can send to it.
 */
export function sendablePeer(peer: UdpPeer): boolean {
  return Number.isInteger(peer.port) && peer.port > 0 && peer.port <= 65535 && typeof peer.address === 'string' && peer.address !== ''
}

/**
 * Sends the first `length` bytes of `buf` (all of it when omitted) to `to`. Returns false, without throwing, when the
 * peer is unsendable or dgram refused the send synchronously. Asynchronous send errors go to `onError` when given;
 * without it they reach the socket's 'error' event, as dgram does for callback-less sends.
 */
export function guardedSend(socket: Socket, buf: Buffer, to: UdpPeer, length = buf.length, onError?: (err: Error) => void): boolean {
  if (!sendablePeer(to)) return false
  const callback = onError === undefined ? undefined : (err: Error | null) => void (err && onError(err))
  try {
    if (length === buf.length) socket.send(buf, to.port, to.address, callback)
    else socket.send(buf, 0, length, to.port, to.address, callback)
    return true
  } catch {
    return false
  }
}
