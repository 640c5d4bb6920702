/**
 * DHCP benchmark: the real pxebox daemon (`dist/src/main.js serve`) vs dnsmasq doing the same job, proxyDHCP and
 * authoritative, answering 1,000 simulated UEFI PXE clients (copies of OVMF's captured DISCOVER/REQUEST with distinct
 * chaddr, xid and UUID; bench/lib/dhcp-clients.ts). Prints offers (or full exchanges) per second, p50/p99 latency
 * and the ratio pxebox/dnsmasq.
 *
 * Topology per measurement, built fresh each time: a server namespace (the server alone, binding 67 on `bs0`
 * 10.213.64.1/20) and a client namespace (`bc0`, no address, default route on it), joined by a veth; the clients
 * broadcast from 0.0.0.0:68 to 255.255.255.255:67 as firmware does. Traffic stays inside those two namespaces. Both servers log each
 * transaction to a file (pxebox at log_level info, dnsmasq's default DHCP logging), as they would in production.
 * pxebox runs with tracking off and TFTP off (neither is part of answering DHCP; dnsmasq runs with --port=0 and no TFTP).
 *
 * Address checks before an offer: dnsmasq pings (and waits up to 3 s for an echo reply), pxebox ARP-probes
 * (arp_probe_ms, default 500). The main runs turn both off (--no-ping, arp_probe_ms: 0) so they compare DHCP work;
 * the `probe` run keeps both on for a smaller client count.
 *
 * `--etcd` adds a third server to the authoritative DORA row (issue 17's bench): pxebox with `store: etcd` over a real
 * 3-member etcd cluster (Debian's etcd, fsync on, started fresh for each run in the server namespace on a link of its
 * own, 10.213.80.1), so each ACK waits for the lease's etcd transaction. Its server CPU is pxebox's plus the members'.
 *
 * Run (root): bench/dhcp.sh [--runs N] [--clients N] [--macs scattered|sequential] [--concurrency N]
 *   [--probe-clients N] [--skip-probe] [--only proxy|authoritative] [--etcd] [--warmup N (clients before the measured ones, default 50)]
 *   [--cpu-prof DIR]: write V8 CPU profiles of the pxebox daemon there (open in Chrome DevTools)
 *   [--node-flags "FLAGS"]: Node's flags for the daemon (default: those debian/pxebox starts it with)
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process'
import { mkdtemp, mkdir, writeFile, rm } from 'node:fs/promises'
import { openSync, closeSync, readFileSync } from 'node:fs'
import { tmpdir, loadavg, cpus } from 'node:os'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { DhcpClientsArgs, DhcpClientsResult } from './lib/dhcp-clients.js'
import { dnsmasqArgs, pxeboxConfig, NET, type BenchMode } from './lib/dhcp-servers.js'
import { benchCleanup, nsDel, waitForLog } from './lib/bench-lab.js'
import { runEtcdCluster } from '../test/helpers/etcd.js'
import { launcherFlags } from './lib/launcher.js'
import { flag, opt } from './lib/args.js'

const here = dirname(fileURLToPath(import.meta.url))
const PXEBOX = join(here, '..', 'src', 'main.js')
const CLIENTS = join(here, 'lib', 'dhcp-clients.js')
const CLIENT_COUNT = Number(opt('clients', '1000'))
const CONCURRENCY = Number(opt('concurrency', '100'))
const PROBE_CLIENTS = Number(opt('probe-clients', '100'))
const RUNS = Number(opt('runs', '3'))
// Clients answered before the measured ones: 50 by default (ARP, socket buffers, the first JIT tiers); more measures
// an appliance that has been up a while, whose hot paths V8 has optimized (dnsmasq, compiled C, gains nothing).
const WARMUP = Number(opt('warmup', '50'))
const MACS = opt('macs', 'scattered') === 'sequential' ? 'sequential' : 'scattered'
// The daemon runs as deployed: with the launcher's V8 heap sizing, unless --node-flags says otherwise.
const NODE_FLAGS = opt('node-flags', launcherFlags()).split(' ').filter((f) => f !== '')

const tag = `pxbd${process.pid % 100000}`
const SERVER_NS = `${tag}s`
const CLIENT_NS = `${tag}c`
const { children } = benchCleanup([SERVER_NS, CLIENT_NS])

const ip = (...args: string[]): void => void execFileSync('ip', args, { stdio: 'inherit' })

/**
 * Fresh namespaces and veth for one measurement (ARP caches, sockets and leases all start empty). The client end has
 * no IPv4 address, so DISCOVERs and REQUESTs leave from 0.0.0.0 as firmware's do; the default route gives the
 * 255.255.255.255 broadcasts a way out.
 */
