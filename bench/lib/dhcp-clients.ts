/**
 * bench/dhcp's client process, run inside the client network namespace with `ip netns exec`: N simulated PXE clients
 * over one UDP socket bound to 0.0.0.0:68, each a copy of OVMF's real DISCOVER (fixture frame 1) with its own chaddr,
 * xid and option 97 UUID, broadcast to 255.255.255.255:67. `concurrency` clients are in flight at a time (closed
 * loop: a client's slot goes to the next one when it is answered or gives up).
 *
 * exchange `offer`: DISCOVER -> OFFER. exchange `dora`: then REQUEST (OVMF's frame 4, options 50/54 from the offer)
 * -> ACK; a NAK restarts the client at DISCOVER (counted), and so does a REQUEST unanswered for `ackTimeoutMs` (a
 * server that died after its OFFER). A client retransmits after `retryMs` (the firmware's 4 s, RFC 2131 section 4.1)
 * and gives up after `timeoutMs`. Prints one JSON line: counts, wall time and latency percentiles (and, asked for,
 * every ACK: the fleet tests check them against the store).
 *
 * Usage: node dist/bench/lib/dhcp-clients.js '<json DhcpClientsArgs>'
 */
import { createSocket } from 'node:dgram'
import { fileURLToPath } from 'node:url'
import { DhcpMessageType, DhcpOptionCode, decode, encode, ipv4Option, messageType, parseIPv4, type DhcpPacket } from '../../src/dhcp/index.js'
import { forClient, ovmfTemplates } from './ovmf-packets.js'

/** What the orchestrator passes (as one JSON argument). */
export interface DhcpClientsArgs {
  count: number
  concurrency: number
  exchange: 'offer' | 'dora'
  /** First client number; MACs are 02:<prefix>:00:<n as 3 bytes>, so runs with other bases or prefixes never collide. */
  base?: number
  macPrefix?: string
  /** Default scattered (see macOf). */
  macs?: 'scattered' | 'sequential'
  retryMs?: number
  timeoutMs?: number
  /**
   * A REQUEST unanswered this long sends the client back to DISCOVER (firmware gives up on a silent server after its
   * REQUEST retries and starts over; RFC 2131 section 4.4.1), so a server killed mid-exchange costs a restart, not
   * the client. Default: wait for the ACK until `timeoutMs`.
   */
  ackTimeoutMs?: number
  /** Report every ACK (`leases` in the result): which MAC was given which address, by which server. */
  leases?: boolean
}

/** One ACK as the client saw it. */
export interface ClientLease {
  mac: string
  ip: string
  /** Option 54 of the ACK. */
  server: string
}

/** The one JSON line the process prints. */
export interface DhcpClientsResult {
  clients: number
  /** Clients that got an OFFER (and, for dora, an ACK, possibly after NAKs and new DISCOVERs). */
  answered: number
  offers: number
  acks: number
  naks: number
  lost: number
  retransmits: number
  /** From the first DISCOVER sent to the last answer received. */
  wallMs: number
  /** DISCOVER (first send) -> OFFER, ms. */
  offer: Percentiles
  /** The ACKed REQUEST -> ACK, ms (dora only). */
  ack?: Percentiles
  /** First DISCOVER -> ACK, ms (dora only; includes any NAK and restart). */
  total?: Percentiles
  /** REQUESTs left unanswered for ackTimeoutMs (the client went back to DISCOVER). */
  unansweredRequests?: number
  /** Every ACK, with `leases: true`. */
  leases?: ClientLease[]
}

/** Latency summary in ms. */
export interface Percentiles {
  n: number
  p50: number
  p99: number
  max: number
}

/** Nearest-rank percentiles (0 samples: zeros). */
export function percentiles(samples: number[]): Percentiles {
  const s = [...samples].sort((a, b) => a - b)
  const at = (q: number): number => s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))] ?? 0
  return { n: s.length, p50: at(0.5), p99: at(0.99), max: s[s.length - 1] ?? 0 }
}

/** DISCOVER attempts per client (a NAK or an unanswered REQUEST restarts the exchange); xids are spaced 16 apart per client. */
const MAX_ATTEMPTS = 8

/**
 * Client n's MAC. `scattered`: n times an odd constant mod 2^24 (a bijection, so still distinct), so the low bytes
 * of consecutive clients differ widely, as MACs from mixed batches do. Sequential MACs are the worst case for
 * dnsmasq, which starts its address search at a hash of the MAC and does not hold offered addresses: neighbours
 * booting together are offered the same address and all but one get a NAK (see --macs sequential).
 */
function macOf(i: number, prefix: string, scattered: boolean): string {
  const n = scattered ? Math.imul(i, 0x9e3779) & 0xffffff : i
  return `02:${prefix}:00:${[(n >> 16) & 255, (n >> 8) & 255, n & 255].map((b) => b.toString(16).padStart(2, '0')).join(':')}`
}

