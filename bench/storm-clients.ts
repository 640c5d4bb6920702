/**
 * bench/storm's machines, run inside the client namespace with `ip netns exec`: `count` simulated UEFI machines
 * powered on evenly over `rampMs`, each booting as OVMF then iPXE do (the packets are the fixture capture's, with
 * each machine's chaddr, xid, UUID and client id):
 *  1. proxy DISCOVER broadcast from port 68 -> the proxy OFFER (retransmitted after 4 s, EDK2's first timeout);
 *  2. the boot-server REQUEST to server:4011 (fixture frame 6) -> ACK;
 *  3. TFTP of the boot file, lock-step (no windowsize) at blksize 1468, as EDK2's MTFTP4 fetches it;
 *  4. iPXE's DHCP: its DISCOVER (frame 8) -> the proxy OFFER, then its ProxyDHCP REQUEST to 4011 (frame 13) -> ACK;
 *  5. HTTP GET /boot.ipxe and /ipxe?mac=..., then the kernel and the initrd, one after the other on one keep-alive
 *     connection, as iPXE fetches them.
 * The site DHCP server's part (the address lease) is left out: it is the same for both servers; each machine uses one
 * of the addresses the orchestrator put on the namespace's interface. Prints one JSON line.
 *
 * Usage: node dist/bench/storm-clients.js '<json StormClientsArgs>'
 */
import { createSocket, type Socket } from 'node:dgram'
import http from 'node:http'
import { fileURLToPath } from 'node:url'
import { DhcpMessageType, DhcpOptionCode, decode, encode, messageType, type DhcpPacket } from '../src/dhcp/index.js'
import { tftpGet } from '../test/helpers/tftp-client.js'
import { percentiles, type Percentiles } from './lib/dhcp-clients.js'
import { forClient, ovmfTemplates } from './lib/ovmf-packets.js'

/** What the orchestrator passes (as one JSON argument). */
export interface StormClientsArgs {
  server: string
  httpPort: number
  /**
   * The machines' addresses (on the namespace's interface), one per machine, reused in turn when there are fewer:
   * each machine's 4011 REQUEST, TFTP and HTTP leave from its own, as from machines leased by the site's DHCP
   * server (pxebox limits TFTP per client address, and a rack is many addresses, not one).
   */
  clientIps: string[]
  count: number
  rampMs: number
  /** Second MAC byte, so rounds never reuse a machine (default 'c5'). */
  macPrefix?: string
  bootFile: string
  /** URL paths of the kernel and the initrd. */
  kernel: string
  initrd: string
  /** A machine that has not finished by then counts as failed. */
  giveUpMs: number
}

/** The boot steps, in order; per-step times are reported under these names. */
export const STEPS = ['offer', 'ack4011', 'tftp', 'ipxeDhcp', 'scripts', 'kernel', 'initrd'] as const
/** One step's name. */
export type Step = (typeof STEPS)[number]

/** The one JSON line the process prints. */
export interface StormClientsResult {
  machines: number
  booted: number
  /** First failure reason per step, with counts. */
  failures: Record<string, number>
  /** First power-on to the last machine's last byte. */
  wallMs: number
  /** Power-on to last byte, per booted machine. */
  boot: Percentiles
  steps: Record<Step, Percentiles>
  retransmits: number
  /** This process's own CPU time (user + system), ms. */
  clientCpuMs: number
}

const OFFER_RETRY_MS = 4000
const ACK_RETRY_MS = 2000

/** Replies routed by xid: one socket serves every machine. */
function xidRouter(socket: Socket): (xid: number, want: number) => { reply: Promise<DhcpPacket>; cancel: () => void } {
  const waiting = new Map<number, { want: number; resolve: (p: DhcpPacket) => void }>()
  socket.on('message', (msg) => {
    let p: DhcpPacket
    try {
      p = decode(msg)
    } catch {
      return
    }
    const w = waiting.get(p.xid)
    if (w === undefined || p.op !== 2 || messageType(p) !== w.want) return
    waiting.delete(p.xid)
    w.resolve(p)
  })
  return (xid, want) => {
    let resolve!: (p: DhcpPacket) => void
    const reply = new Promise<DhcpPacket>((r) => (resolve = r))
    waiting.set(xid, { want, resolve })
    return { reply, cancel: () => waiting.delete(xid) }
  }
}