function makeTopology(withEtcd: boolean): void {
  nsDel(SERVER_NS)
  nsDel(CLIENT_NS)
  for (const ns of [SERVER_NS, CLIENT_NS]) {
    ip('netns', 'add', ns)
    ip('-n', ns, 'link', 'set', 'lo', 'up')
  }
  ip('-n', CLIENT_NS, 'link', 'add', 'bc0', 'type', 'veth', 'peer', 'name', 'bs0', 'netns', SERVER_NS)
  ip('-n', SERVER_NS, 'addr', 'add', `${NET.server}/${NET.prefix}`, 'dev', 'bs0')
  ip('-n', CLIENT_NS, 'link', 'set', 'bc0', 'up')
  ip('-n', SERVER_NS, 'link', 'set', 'bs0', 'up')
  ip('-n', CLIENT_NS, 'route', 'add', 'default', 'dev', 'bc0')
  if (withEtcd) {
    // etcd's own link: the bench process (this namespace) checks the members' health on it, pxebox reaches them there.
    ip('link', 'add', `${tag}h`, 'type', 'veth', 'peer', 'name', 'be0', 'netns', SERVER_NS)
    ip('addr', 'add', `${NET.etcd.root}/${NET.etcd.prefix}`, 'dev', `${tag}h`)
    ip('-n', SERVER_NS, 'addr', 'add', `${NET.etcd.host}/${NET.etcd.prefix}`, 'dev', 'be0')
    ip('link', 'set', `${tag}h`, 'up')
    ip('-n', SERVER_NS, 'link', 'set', 'be0', 'up')
  }
}

/** Waits for the kernel's link watch to mark both veth ends running (up to ~1 s after `link set up`): pxebox only sees
 * an interface once it is IFF_RUNNING. */
async function linkUp(): Promise<void> {
  for (let i = 0; i < 50; i++) {
    const state = (ns: string, dev: string): string => execFileSync('ip', ['-n', ns, '-o', 'link', 'show', dev]).toString()
    if (/state UP/.test(state(SERVER_NS, 'bs0')) && /state UP/.test(state(CLIENT_NS, 'bc0'))) return
    await new Promise((r) => setTimeout(r, 100))
  }
  throw new Error('veth bs0/bc0 did not come up within 5 s')
}

/** CPU time (user + system, ms) a process has used so far, from /proc/<pid>/stat. */
function cpuMs(pid: number | undefined): number {
  if (pid === undefined) return NaN
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return ((Number(f[11]) + Number(f[12])) * 1000) / 100 // clock ticks, USER_HZ = 100
  } catch {
    return NaN
  }
}


/** The servers compared: pxebox on its embedded store, pxebox on etcd (`--etcd`), dnsmasq. */
type Server = 'pxebox' | 'pxebox-etcd' | 'dnsmasq'

/** A started server: its process, and the etcd cluster it uses (pxebox-etcd). */
interface Started {
  child: ChildProcess
  etcd?: Awaited<ReturnType<typeof runEtcdCluster>>
}

