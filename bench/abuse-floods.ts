/**
 * bench/abuse's attacker, run inside an attacker namespace with `ip netns exec`: the floods it is given, together,
 * each at a bounded rate and for a bounded time (the run's duration; it also stops itself then, should the bench die).
 * On SIGTERM (or at its deadline) it prints one JSON line, FloodResults, and exits.
 *
 * The floods, after issue 13's attacks:
 *  - sse: `/v1/events` streams (reads are open without a token); `idle` ones never read a byte (the socket is
 *    paused: the server's writes pile up on its side), `reading` ones read everything. A closed stream is
 *    reopened after `reconnectMs`, as a browser's EventSource would.
 *  - discover: DISCOVERs from ever-new MACs (OVMF's packet), a steady rate; OFFERs to them are counted.
 *  - spoof: OFFERs and ACKs broadcast to port 68 from port 67 with random server ids (option 54), so the address
 *    tracker sees a new rogue server in almost every one.
 *  - tftpHold: RRQs asking `timeout=255` that are never ACKed, each from a new port kept open (no ICMP unreachable
 *    frees the slot), each source address at its own rate (19/s: under the default 20/s per-client limit); at most
 *    `maxOpenPerSource` held per source, the oldest dropped beyond.
 *  - labels: `/ipxe?mac=<new>&uuid=<new>&hostname=<N chars>&serial=<N chars>`: new machine records with long labels.
 *  - port0: TFTP requests from UDP source port 0 (bench/lib/port0-sender.ts).
 *  - syslog: RFC 3164 lines to pxebox's syslog receiver.
 *
 * Usage: node dist/bench/abuse-floods.js '<json FloodArgs>'
 */
import { createSocket, type Socket } from 'node:dgram'
import { randomUUID } from 'node:crypto'
import http from 'node:http'
import net from 'node:net'
import { fileURLToPath } from 'node:url'
import { DhcpMessageType, DhcpOptionCode, decode, encode, ipv4Option, messageType, parseIPv4 } from '../src/dhcp/index.js'
import { encode as encodeTftp } from '../src/tftp/packet.js'
import { percentiles, type Percentiles } from './lib/dhcp-clients.js'
import { forClient, ovmfTemplates } from './lib/ovmf-packets.js'
import { startPort0Sender } from './lib/port0-sender.js'

/** Which floods to run, and how hard. A missing key: that flood is off. */
export interface FloodArgs {
  /** pxebox's address and HTTP port. */
  server: string
  httpPort: number
  /** Stop by itself after this long even without SIGTERM. */
  durationMs: number
  /** Two hex digits in every MAC this attacker makes, so two attackers never collide. */
  macByte: string
  sse?: { idle: number; reading: number; reconnectMs: number }
  discover?: { rate: number }
  spoof?: { rate: number }
  tftpHold?: { sources: { address: string; rate: number }[]; maxOpenPerSource: number; file: string }
  labels?: { rate: number; length: number }
  port0?: { intervalMs: number }
  syslog?: { rate: number; port: number }
}

/** What the floods did (the JSON line printed at the end). */
export interface FloodResults {
  /** `closed`: streams that had connected and were closed (by the server, or as it died); `statuses`: reading streams' HTTP status. */
  sse?: { opened: number; refused: number; closed: number; connectErrors: number; bytesRead: number; events: number; statuses: Record<string, number> }
  discover?: { sent: number; answered: number; offer: Percentiles }
  spoof?: { offers: number; acks: number }
  tftpHold?: { sent: number; held: number; refused: Record<string, number>; openAtEnd: number }
  labels?: { sent: number; skipped: number; statuses: Record<string, number> }
  port0?: { sent: Record<string, number> }
  syslog?: { sent: number }
}

/** Calls `fn` `rate` times a second, spread over 20 ms ticks; a slow tick does not turn into a burst of catch-up. */
function atRate(rate: number, fn: () => void): NodeJS.Timeout {
  const start = performance.now()
  let done = 0
  return setInterval(() => {
    const due = Math.floor(((performance.now() - start) * rate) / 1000)
    const n = Math.min(due - done, Math.ceil(rate / 10))
    for (let i = 0; i < n; i++) fn()
    done = Math.max(done + n, due - Math.ceil(rate / 10))
  }, 20)
}

const count = (m: Record<string, number>, key: string): void => void (m[key] = (m[key] ?? 0) + 1)

/** A MAC from a 32-bit counter: 02:<byte>:<4 counter bytes>, locally administered. */
function macOf(byte: string, n: number): string {
  return `02:${byte}:${[n >>> 24, (n >> 16) & 255, (n >> 8) & 255, n & 255].map((b) => b.toString(16).padStart(2, '0')).join(':')}`
}

