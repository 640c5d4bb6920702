/**
 * A UDP relay that adds a fixed one-way delay in each direction, for benchmarking TFTP over a link with latency on a
 * kernel without netem. TFTP moves each transfer to a new server port (RFC 1350 section 4), so the relay keeps, per
 * client, one upstream socket and one client-facing socket per server transfer port: the client sees the same port
 * change it would see from the real server.
 *
 * Run: node dist/bench/lib/udp-relay.js --listen 127.0.0.1:6969 --server 127.0.0.1:69 --delay-ms 1
 * On SIGTERM it prints {packets, mean_delay_ms} as one JSON line.
 */
import { createSocket, type Socket, type RemoteInfo } from 'node:dgram'
import { pathToFileURL } from 'node:url'

/** Relay settings. */
export interface RelayOptions {
  listenHost: string
  listenPort: number
  serverHost: string
  serverPort: number
  delayMs: number
  /** Sessions idle this long are dropped (default 30 s). */
  idleMs?: number
}

/** A running relay. */
export interface Relay {
  port: number
  stats(): { packets: number; mean_delay_ms: number }
  close(): Promise<void>
}

interface Session {
  client: RemoteInfo
  upstream: Socket
  /** Client-facing socket per server transfer port. */
  faces: Map<number, Socket>
  lastSeen: number
}

/** A socket bound in the background: Node queues sends until the bind completes, so it can be used at once. */
function bindNow(host: string): Socket {
  const s = createSocket({ type: 'udp4', lookup: (h, _o, cb) => cb(null, h, 4) })
  s.bind(0, host)
  return s
}

function bind(host: string, port = 0): Promise<Socket> {
  const s = createSocket({ type: 'udp4', lookup: (h, _o, cb) => cb(null, h, 4) })
  return new Promise((resolve, reject) => {
    s.once('error', reject)
    s.bind(port, host, () => {
      s.off('error', reject)
      resolve(s)
    })
  })
}

/** Starts a relay. */
export async function startRelay(options: RelayOptions): Promise<Relay> {
  const front = await bind(options.listenHost, options.listenPort)
  const sessions = new Map<string, Session>()
  // All packets get the same delay, so one FIFO queue is also in deadline order.
  const queue: Array<{ due: number; sock: Socket; buf: Buffer; port: number; host: string; queued: number }> = []
  let timer: NodeJS.Timeout | undefined
  let packets = 0
  let delaySum = 0

  function drain(): void {
    timer = undefined
    const now = performance.now()
    while (queue.length > 0 && queue[0]!.due <= now + 0.05) {
      const p = queue.shift()!
      packets++
      delaySum += now - p.queued
      p.sock.send(p.buf, p.port, p.host)
    }
    if (queue.length > 0) timer = setTimeout(drain, Math.max(0, queue[0]!.due - now))
  }

  function later(sock: Socket, buf: Buffer, port: number, host: string): void {
    const now = performance.now()
    queue.push({ due: now + options.delayMs, sock, buf, port, host, queued: now })
    timer ??= setTimeout(drain, options.delayMs)
  }

  function face(session: Session, serverPort: number): Socket {
    let f = session.faces.get(serverPort)
    if (!f) {
      f = bindNow(options.listenHost)
      session.faces.set(serverPort, f)
      f.on('message', (msg, rinfo) => {
        session.lastSeen = Date.now()
        if (rinfo.port === session.client.port && rinfo.address === session.client.address) {
          later(session.upstream, msg, serverPort, options.serverHost)
        }
      })
    }
    return f
  }

  function createSession(key: string, client: RemoteInfo): Session {
    const upstream = bindNow('0.0.0.0')
    const session: Session = { client, upstream, faces: new Map(), lastSeen: Date.now() }
    upstream.on('message', (msg, rinfo) => {
      session.lastSeen = Date.now()
      // Answers from the listening port (errors) come back through the front port, like from the real server.
      if (rinfo.port === options.serverPort) later(front, msg, client.port, client.address)
      else later(face(session, rinfo.port), msg, client.port, client.address)
    })
    sessions.set(key, session)
    return session
  }

  front.on('message', (msg, rinfo) => {
    const key = `${rinfo.address}:${rinfo.port}`
    const session = sessions.get(key) ?? createSession(key, rinfo)
    session.lastSeen = Date.now()
    later(session.upstream, msg, options.serverPort, options.serverHost)
  })

  const idleMs = options.idleMs ?? 30_000
  const sweep = setInterval(() => {
    const now = Date.now()
    for (const [key, s] of sessions) {
      if (now - s.lastSeen < idleMs) continue
      sessions.delete(key)
      s.upstream.close()
      for (const f of s.faces.values()) f.close()
    }
  }, 5000)
  sweep.unref()

  return {
    port: front.address().port,
    stats: () => ({ packets, mean_delay_ms: packets ? delaySum / packets : 0 }),
    async close() {
      clearInterval(sweep)
      if (timer) clearTimeout(timer)
      front.close()
      for (const s of sessions.values()) {
        s.upstream.close()
        for (const f of s.faces.values()) f.close()
      }
    },
  }
}

function arg(name: string, fallback?: string): string {
  const i = process.argv.indexOf(`--${name}`)
  const v = i >= 0 ? process.argv[i + 1] : fallback
  if (v === undefined) throw new Error(`--${name} is required`)
  return v
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const [lh, lp] = arg('listen').split(':')
  const [sh, sp] = arg('server').split(':')
  const relay = await startRelay({
    listenHost: lh!, listenPort: Number(lp), serverHost: sh!, serverPort: Number(sp), delayMs: Number(arg('delay-ms', '1')),
  })
  process.stderr.write(`relay listening on ${lh}:${relay.port}\n`)
  process.on('SIGTERM', () => {
    process.stdout.write(`${JSON.stringify(relay.stats())}\n`)
    void relay.close().then(() => process.exit(0))
  })
}