async function main(args: DhcpClientsArgs): Promise<DhcpClientsResult> {
  const { discover, request } = ovmfTemplates()
  const retryMs = args.retryMs ?? 4000
  const timeoutMs = args.timeoutMs ?? 10_000
  const base = args.base ?? 1
  const prefix = args.macPrefix ?? 'bd'
  // Every DISCOVER encoded before the clock starts: the client's own codec time is not the server's.
  const discovers = Array.from({ length: args.count }, (_, i) => {
    const mac = macOf(base + i, prefix, args.macs !== 'sequential')
    const xid = (0x5e000000 + ((base + i) << 4)) >>> 0
    return { mac, xid, bytes: encode(forClient(discover, mac, xid)) }
  })

  const socket = createSocket({ type: 'udp4', reuseAddr: true })
  socket.on('error', (err) => {
    process.stderr.write(`client socket: ${err.message}\n`)
  })
  const waiting = new Map<number, { want: number; resolve: (p: DhcpPacket) => void }>()
  socket.on('message', (msg) => {
    let p: DhcpPacket
    try {
      p = decode(msg)
    } catch {
      return
    }
    const w = waiting.get(p.xid)
    const type = messageType(p)
    if (w === undefined || p.op !== 2 || (type !== w.want && type !== DhcpMessageType.NAK)) return
    waiting.delete(p.xid)
    w.resolve(p)
  })
  await new Promise<void>((resolve) => socket.bind(68, '0.0.0.0', () => resolve()))
  socket.setBroadcast(true)
  socket.setRecvBufferSize(4 << 20)

  let retransmits = 0
  let lastAnswer = 0
  /** Sends `bytes` until a reply of type `want` (or NAK) arrives for `xid`, retransmitting every retryMs. */
  const exchange = (xid: number, bytes: Buffer, want: number, deadline: number): Promise<DhcpPacket | undefined> =>
    new Promise((resolve) => {
      const send = (): void => socket.send(bytes, 67, '255.255.255.255')
      const retry = setInterval(() => {
        retransmits++
        send()
      }, retryMs)
      const giveUp = setTimeout(() => finish(undefined), Math.max(0, deadline - performance.now()))
      const finish = (p: DhcpPacket | undefined): void => {
        clearInterval(retry)
        clearTimeout(giveUp)
        waiting.delete(xid)
        if (p !== undefined) lastAnswer = performance.now()
        resolve(p)
      }
      waiting.set(xid, { want, resolve: finish })
      send()
    })

  const offerMs: number[] = []
  const ackMs: number[] = []
  const totalMs: number[] = []
  let answered = 0
  let naks = 0
  let unansweredRequests = 0
  const leases: ClientLease[] = []
  let next = 0
  const one = async (c: { mac: string; xid: number; bytes: Buffer }): Promise<void> => {
    const t0 = performance.now()
    const deadline = t0 + timeoutMs
    // A NAK sends the client back to DISCOVER (RFC 2131 section 3.1 step 5 / 4.4.4), with a fresh xid, as firmware does.
    for (let attempt = 0; attempt < MAX_ATTEMPTS && performance.now() < deadline; attempt++) {
      const xid = (c.xid + 2 * attempt) >>> 0
      const bytes = attempt === 0 ? c.bytes : encode(forClient(discover, c.mac, xid))
      const offer = await exchange(xid, bytes, DhcpMessageType.OFFER, deadline)
      if (offer === undefined || messageType(offer) !== DhcpMessageType.OFFER) return
      const t1 = performance.now()
      if (attempt === 0) offerMs.push(t1 - t0)
      if (args.exchange === 'offer') {
        answered++
        return
      }
      const server = ipv4Option(offer, DhcpOptionCode.SERVER_ID)
      if (server === undefined) return
      const reqXid = (xid + 1) >>> 0
      const req = encode(forClient(request, c.mac, reqXid, { [DhcpOptionCode.REQUESTED_IP]: parseIPv4(offer.yiaddr), [DhcpOptionCode.SERVER_ID]: parseIPv4(server) }))
      const t2 = performance.now()
      const ackDeadline = args.ackTimeoutMs === undefined ? deadline : Math.min(deadline, t2 + args.ackTimeoutMs)
      const ack = await exchange(reqXid, req, DhcpMessageType.ACK, ackDeadline)
      if (ack === undefined) {
        if (ackDeadline === deadline) return
        unansweredRequests++
        continue
      }
      if (messageType(ack) === DhcpMessageType.NAK) {
        naks++
        continue
      }
      const t3 = performance.now()
      ackMs.push(t3 - t2)
      totalMs.push(t3 - t0)
      answered++
      if (args.leases === true) leases.push({ mac: c.mac, ip: ack.yiaddr, server: ipv4Option(ack, DhcpOptionCode.SERVER_ID) ?? '' })
      return
    }
  }
  const start = performance.now()
  await Promise.all(
    Array.from({ length: Math.min(args.concurrency, args.count) }, async () => {
      while (next < discovers.length) await one(discovers[next++] as (typeof discovers)[number])
    }),
  )
  socket.close()
  return {
    clients: args.count,
    answered,
    offers: offerMs.length,
    acks: ackMs.length,
    naks,
    lost: args.count - answered,
    retransmits,
    wallMs: (lastAnswer || performance.now()) - start,
    offer: percentiles(offerMs),
    ...(args.exchange === 'dora' ? { ack: percentiles(ackMs), total: percentiles(totalMs) } : {}),
    ...(args.ackTimeoutMs === undefined ? {} : { unansweredRequests }),
    ...(args.leases === true ? { leases } : {}),
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const result = await main(JSON.parse(process.argv[2] ?? '{}') as DhcpClientsArgs)
  process.stdout.write(JSON.stringify(result) + '\n')
}