async function bindUdp(port: number, address: string, reuse = false): Promise<Socket> {
  const literal = (host: string, _o: unknown, cb: (err: null, address: string, family: number) => void): void => cb(null, host, 4)
  const socket = createSocket({ type: 'udp4', reuseAddr: reuse, lookup: literal })
  socket.on('error', () => undefined) // sends to a dead server, ICMP errors: the flood goes on
  await new Promise<void>((resolve) => socket.bind(port, address, () => resolve()))
  return socket
}

async function main(args: FloodArgs): Promise<void> {
  const results: FloodResults = {}
  const timers: NodeJS.Timeout[] = []
  const closers: (() => void)[] = []
  const templates = ovmfTemplates()

  if (args.sse !== undefined) {
    const o = args.sse
    const r = (results.sse = { opened: 0, refused: 0, closed: 0, connectErrors: 0, bytesRead: 0, events: 0, statuses: {} as Record<string, number> })
    const sockets = new Set<net.Socket>()
    let stopping = false
    const open = (reading: boolean): void => {
      const s = net.connect({ host: args.server, port: args.httpPort })
      sockets.add(s)
      let head = true
      s.on('connect', () => {
        r.opened++
        s.write(`GET /v1/events HTTP/1.1\r\nHost: ${args.server}:${args.httpPort}\r\nAccept: text/event-stream\r\n\r\n`)
        if (!reading) s.pause()
      })
      s.on('data', (d: Buffer) => {
        if (head) {
          head = false
          const status = /^HTTP\/1\.[01] (\d{3})/.exec(d.toString('latin1', 0, 16))?.[1] ?? 'garbled'
          count(r.statuses, status)
          if (status !== '200') r.refused++
        }
        r.bytesRead += d.length
        let i = -1
        while ((i = d.indexOf('event:', i + 1, 'latin1')) >= 0) r.events++
      })
      s.on('error', (err: NodeJS.ErrnoException) => {
        if (err.code === 'ECONNREFUSED' || err.code === 'ETIMEDOUT' || err.code === 'EHOSTUNREACH') r.connectErrors++
      })
      s.on('close', () => {
        sockets.delete(s)
        if (stopping) return
        if (s.bytesWritten > 0) r.closed++
        setTimeout(() => !stopping && open(reading), o.reconnectMs)
      })
    }
    // Opened 10 ms apart, the reading ones spread among the idle: the attack is the streams, not a SYN burst.
    const total = o.idle + o.reading
    let n = 0
    const ramp = setInterval(() => {
      if (n >= total) return clearInterval(ramp)
      open(Math.floor(((n + 1) * o.reading) / total) > Math.floor((n * o.reading) / total))
      n++
    }, 10)
    timers.push(ramp)
    closers.push(() => {
      stopping = true
      for (const s of sockets) s.destroy()
    })
  }

  if (args.discover !== undefined) {
    const r = (results.discover = { sent: 0, answered: 0, offer: percentiles([]) })
    const socket = await bindUdp(68, '0.0.0.0', true)
    socket.setBroadcast(true)
    socket.setRecvBufferSize(4 << 20)
    const pending = new Map<number, number>()
    const latencies: number[] = []
    socket.on('message', (msg) => {
      let p
      try {
        p = decode(msg)
      } catch {
        return
      }
      const t0 = pending.get(p.xid)
      if (t0 === undefined || p.op !== 2 || messageType(p) !== DhcpMessageType.OFFER || ipv4Option(p, DhcpOptionCode.SERVER_ID) !== args.server) return
      pending.delete(p.xid)
      r.answered++
      latencies.push(performance.now() - t0)
    })
    let n = 0
    timers.push(
      atRate(args.discover.rate, () => {
        n++
        const xid = (0x0d000000 + n) >>> 0
        socket.send(encode(forClient(templates.discover, macOf(args.macByte, n), xid)), 67, '255.255.255.255')
        pending.set(xid, performance.now())
        r.sent++
      }),
    )
    // Unanswered DISCOVERs are forgotten after 10 s, so `pending` stays bounded.
    timers.push(
      setInterval(() => {
        const old = performance.now() - 10_000
        for (const [xid, t0] of pending) if (t0 < old) pending.delete(xid)
      }, 5000),
    )
    closers.push(() => {
      r.offer = percentiles(latencies)
      socket.close()
    })
  }

  if (args.spoof !== undefined) {
    const r = (results.spoof = { offers: 0, acks: 0 })
    const socket = await bindUdp(67, '0.0.0.0')
    socket.setBroadcast(true)
    let n = 0
    const rnd = (): number => Math.floor(Math.random() * 256)
    timers.push(
      atRate(args.spoof.rate, () => {
        n++
        const ack = n % 2 === 0
        // Server ids from 10.213.128.0/17, 32k of them: a new "rogue server" almost every packet.
        const serverId = `10.213.${128 + (rnd() & 127)}.${1 + (rnd() % 254)}`
        const edits = { [DhcpOptionCode.MESSAGE_TYPE]: Buffer.from([ack ? DhcpMessageType.ACK : DhcpMessageType.OFFER]), [DhcpOptionCode.SERVER_ID]: parseIPv4(serverId) }
        const p = forClient(templates.siteOffer, macOf(args.macByte, n), (0x5f000000 + n) >>> 0, edits)
        socket.send(encode({ ...p, yiaddr: `10.213.137.${100 + (n % 150)}`, siaddr: serverId }), 68, '255.255.255.255')
        if (ack) r.acks++
        else r.offers++
      }),
    )
    closers.push(() => socket.close())
  }

  if (args.tftpHold !== undefined) {
    const o = args.tftpHold
    const r = (results.tftpHold = { sent: 0, held: 0, refused: {} as Record<string, number>, openAtEnd: 0 })
    const rrq = encodeTftp({ op: 'rrq', filename: o.file, mode: 'octet', options: [['timeout', '255'], ['blksize', '1468']] })
    const open = new Map<string, Socket[]>(o.sources.map((s) => [s.address, []]))
    const drop = (source: string, s: Socket): void => {
      const list = open.get(source) ?? []
      const i = list.indexOf(s)
      if (i >= 0) list.splice(i, 1)
      s.close()
    }
    for (const { address: source, rate } of o.sources) {
      timers.push(
        atRate(rate, () => {
          const list = open.get(source) ?? []
          if (list.length >= o.maxOpenPerSource) drop(source, list[0] as Socket)
          const s = createSocket('udp4')
          s.on('error', () => undefined)
          let answered = false
          s.on('message', (msg) => {
            const op = msg.readUInt16BE(0)
            if (op === 5) {
              count(r.refused, msg.toString('latin1', 4, msg.length - 1).slice(0, 60))
              drop(source, s)
            } else if (!answered && (op === 6 || op === 3)) {
              answered = true
              r.held++
            }
          })
          s.bind(0, source, () => {
            s.send(rrq, 69, args.server)
            r.sent++
          })
          list.push(s)
        }),
      )
    }
    closers.push(() => {
      for (const [source, list] of open) {
        r.openAtEnd += list.length
        for (const s of [...list]) drop(source, s)
      }
    })
  }

  if (args.labels !== undefined) {
    const o = args.labels
    const r = (results.labels = { sent: 0, skipped: 0, statuses: {} as Record<string, number> })
    const agent = new http.Agent({ keepAlive: true, maxSockets: 16 })
    const long = (c: string): string => (c + 'abcdefghijklmnopqrstuvwxyz0123456789'.repeat(Math.ceil(o.length / 36))).slice(0, o.length)
    let inFlight = 0
    let n = 0
    timers.push(
      atRate(o.rate, () => {
        // Bounded: a server that stalls does not get an ever-growing queue from us.
        if (inFlight >= 64) {
          r.skipped++
          return
        }
        n++
        inFlight++
        r.sent++
        const path = `/ipxe?mac=${macOf(args.macByte, 0x40000000 + n)}&uuid=${randomUUID()}&hostname=${long(`h${n}`)}&serial=${long(`s${n}`)}`
        const req = http.get({ host: args.server, port: args.httpPort, path, agent, timeout: 10_000 }, (res) => {
          count(r.statuses, String(res.statusCode))
          res.resume()
          res.on('end', () => inFlight--)
        })
        req.on('timeout', () => req.destroy(new Error('timeout')))
        req.on('error', (err: NodeJS.ErrnoException) => {
          count(r.statuses, err.code ?? err.message)
          inFlight--
        })
      }),
    )
    closers.push(() => agent.destroy())
  }

  if (args.port0 !== undefined) {
    const sender = startPort0Sender({ server: args.server, port: 69, intervalMs: args.port0.intervalMs, count: Math.ceil(args.durationMs / args.port0.intervalMs) })
    results.port0 = { sent: sender.sent }
    closers.push(() => void sender.child.kill('SIGKILL'))
  }

  if (args.syslog !== undefined) {
    const o = args.syslog
    const r = (results.syslog = { sent: 0 })
    const socket = await bindUdp(0, '0.0.0.0')
    timers.push(
      atRate(o.rate, () => {
        r.sent++
        const host = `node${r.sent % 100}`
        socket.send(`<134>Nov 27 15:00:00 ${host} installer[${r.sent % 30000}]: abuse line ${r.sent} ${'x'.repeat(r.sent % 400)}`, o.port, args.server)
      }),
    )
    closers.push(() => socket.close())
  }

  const finish = (): void => {
    for (const t of timers) clearInterval(t)
    for (const c of closers) c()
    process.stdout.write(`${JSON.stringify(results)}\n`)
    process.exit(0)
  }
  process.on('SIGTERM', finish)
  setTimeout(finish, args.durationMs + 30_000).unref()
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main(JSON.parse(process.argv[2] ?? '{}') as FloodArgs)
