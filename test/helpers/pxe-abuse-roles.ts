/**
 * The two network roles of a test that attacks a real pxebox from other namespaces, run as a child with
 * `ip netns exec <ns> node <loader> pxe-abuse-roles.ts <role> '<json args>'` (sockets live in the namespace of the
 * process that opens them, so each role is its own process). Each prints one JSON line when it is done.
 *
 *  - `sse-flood` (SseFloodArgs -> SseFloodResult): opens `/v1/events` streams that never read a byte (the socket is
 *    paused, so the server's writes pile up on its side, as with a stalled browser tab or an attacker), then DISCOVERs
 *    from ever-new MACs (OVMF's packet) at a steady rate for `durationMs`: each one creates a machine record in
 *    pxebox, which the event fan-out sends to every stream. It prints `{"streamsOpen":n}` once every stream has its
 *    status line (or was closed), then the result at the end.
 *  - `pxe-client` (PxeClientArgs -> PxeClientResult): one UEFI machine (OVMF's DISCOVER from the fixture capture:
 *    option 60 PXEClient:Arch:00007, option 93 = 7, option 97) that sends a DISCOVER every `intervalMs` for
 *    `durationMs` and times each one's OFFER; a DISCOVER with no OFFER within `giveUpMs` is counted as unanswered.
 */
import { createSocket, type Socket } from 'node:dgram'
import { readFileSync } from 'node:fs'
import net from 'node:net'
import { fileURLToPath } from 'node:url'
import { DhcpMessageType, DhcpOptionCode, decode, encode, ipv4Option, messageType, type DhcpPacket } from '../../src/dhcp/index.js'
import { parsePcap } from './pcap.js'

const FIXTURE = fileURLToPath(new URL('../fixtures/dhcp/ovmf-uefi-and-ipxe-bios-with-dnsmasq-proxy.pcap', import.meta.url))

/** What `sse-flood` is given. */
export interface SseFloodArgs {
  /** pxebox's address (also the OFFERs' server id) and HTTP port. */
  server: string
  httpPort: number
  /** `/v1/events` streams to open that never read. */
  streams: number
  /** DISCOVERs per second from new MACs, and for how long. */
  rate: number
  durationMs: number
  /** Two hex digits in every MAC this attacker makes. */
  macByte: string
}

/**
 * What `sse-flood` did. `statuses`: each stream's HTTP status. Whether the server closed a stream cannot be seen here:
 * a paused socket never reads the FIN queued behind the unread events.
 */
export interface SseFloodResult {
  statuses: Record<string, number>
  connectErrors: number
  discoversSent: number
  offersReceived: number
}

/** What `pxe-client` is given. */
export interface PxeClientArgs {
  server: string
  mac: string
  durationMs: number
  giveUpMs: number
  /** A new DISCOVER (new xid) every intervalMs, answered or not. */
  intervalMs: number
}

/** Each DISCOVER's OFFER latency in ms, in order; null where none came within giveUpMs. */
export interface PxeClientResult {
  latencies: (number | null)[]
}

/** OVMF's DISCOVER (frame 1 of the fixture capture), decoded, layout dropped so edits encode. */
function ovmfDiscover(): DhcpPacket {
  const f = parsePcap(readFileSync(FIXTURE)).find((x) => x.frame === 1)
  if (f === undefined) throw new Error('fixture has no frame 1')
  const p = decode(f.payload)
  if (messageType(p) !== DhcpMessageType.DISCOVER) throw new Error('fixture frame 1 is not a DISCOVER')
  delete p.layout
  return p
}

/** The DISCOVER for one machine: its chaddr and xid, its MAC in the last bytes of the option 97 UUID. */
function discoverFor(t: DhcpPacket, mac: string, xid: number): Buffer {
  const macBytes = Buffer.from(mac.replace(/:/g, ''), 'hex')
  const options = t.options.map((o) => {
    if (o.code !== DhcpOptionCode.CLIENT_UUID || o.data.length !== 17) return o
    const data = Buffer.from(o.data)
    macBytes.copy(data, 11)
    return { code: o.code, data }
  })
  return encode({ ...t, chaddr: mac, xid, options })
}

/** A UDP socket on 0.0.0.0:68 that may broadcast (the client side of DHCP). */
async function dhcpClientSocket(): Promise<Socket> {
  const socket = createSocket({ type: 'udp4', reuseAddr: true })
  socket.on('error', (err) => process.stderr.write(`dhcp socket: ${err.message}\n`))
  await new Promise<void>((resolve) => socket.bind(68, '0.0.0.0', () => resolve()))
  socket.setBroadcast(true)
  socket.setRecvBufferSize(4 << 20)
  return socket
}

