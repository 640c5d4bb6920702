/**
 * Authoritative DHCP over loopback for tests: the service on high ports with its "broadcast" replies sent to the test
 * client's port, and a crafted client that matches replies by xid. Used by authoritative-hardening.test.ts and
 * authoritative-store.test.ts.
 */
import { createSocket, type Socket } from 'node:dgram'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startAuthoritativeDhcp, type AuthoritativeDhcpOptions, type AuthoritativeDhcpService } from '../../src/boot/authoritative-service.js'
import { decode, DhcpOptionCode, ipv4Option, messageType, type DhcpPacket } from '../../src/dhcp/index.js'
import { memoryEvents } from '../../src/machines/events.js'
import { DhcpMessageType as T, bytes, clientPacket } from '../addresses/packets.js'

/** The server's address (option 54). */
export const SERVER = '127.0.0.1'

/** A crafted DHCP client on a loopback socket. */
export interface Client {
  socket: Socket
  port: number
  /** Sends `p` to the server and waits for the reply with its xid (undefined after `ms`). */
  ask(p: DhcpPacket, ms?: number): Promise<DhcpPacket | undefined>
  send(p: DhcpPacket): void
}

/** A client sending to the port `serverPort()` returns (known only once the server is up). */
export async function client(serverPort: () => number): Promise<Client> {
  const socket = createSocket('udp4')
  const waiting = new Map<number, (p: DhcpPacket) => void>()
  socket.on('message', (msg) => {
    const p = decode(msg)
    waiting.get(p.xid)?.(p)
  })
  await new Promise<void>((r) => socket.bind(0, '127.0.0.1', () => r()))
  const send = (p: DhcpPacket): void => socket.send(bytes(p), serverPort(), SERVER)
  return {
    socket,
    port: socket.address().port,
    send,
    ask: (p, ms = 1500) =>
      new Promise((resolve) => {
        const timer = setTimeout(() => {
          waiting.delete(p.xid)
          resolve(undefined)
        }, ms)
        waiting.set(p.xid, (r) => {
          clearTimeout(timer)
          waiting.delete(p.xid)
          resolve(r)
        })
        send(p)
      }),
  }
}

/** The authoritative service on loopback, replying to `clientPort`; `extra` overrides any option. */
export async function server(dataDir: string, clientPort: number, range = { start: '10.213.50.10', end: '10.213.50.19' }, extra: Partial<AuthoritativeDhcpOptions> = {}): Promise<AuthoritativeDhcpService> {
  return startAuthoritativeDhcp({
    interfaceName: 'lo',
    address: SERVER,
    pinning: 'off',
    listInterfaces: () => ['lo'],
    ports: { dhcp: 0, pxe: 0, client: clientPort },
    broadcastAddress: '127.0.0.1',
    dataDir,
    range,
    reservations: [],
    leaseSeconds: 3600,
    netmask: '255.255.255.0',
    dns: [],
    declineHoldSeconds: 600,
    httpBaseUrl: 'http://127.0.0.1:8080',
    lookup: () => ({ pxe: true, chainloadIpxe: false }),
    chainloadedRecently: () => false,
    events: memoryEvents(),
    ...extra,
  })
}

let xid = 1000
/** A fresh xid. */
export const next = (): number => ++xid
/** A temporary folder removed when the test ends. */
export const tmp = (t: { teardown(fn: () => void): void }): string => {
  const d = mkdtempSync(join(tmpdir(), 'pxebox-hard-'))
  t.teardown(() => rmSync(d, { recursive: true, force: true }))
  return d
}

/** DISCOVER, then REQUEST what was offered; the ACK's address, or undefined. */
export async function lease(c: Client, mac: string): Promise<string | undefined> {
  const offer = await c.ask(clientPacket({ type: T.DISCOVER, mac, xid: next() }))
  if (offer === undefined) return undefined
  const ack = await c.ask(clientPacket({ type: T.REQUEST, mac, xid: next(), requested: offer.yiaddr, server: ipv4Option(offer, DhcpOptionCode.SERVER_ID) ?? '' }))
  return ack !== undefined && messageType(ack) === T.ACK ? ack.yiaddr : undefined
}