/** Starts one server in SERVER_NS with its output to `log`; resolves once it says it serves DHCP. */
async function startServer(server: Server, mode: BenchMode, probe: boolean, work: string): Promise<Started> {
  const log = join(work, `${server}.log`)
  let argv: string[]
  let ready: RegExp
  let etcd: Started['etcd']
  if (server === 'pxebox' || server === 'pxebox-etcd') {
    if (server === 'pxebox-etcd') etcd = await runEtcdCluster(2379, 3, { host: NET.etcd.host, netns: SERVER_NS })
    const dataDir = join(work, 'pxebox-data')
    const assets = join(work, 'assets')
    await mkdir(assets, { recursive: true })
    const config = join(work, 'pxebox.yaml')
    await writeFile(config, pxeboxConfig({ mode, probe, dataDir, assetsDir: assets, ignitionDir: assets, ...(etcd ? { etcd: etcd.endpoints } : {}) }))
    const prof = opt('cpu-prof', '')
    argv = [process.execPath, ...NODE_FLAGS, ...(prof ? ['--cpu-prof', `--cpu-prof-dir=${prof}`] : []), PXEBOX, 'serve', '--config', config]
    ready = /pxebox .* ready/
  } else {
    argv = ['dnsmasq', ...dnsmasqArgs({ mode, probe, dir: work, log })]
    ready = /DHCP, (proxy on subnet|IP range)/
  }
  const fd = openSync(log, 'a')
  const child = spawn('ip', ['netns', 'exec', SERVER_NS, ...argv], { stdio: ['ignore', fd, fd] })
  closeSync(fd)
  children.add(child)
  child.on('exit', () => children.delete(child))
  await waitForLog(log, ready, child, 20_000)
  return { child, ...(etcd ? { etcd } : {}) }
}

async function stopServer(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  child.kill('SIGTERM')
  await Promise.race([exited, new Promise((r) => setTimeout(r, 3000))])
  if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
}

function runClients(args: DhcpClientsArgs): Promise<DhcpClientsResult> {
  return new Promise((resolve, reject) => {
    const child = spawn('ip', ['netns', 'exec', CLIENT_NS, process.execPath, CLIENTS, JSON.stringify(args)], { stdio: ['ignore', 'pipe', 'inherit'] })
    children.add(child)
    let out = ''
    child.stdout.on('data', (d: Buffer) => (out += d.toString()))
    const limit = setTimeout(() => child.kill('SIGKILL'), 60_000 + args.count * 50)
    child.on('exit', (code) => {
      clearTimeout(limit)
      children.delete(child)
      if (code === 0) resolve(JSON.parse(out.trim()) as DhcpClientsResult)
      else reject(new Error(`dhcp clients exited ${code}`))
    })
  })
}

interface Row {
  server: Server
  label: string
  exchange: 'offer' | 'dora'
  result: DhcpClientsResult
  serverCpuMs: number
}

/** One measurement: fresh namespaces, the server, a warm-up by other MACs, then `count` clients. */
async function measure(server: Row['server'], mode: BenchMode, exchange: Row['exchange'], count: number, probe: boolean, label: string): Promise<Row> {
  const work = await mkdtemp(join(tmpdir(), 'pxebox-bench-dhcp-'))
  try {
    makeTopology(server === 'pxebox-etcd')
    await linkUp()
    const started = await startServer(server, mode, probe, work)
    const { child } = started
    // pxebox-etcd's CPU is the daemon's plus the members' (the work of committing a lease, wherever it runs).
    const pids = [child.pid, ...(started.etcd?.members.map((m) => m.process()?.pid) ?? [])]
    const serverCpu = (): number => pids.reduce<number>((sum, pid) => sum + cpuMs(pid), 0)
    process.stderr.write(`${label} ${exchange}: ${server}, ${count} clients...\n`)
    const timeoutMs = probe ? 12_000 : 10_000
    // Warm-up (JIT, ARP, socket buffers) with MACs the measured clients never use, so they do not hold addresses.
    await runClients({ count: WARMUP, concurrency: Math.min(CONCURRENCY, 50), exchange, macPrefix: 'aa', macs: MACS, timeoutMs })
    const cpu0 = serverCpu()
    const result = await runClients({ count, concurrency: Math.min(CONCURRENCY, count), exchange, macPrefix: 'bd', macs: MACS, timeoutMs })
    const serverCpuMs = serverCpu() - cpu0
    await stopServer(child)
    await started.etcd?.close()
    return { server, label, exchange, result, serverCpuMs }
  } finally {
    nsDel(SERVER_NS)
    nsDel(CLIENT_NS)
    await rm(work, { recursive: true, force: true })
  }
}