/** OFFERs from `server` on `socket`, by xid. */
function onOffer(socket: Socket, server: string, fn: (xid: number) => void): void {
  socket.on('message', (msg) => {
    let p: DhcpPacket
    try {
      p = decode(msg)
    } catch {
      return
    }
    if (p.op === 2 && messageType(p) === DhcpMessageType.OFFER && ipv4Option(p, DhcpOptionCode.SERVER_ID) === server) fn(p.xid)
  })
}

/** The flood's DISCOVER n has xid FLOOD_XID + n. */
const FLOOD_XID = 0x0e000000

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

async function sseFlood(a: SseFloodArgs): Promise<SseFloodResult> {
  const r: SseFloodResult = { statuses: {}, connectErrors: 0, discoversSent: 0, offersReceived: 0 }
  const sockets: net.Socket[] = []
  let settled = 0
  for (let i = 0; i < a.streams; i++) {
    const s = net.connect({ host: a.server, port: a.httpPort })
    sockets.push(s)
    let head = true
    let status = ''
    const settle = (): void => {
      if (head) settled++
      head = false
    }
    s.on('connect', () => {
      s.write(`GET /v1/events HTTP/1.1\r\nHost: ${a.server}:${a.httpPort}\r\nAccept: text/event-stream\r\n\r\n`)
    })
    // The status line is read, then the socket is paused for good: from here on nothing is read.
    s.once('data', (d: Buffer) => {
      status = /^HTTP\/1\.[01] (\d{3})/.exec(d.toString('latin1', 0, 16))?.[1] ?? 'garbled'
      r.statuses[status] = (r.statuses[status] ?? 0) + 1
      settle()
      s.pause()
    })
    s.on('error', () => {
      if (s.bytesWritten === 0) r.connectErrors++
    })
    s.on('close', settle)
    // Opened a few ms apart: the attack is the streams, not a SYN burst.
    await sleep(5)
  }
  for (let i = 0; i < 200 && settled < a.streams; i++) await sleep(50)
  process.stdout.write(`${JSON.stringify({ streamsOpen: r.statuses['200'] ?? 0 })}\n`)

  const socket = await dhcpClientSocket()
  // The valid client's OFFERs are broadcast on the same bridge: count only answers to this attacker's own xids.
  onOffer(socket, a.server, (xid) => {
    if (xid > FLOOD_XID && xid <= FLOOD_XID + r.discoversSent) r.offersReceived++
  })
  const template = ovmfDiscover()
  const start = performance.now()
  while (performance.now() - start < a.durationMs) {
    // Catch up on the DISCOVERs due by now, at most a tenth of a second's worth at once (no burst after a stall).
    const due = Math.floor(((performance.now() - start) * a.rate) / 1000)
    for (let n = 0; r.discoversSent < due && n < Math.ceil(a.rate / 10); n++) {
      const i = ++r.discoversSent
      const mac = `02:${a.macByte}:${[i >>> 24, (i >> 16) & 255, (i >> 8) & 255, i & 255].map((b) => b.toString(16).padStart(2, '0')).join(':')}`
      socket.send(discoverFor(template, mac, (FLOOD_XID + i) >>> 0), 67, '255.255.255.255')
    }
    await sleep(10)
  }
  socket.close()
  for (const s of sockets) s.destroy()
  return r
}

async function pxeClient(a: PxeClientArgs): Promise<PxeClientResult> {
  const socket = await dhcpClientSocket()
  const template = ovmfDiscover()
  const waiting = new Map<number, () => void>()
  onOffer(socket, a.server, (xid) => waiting.get(xid)?.())
  const answers: Promise<number | null>[] = []
  const start = performance.now()
  for (let k = 0, xid = 0x7a000001; k * a.intervalMs < a.durationMs; k++, xid += 2) {
    // On a fixed schedule, not after the previous answer: a client that waits for each answer only ever asks just
    // after the server's loop came free, and never sees the DISCOVERs the kernel dropped while it was busy.
    await sleep(Math.max(0, start + k * a.intervalMs - performance.now()))
    const t0 = performance.now()
    const id = xid
    answers.push(
      new Promise((resolve) => {
        const timer = setTimeout(() => {
          waiting.delete(id)
          resolve(null)
        }, a.giveUpMs)
        waiting.set(id, () => {
          clearTimeout(timer)
          waiting.delete(id)
          resolve(Math.round((performance.now() - t0) * 10) / 10)
        })
        socket.send(discoverFor(template, a.mac, id), 67, '255.255.255.255')
      }),
    )
  }
  const latencies = await Promise.all(answers)
  socket.close()
  return { latencies }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [role, json] = process.argv.slice(2)
  const args = JSON.parse(json ?? '{}') as unknown
  const result = role === 'sse-flood' ? await sseFlood(args as SseFloodArgs) : role === 'pxe-client' ? await pxeClient(args as PxeClientArgs) : undefined
  if (result === undefined) throw new Error(`unknown role ${role}`)
  process.stdout.write(`${JSON.stringify(result)}\n`)
}
