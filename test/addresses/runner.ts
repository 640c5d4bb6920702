/**
 * Child process for the leases netns tests and bench/dhcp, run with `ip netns exec`. Prints JSON lines.
 *   server <json>: starts the authoritative DHCP service (and, with `tracking`, address tracking) on an interface,
 *                  its leases in the lease log or (`leaseBook: 'store'`) the Store lease book over SQLite in dataDir;
 *                  says {ready}; on stdin end closes and says {closed, leases, findings}.
 *   clients <json>: crafted DHCP clients with distinct chaddr over one socket bound to 68 (broadcast flag set):
 *                  DISCOVER -> OFFER -> REQUEST -> ACK per MAC, `concurrency` at a time; prints {ack} per ACK as it
 *                  arrives and {done, acks, latencies} at the end.
 *   send <json>: broadcasts crafted packets (base64) to 67 or 68 and exits.
 */
import { createSocket } from 'node:dgram'
import { join } from 'node:path'
import { startAuthoritativeDhcp } from '../../src/boot/authoritative-service.js'
import { openSqliteStore, STORE_FILE } from '../../src/store/index.js'
import { decode, encode, messageType, ipv4Option, DhcpOptionCode } from '../../src/dhcp/index.js'
import { arpingProbe } from '../../src/addresses/arp-probe.js'
import { startAddressTracking } from '../../src/addresses/tracking-service.js'
import { DhcpMessageType as T, clientPacket, macOf } from './packets.js'

const say = (o: unknown): void => void process.stdout.write(JSON.stringify(o) + '\n')
const [role, json] = process.argv.slice(2)
const args = JSON.parse(json ?? '{}') as Record<string, any>