/** What the table shows for one server and job: the median of each figure over the runs. */
interface Summary {
  server: Row['server']
  label: string
  exchange: Row['exchange']
  clients: number
  runs: number
  /** Fewest answered clients in any run. */
  answered: number
  retransmits: number
  naks: number
  perSecond: number
  /** Slowest and fastest run's rate: the spread behind the median. */
  perSecondRange: [number, number]
  p50: number
  p99: number
  ack?: { p50: number; p99: number }
  serverCpuMs: number
}

const median = (xs: number[]): number => {
  const s = xs.filter(Number.isFinite).sort((a, b) => a - b)
  if (s.length === 0) return NaN
  const m = s.length >> 1
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2
}
/** Answered clients per second of wall time (offers/s, or full DORA exchanges/s). */
const rate = (r: DhcpClientsResult): number => (r.wallMs > 0 ? (r.answered * 1000) / r.wallMs : 0)
/** The latency a row is judged by: DISCOVER->OFFER, or DISCOVER->ACK for full exchanges. */
const lat = (r: DhcpClientsResult) => r.total ?? r.offer

function summarize(runs: Row[]): Summary {
  const first = runs[0] as Row
  const acks = runs.map((r) => r.result.ack).filter((a): a is NonNullable<typeof a> => a !== undefined)
  return {
    server: first.server,
    label: first.label,
    exchange: first.exchange,
    clients: first.result.clients,
    runs: runs.length,
    answered: Math.min(...runs.map((r) => r.result.answered)),
    retransmits: Math.max(...runs.map((r) => r.result.retransmits)),
    naks: Math.max(...runs.map((r) => r.result.naks)),
    perSecond: median(runs.map((r) => rate(r.result))),
    perSecondRange: [Math.min(...runs.map((r) => rate(r.result))), Math.max(...runs.map((r) => rate(r.result)))],
    p50: median(runs.map((r) => lat(r.result).p50)),
    p99: median(runs.map((r) => lat(r.result).p99)),
    ...(acks.length ? { ack: { p50: median(acks.map((a) => a.p50)), p99: median(acks.map((a) => a.p99)) } } : {}),
    serverCpuMs: median(runs.map((r) => r.serverCpuMs)),
  }
}

const f1 = (n: number): string => (Number.isFinite(n) ? n.toFixed(1) : 'n/a')
const f2 = (n: number): string => (Number.isFinite(n) ? n.toFixed(2) : 'n/a')