/** GET `path` on `agent`'s connection; resolves with the body's length, rejects on a non-200 or a short body. */
function httpGet(host: string, port: number, path: string, agent: http.Agent): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host, port, path, agent }, (res) => {
      let bytes = 0
      res.on('data', (d: Buffer) => (bytes += d.length))
      res.on('end', () => {
        const want = Number(res.headers['content-length'] ?? bytes)
        if (res.statusCode === 200 && bytes === want) resolve(bytes)
        else reject(new Error(`${path}: HTTP ${res.statusCode}, ${bytes} of ${want} bytes`))
      })
      res.on('error', reject)
    })
    req.on('error', reject)
  })
}

async function main(args: StormClientsArgs): Promise<StormClientsResult> {
  const t = ovmfTemplates()
  const prefix = args.macPrefix ?? 'c5'
  const literal = (host: string, _o: unknown, cb: (err: null, address: string, family: number) => void): void => cb(null, host, 4)
  const dhcp = createSocket({ type: 'udp4', reuseAddr: true, lookup: literal })
  await new Promise<void>((resolve) => dhcp.bind(68, '0.0.0.0', () => resolve()))
  dhcp.setBroadcast(true)
  dhcp.setRecvBufferSize(8 << 20)
  dhcp.on('error', (err) => process.stderr.write(`storm client socket: ${err.message}\n`))
  const onDhcp = xidRouter(dhcp)
  // EDK2 and iPXE send the ProxyDHCP REQUEST from their leased address: one 4011 socket per address.
  const addresses = args.clientIps.slice(0, args.count)
  const pxeSockets = await Promise.all(
    addresses.map(async (ip) => {
      const s = createSocket({ type: 'udp4', lookup: literal })
      await new Promise<void>((resolve) => s.bind(4011, ip, () => resolve()))
      s.on('error', (err) => process.stderr.write(`storm client 4011 socket ${ip}: ${err.message}\n`))
      return { ip, socket: s, route: xidRouter(s) }
    }),
  )
  let retransmits = 0

  /** Sends until a reply of type `want` arrives for `xid`, retransmitting every `retryMs`; rejects at `deadline`. */
  const exchange = async (route: typeof onDhcp, send: () => void, xid: number, want: number, retryMs: number, deadline: number): Promise<DhcpPacket> => {
    const { reply, cancel } = route(xid, want)
    const retry = setInterval(() => {
      retransmits++
      send()
    }, retryMs)
    let timer: NodeJS.Timeout | undefined
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(want === DhcpMessageType.ACK ? "no ACK in time" : "no OFFER in time")), Math.max(0, deadline - performance.now()))
    })
    send()
    try {
      return await Promise.race([reply, late])
    } finally {
      clearInterval(retry)
      clearTimeout(timer)
      cancel()
    }
  }

  const stepMs: Record<Step, number[]> = Object.fromEntries(STEPS.map((s) => [s, []])) as unknown as Record<Step, number[]>
  const bootMs: number[] = []
  const failures: Record<string, number> = {}
  let lastDone = 0
  const cpu0 = process.cpuUsage()

  const machine = async (i: number, powerOn: number): Promise<void> => {
    const mac = `02:${prefix}:00:${[(i >> 16) & 255, (i >> 8) & 255, i & 255].map((b) => b.toString(16).padStart(2, '0')).join(':')}`
    const clientId = { [DhcpOptionCode.CLIENT_ID]: Buffer.concat([Buffer.from([1]), Buffer.from(mac.replace(/:/g, ''), 'hex')]) }
    const xid = (0x57000000 + (i << 4)) >>> 0
    const deadline = powerOn + args.giveUpMs
    let step: Step = 'offer'
    let mark = performance.now()
    const done = (s: Step): void => {
      const now = performance.now()
      stepMs[s].push(now - mark)
      mark = now
    }
    const own = pxeSockets[(i - 1) % pxeSockets.length]!
    const { ip, socket: pxe, route: onPxe } = own
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1, localAddress: ip } as http.AgentOptions)
    try {
      const discover = encode(forClient(t.discover, mac, xid))
      await exchange(onDhcp, () => dhcp.send(discover, 67, '255.255.255.255'), xid, DhcpMessageType.OFFER, OFFER_RETRY_MS, deadline)
      done(step)
      step = 'ack4011'
      const request = encode({ ...forClient(t.pxeRequest, mac, xid + 1), ciaddr: ip })
      await exchange(onPxe, () => pxe.send(request, 4011, args.server), xid + 1, DhcpMessageType.ACK, ACK_RETRY_MS, deadline)
      done(step)
      step = 'tftp'
      await tftpGet({ host: args.server, port: 69, localAddress: ip, file: args.bootFile, blksize: 1468, tsize: true, keepData: false, retransmitMs: 1000, retries: 8 })
      done(step)
      step = 'ipxeDhcp'
      const ipxeDiscover = encode(forClient(t.ipxeDiscover, mac, xid + 2, clientId))
      await exchange(onDhcp, () => dhcp.send(ipxeDiscover, 67, '255.255.255.255'), xid + 2, DhcpMessageType.OFFER, OFFER_RETRY_MS, deadline)
      const ipxeRequest = encode({ ...forClient(t.ipxeProxyRequest, mac, xid + 3, clientId), ciaddr: ip })
      await exchange(onPxe, () => pxe.send(ipxeRequest, 4011, args.server), xid + 3, DhcpMessageType.ACK, ACK_RETRY_MS, deadline)
      done(step)
      step = 'scripts'
      await httpGet(args.server, args.httpPort, '/boot.ipxe', agent)
      await httpGet(args.server, args.httpPort, `/ipxe?mac=${mac}&uuid=&arch=x86_64&platform=efi`, agent)
      done(step)
      step = 'kernel'
      await httpGet(args.server, args.httpPort, args.kernel, agent)
      done(step)
      step = 'initrd'
      await httpGet(args.server, args.httpPort, args.initrd, agent)
      done(step)
      lastDone = performance.now()
      bootMs.push(lastDone - powerOn)
    } catch (err) {
      const key = `${step}: ${(err as Error).message.replace(/\d+/g, 'N')}`
      failures[key] = (failures[key] ?? 0) + 1
    } finally {
      agent.destroy()
    }
  }

  const start = performance.now()
  const runs: Promise<void>[] = []
  for (let i = 0; i < args.count; i++) {
    const at = args.count > 1 ? (i * args.rampMs) / (args.count - 1) : 0
    const wait = start + at - performance.now()
    if (wait > 1) await new Promise((r) => setTimeout(r, wait))
    runs.push(machine(i + 1, performance.now()))
  }
  await Promise.all(runs)
  dhcp.close()
  for (const p of pxeSockets) p.socket.close()
  const cpu = process.cpuUsage(cpu0)
  return {
    machines: args.count,
    booted: bootMs.length,
    failures,
    wallMs: (lastDone || performance.now()) - start,
    boot: percentiles(bootMs),
    steps: Object.fromEntries(STEPS.map((s) => [s, percentiles(stepMs[s])])) as Record<Step, Percentiles>,
    retransmits,
    clientCpuMs: (cpu.user + cpu.system) / 1000,
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const result = await main(JSON.parse(process.argv[2] ?? '{}') as StormClientsArgs)
  process.stdout.write(`${JSON.stringify(result)}\n`)
}