if (role === 'server') {
  // leaseBook 'store': the Store-backed lease book over SQLite in dataDir (what a shared etcd store runs).
  const store = args.leaseBook === 'store' ? await openSqliteStore({ file: join(args.dataDir, STORE_FILE) }) : undefined
  const tracking = args.tracking
    ? await startAddressTracking({ interfaceName: args.iface, dataDir: args.dataDir, strayAfterMs: 60_000, allowedServers: [], ownServers: [args.address], arp: false, listenClientPort: false })
    : undefined
  const svc = await startAuthoritativeDhcp({
    interfaceName: args.iface,
    address: args.address,
    // Pinned: SO_BINDTOIFINDEX also makes the 255.255.255.255 replies leave through the interface (no route needed).
    pinning: 'auto',
    dataDir: args.dataDir,
    ...(store === undefined ? {} : { leaseBook: { book: 'store' as const, store } }),
    range: args.range,
    reservations: args.reservations ?? [],
    leaseSeconds: 3600,
    netmask: '255.255.255.0',
    dns: [],
    declineHoldSeconds: 600,
    ...(args.probeMs > 0 ? { probe: arpingProbe({ interfaceName: args.iface, timeoutMs: args.probeMs }) } : {}),
    httpBaseUrl: `http://${args.address}:8080`,
    lookup: () => ({ pxe: true, chainloadIpxe: false }),
    chainloadedRecently: () => false,
    events: { record() {} },
    ...(tracking === undefined ? {} : { onPacket: tracking.observer, onReply: (r) => tracking.observeOwnReply(r) }),
  })
  say({ ready: true, leases: svc.leases(), recovered: svc.recovered })
  process.stdin.on('end', () => {
    const leases = svc.leases()
    void svc.close().then(async () => {
      await tracking?.close()
      await store?.close()
      say({ closed: true, leases })
      process.exit(0)
    })
  })
  process.stdin.resume()
} else if (role === 'proxy') {
  const { startProxyDhcp } = await import('../../src/boot/dhcp-service.js')
  const tracking = await startAddressTracking({
    interfaceName: args.iface,
    dataDir: args.dataDir,
    strayAfterMs: args.strayAfterMs,
    conflictWindowMs: 120_000,
    allowedServers: args.allowedServers ?? [],
    arp: true,
    listenClientPort: true,
    evaluateEveryMs: 500,
  })
  await tracking.arpReady
  const svc = await startProxyDhcp({
    interfaceName: args.iface,
    address: args.address,
    pinning: 'auto',
    httpBaseUrl: `http://${args.address}:8080`,
    lookup: () => ({ pxe: true, chainloadIpxe: false }),
    chainloadedRecently: () => false,
    events: { record() {} },
    onPacket: tracking.observer,
  })
  say({ ready: true })
  const { createInterface } = await import('node:readline')
  createInterface({ input: process.stdin }).on('line', (l) => {
    if (l === 'dump') say({ findings: tracking.tracker.evaluate(), leases: tracking.leases(), machines: tracking.machines() })
  })
  process.stdin.on('end', () => void Promise.all([svc.close(), tracking.close()]).then(() => process.exit(0)))
} else if (role === 'clients') {
  const count: number = args.count
  const base: number = args.base ?? 1
  const concurrency: number = args.concurrency ?? 50
  const timeoutMs: number = args.timeoutMs ?? 4000
  const socket = createSocket({ type: 'udp4', reuseAddr: true })
  const pending = new Map<number, { mac: string; resolve: (p: ReturnType<typeof decode>) => void; want: number }>()
  socket.on('message', (msg) => {
    let p
    try {
      p = decode(msg)
    } catch {
      return
    }
    const w = pending.get(p.xid)
    if (w === undefined || p.op !== 2) return
    const type = messageType(p)
    if (type === w.want || type === T.NAK) {
      pending.delete(p.xid)
      w.resolve(p)
    }
  })
  await new Promise<void>((r) => socket.bind(args.port ?? 68, '0.0.0.0', () => r()))
  socket.setBroadcast(true)
  // `retries`: retransmit as a real client does (RFC 2131 section 4.1: the same xid, the wait doubling from 4 s), so a
  // test on a loaded box measures the server, not one lost race; 0 (the default) asks once.
  const retries: number = args.retries ?? 0
  const ask = (pkt: ReturnType<typeof clientPacket>, want: number) =>
    new Promise<ReturnType<typeof decode> | undefined>((resolve) => {
      const wire = encode(pkt)
      let attempt = 0
      const send = (): void => {
        socket.send(wire, args.serverPort ?? 67, args.to ?? '255.255.255.255')
        timer = setTimeout(() => {
          if (attempt++ < retries) return send()
          pending.delete(pkt.xid)
          resolve(undefined)
        }, timeoutMs * 2 ** attempt)
      }
      let timer: NodeJS.Timeout | undefined
      pending.set(pkt.xid, { mac: pkt.chaddr, want, resolve: (p) => (clearTimeout(timer), resolve(p)) })
      send()
    })
  const acks: { mac: string; ip: string }[] = []
  const latencies: number[] = []
  let next = 0
  const one = async (i: number): Promise<void> => {
    const mac = macOf(base + i, args.prefix ?? '02:00:00')
    const xid = ((base + i) * 7919 + (args.xidSalt ?? 0)) >>> 0
    const t0 = performance.now()
    const offer = await ask(clientPacket({ type: T.DISCOVER, mac, xid, ...(args.pxe ? { vendorClass: 'PXEClient:Arch:00007:UNDI:003000' } : {}) }), T.OFFER)
    if (offer === undefined || messageType(offer) !== T.OFFER) return
    latencies.push(performance.now() - t0)
    if (args.discoverOnly) {
      acks.push({ mac, ip: offer.yiaddr })
      return
    }
    const ack = await ask(clientPacket({ type: T.REQUEST, mac, xid: xid + 1, requested: offer.yiaddr, server: ipv4Option(offer, DhcpOptionCode.SERVER_ID) ?? '' }), T.ACK)
    if (ack !== undefined && messageType(ack) === T.ACK) {
      acks.push({ mac, ip: ack.yiaddr })
      if (args.streamAcks) say({ ack: { mac, ip: ack.yiaddr } })
    }
  }
  const t0 = performance.now()
  await Promise.all(
    Array.from({ length: Math.min(concurrency, count) }, async () => {
      while (next < count) await one(next++)
    }),
  )
  say({ done: true, acks, latencies, ms: performance.now() - t0 })
  socket.close()
} else if (role === 'send') {
  const socket = createSocket({ type: 'udp4', reuseAddr: true })
  socket.bind(args.srcPort ?? 68, '0.0.0.0', () => {
    socket.setBroadcast(true)
    let left = (args.packets as string[]).length
    for (const b of args.packets as string[]) {
      socket.send(Buffer.from(b, 'base64'), args.port ?? 67, '255.255.255.255', () => {
        if (--left === 0) {
          socket.close()
          say({ sent: true })
        }
      })
    }
  })
} else {
  say({ error: `unknown role ${role}` })
}