function table(rows: Summary[]): string {
  const head = ['server', 'mode', 'exchange', 'clients', 'answered', 'per s (min-max)', 'p50 ms', 'p99 ms', 'REQ->ACK p50/p99 ms', 'server CPU ms', 'rate pxebox/dnsmasq', 'p50 pxebox/dnsmasq']
  const lines = [head.join(' | '), head.map(() => '---').join(' | ')]
  for (const r of rows) {
    const px = r
    const dm = rows.find((o) => o.server === 'dnsmasq' && o.label === r.label && o.exchange === r.exchange)
    const both = r.server !== 'dnsmasq' && dm !== undefined
    lines.push(
      [
        r.server,
        r.label,
        r.exchange === 'offer' ? 'DISCOVER->OFFER' : 'DISCOVER->ACK',
        String(r.clients),
        `${r.answered}${r.retransmits ? ` (${r.retransmits} retx)` : ''}${r.naks ? ` (${r.naks} NAK)` : ''}`,
        r.runs > 1 ? `${f1(r.perSecond)} (${f1(r.perSecondRange[0])}-${f1(r.perSecondRange[1])})` : f1(r.perSecond),
        f2(r.p50),
        f2(r.p99),
        r.ack ? `${f2(r.ack.p50)} / ${f2(r.ack.p99)}` : '',
        Number.isFinite(r.serverCpuMs) ? String(Math.round(r.serverCpuMs)) : 'n/a',
        both ? `${f2(px.perSecond / dm.perSecond)}x` : '',
        both ? `${f2(px.p50 / dm.p50)}x` : '',
      ].join(' | '),
    )
  }
  return lines.join('\n')
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('bench/dhcp needs root (network namespaces, port 67)')
  execFileSync('dnsmasq', ['--version'], { stdio: 'ignore' })
  const dnsmasqVersion = execFileSync('dnsmasq', ['--version']).toString().split('\n')[0] ?? 'dnsmasq'
  const only = opt('only', '')
  const plan: [BenchMode, Row['exchange'], number, boolean, string][] = []
  if (only !== 'authoritative') plan.push(['proxy', 'offer', CLIENT_COUNT, false, 'proxy'])
  if (only !== 'proxy') {
    plan.push(['authoritative', 'offer', CLIENT_COUNT, false, 'authoritative'])
    plan.push(['authoritative', 'dora', CLIENT_COUNT, false, 'authoritative'])
    if (!flag('skip-probe')) plan.push(['authoritative', 'offer', PROBE_CLIENTS, true, 'auth+probe'])
  }
  const loadBefore = loadavg()[0] ?? NaN
  const rows: Summary[] = []
  for (const [mode, exchange, count, probe, label] of plan) {
    const servers: Server[] = flag('etcd') && exchange === 'dora' ? ['pxebox', 'pxebox-etcd', 'dnsmasq'] : ['pxebox', 'dnsmasq']
    // Runs alternate between the servers, so a burst of load from elsewhere on the machine hits all alike.
    const runs = new Map<Server, Row[]>(servers.map((s) => [s, []]))
    for (let i = 0; i < (probe ? 1 : RUNS); i++) {
      for (const server of servers) runs.get(server)?.push(await measure(server, mode, exchange, count, probe, label))
    }
    for (const server of servers) rows.push(summarize(runs.get(server) as Row[]))
  }
  console.log(`DHCP bench: ${CLIENT_COUNT} simulated UEFI PXE clients (OVMF's DISCOVER/REQUEST, distinct chaddr/xid/UUID, ${MACS} MACs), ${CONCURRENCY} in flight, broadcast over a veth between two namespaces; ${dnsmasqVersion}; node ${process.version}, pxebox with ${NODE_FLAGS.join(' ') || 'no Node flags'}`)
  console.log(`median of ${RUNS} runs per row (auth+probe: 1 run), each run on a freshly started server in fresh namespaces after a ${WARMUP}-client warm-up`)
  console.log(`machine: ${cpus().length} CPUs, load average ${f1(loadBefore)} at start, ${f1(loadavg()[0] ?? NaN)} at end (other work on the box slows both servers)`)
  console.log('per s = answered clients / wall time; latency from the first DISCOVER; rate ratio > 1 and p50 ratio < 1 mean pxebox is faster')
  console.log('proxy/authoritative: dnsmasq --no-ping, pxebox arp_probe_ms: 0. auth+probe: dnsmasq pings (default), pxebox arp_probe_ms: 500 (default)')
  console.log('DISCOVER->ACK: both are durable before the ACK: pxebox appends to its lease log and fsyncs (group commit, concurrent ACKs share one fsync); dnsmasq 2.90 writes its lease file and fsyncs it before each ACK, one ACK at a time (strace: fsync, then sendmsg)')
  console.log('server CPU ms: user+system time of the server process during the measured clients (/proc, 10 ms ticks)')
  if (flag('etcd')) console.log('pxebox-etcd: store on a fresh 3-member etcd 3.4 (Debian, one host, fsync on, heartbeat 50 ms); each ACK waits for the lease transaction (create-if-absent on the address key); its server CPU includes the three members')
  console.log('')
  console.log(table(rows))
}

await main()
