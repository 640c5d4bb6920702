/**
 * Abuse soak bench (issue 13): the real pxebox daemon (`dist/src/main.js serve`) under every flood a hostile host on
 * the PXE VLAN can send, all at once, for `--duration` seconds (default 600), while one valid PXE client boots again
 * and again. Prints the client's offer latency and TFTP/HTTP success, pxebox's RSS and log volume over time, what the
 * attackers saw, and the issue's goals with pass/miss (bench/abuse-report.ts). Exits 1 only when the bench itself
 * failed or pxebox died; a missed goal is printed, not an exit status.
 *
 * Topology (built fresh, removed at exit; bench/abuse.sh's trap removes it too if this process is killed):
 *   <tag>s  pxebox alone, on bridge `pxabbr` 10.213.137.1/24 (its PXE interface)
 *   <tag>a  attacker A, 10.213.137.10: SSE streams, DISCOVERs from new MACs, long /ipxe labels, TFTP from source
 *           port 0, syslog (floods in bench/abuse-floods.ts)
 *   <tag>b  attacker B, 10.213.137.20-24: spoofed OFFER/ACKs (a rogue server), TFTP slot holding from .20 (19/s)
 *           and a spread from .21-.24
 *   <tag>c  the valid client, 10.213.137.50 (bench/abuse-client.ts)
 * each joined to the bridge by a veth. All traffic stays inside these namespaces.
 *
 * Run (root): bench/abuse.sh [--duration S] [--mode proxy|authoritative] [--without sse,discover,spoof,tftp,labels,port0,syslog]
 *   [--sse-idle N] [--sse-reading N] [--discover-rate N] [--spoof-rate N] [--tftp-rate N] [--tftp-spread N]
 *   [--tftp-spread-rate N] [--labels-rate N] [--label-length N] [--port0-interval MS] [--syslog-rate N]
 *   [--interval MS] [--sample S] [--rss-bound MB] [--warn-per-min N] [--rss-abort-mb MB] [--keep-log FILE] [--tag NAME] [--profile DIR]
 *
 * --profile DIR: pxebox runs with --cpu-prof (profile in DIR) and an event-loop probe (bench/lib/loop-probe.ts), and the
 * report ends with its loop stalls and what ran in them (bench/lib/stall-profile.ts). Profiling costs pxebox some
 * CPU, so compare profiled runs with profiled runs.
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process'
import { closeSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { randomBytes } from 'node:crypto'
import { cpus, loadavg, tmpdir } from 'node:os'
import { dirname, join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { AbuseClientArgs, AttemptRecord, CutShortRecord } from './abuse-client.js'
import type { FloodArgs, FloodResults } from './abuse-floods.js'
import { report, type RunData, type Sample } from './abuse-report.js'
import { watchLog } from './lib/log-watch.js'
import { benchCleanup, nsDel } from './lib/bench-lab.js'
import { cpuMs, rssMb } from './lib/proc-stats.js'
import type { LoopProbeResult } from './lib/loop-probe.js'
import { stallLines, stallProfile } from './lib/stall-profile.js'
import { opt, num } from './lib/args.js'

const here = dirname(fileURLToPath(import.meta.url))
const REPO = join(here, '..', '..')
const PXEBOX = join(here, '..', 'src', 'main.js')
const FLOODS = join(here, 'abuse-floods.js')
const CLIENT = join(here, 'abuse-client.js')
const LOOP_PROBE = join(here, 'lib', 'loop-probe.js')


const FLOOD_NAMES = ['sse', 'discover', 'spoof', 'tftp', 'labels', 'port0', 'syslog'] as const
type FloodName = (typeof FLOOD_NAMES)[number]
/** The keys of FloodArgs that are floods. */
const FLOOD_KEYS = ['sse', 'discover', 'spoof', 'tftpHold', 'labels', 'port0', 'syslog'] as const

/** The bench network: 10.213.137.0/24, used by nothing else in the repository. */
const NET = {
  prefix: 24,
  server: '10.213.137.1',
  attackerA: '10.213.137.10',
  attackerB: ['10.213.137.20', '10.213.137.21', '10.213.137.22', '10.213.137.23', '10.213.137.24'],
  client: '10.213.137.50',
  range: { start: '10.213.137.100', end: '10.213.137.250' },
  bridge: 'pxabbr',
  httpPort: 8080,
} as const
const CLIENT_MAC = '02:ab:be:ef:00:01'

interface Settings {
  durationS: number
  mode: 'proxy' | 'authoritative'
  without: Set<string>
  tag: string
  sampleS: number
  rssAbortMb: number
}

/** Runs `ip` with arguments, output to our stderr on failure. */
const ip = (...args: string[]): void => void execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'inherit'] })

const namespaces = (tag: string) => ({ server: `${tag}s`, a: `${tag}a`, b: `${tag}b`, client: `${tag}c` })

/** The namespaces, bridge and veths (see the file comment). */
function makeTopology(tag: string): void {
  const ns = namespaces(tag)
  for (const n of Object.values(ns)) {
    nsDel(n)
    ip('netns', 'add', n)
    ip('-n', n, 'link', 'set', 'lo', 'up')
  }
  ip('-n', ns.server, 'link', 'add', NET.bridge, 'type', 'bridge')
  ip('-n', ns.server, 'addr', 'add', `${NET.server}/${NET.prefix}`, 'dev', NET.bridge)
  ip('-n', ns.server, 'link', 'set', NET.bridge, 'up')
  const attach = (n: string, port: string, addrs: readonly string[], mac?: string): void => {
    ip('-n', n, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', port, 'netns', ns.server)
    if (mac !== undefined) ip('-n', n, 'link', 'set', 'eth0', 'address', mac)
    for (const a of addrs) ip('-n', n, 'addr', 'add', `${a}/${NET.prefix}`, 'dev', 'eth0')
    ip('-n', ns.server, 'link', 'set', port, 'master', NET.bridge)
    ip('-n', ns.server, 'link', 'set', port, 'up')
    ip('-n', n, 'link', 'set', 'eth0', 'up')
    // Broadcasts to 255.255.255.255 need a route out.
    ip('-n', n, 'route', 'add', 'default', 'dev', 'eth0')
  }
  attach(ns.a, 'pxab-a', [NET.attackerA])
  attach(ns.b, 'pxab-b', NET.attackerB)
  attach(ns.client, 'pxab-c', [NET.client], CLIENT_MAC)
}

/** Waits for the bridge to be running (pxebox only takes an interface that is IFF_RUNNING). */
async function bridgeUp(tag: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const state = execFileSync('ip', ['-n', namespaces(tag).server, '-o', 'link', 'show', NET.bridge]).toString()
    if (/state UP/.test(state)) return
    await new Promise((r) => setTimeout(r, 100))
  }
  throw new Error(`bridge ${NET.bridge} did not come up within 10 s`)
}

/** The syslog receiver's config and port, when this build's config schema has a `syslog` key (issue 20). */
function syslogSupport(): { config: string[]; port: number } | undefined {
  const schema = JSON.parse(readFileSync(join(REPO, 'config', 'pxebox.schema.json'), 'utf8')) as {
    properties: Record<string, { properties?: Record<string, { default?: unknown }> }>
  }
  const s = schema.properties['syslog']
  if (s === undefined) return undefined
  const props = s.properties ?? {}
  const port = typeof props['port']?.default === 'number' ? props['port'].default : 514
  const config = ['syslog:']
  if ('enabled' in props) config.push('  enabled: true')
  if ('listen' in props) config.push(`  listen: "${NET.server}:${port}"`)
  return { config: config.length > 1 ? config : ['syslog: {}'], port }
}

/** The boot file the valid client fetches: the tree's own snponly.efi when firmware/fetch.sh has run, else a test file. */
function tftpRoot(work: string): { root: string; file: string; local: string } {
  const firmware = join(REPO, 'firmware')
  if (existsSync(join(firmware, 'snponly.efi'))) return { root: firmware, file: 'snponly.efi', local: join(firmware, 'snponly.efi') }
  const root = join(work, 'tftp')
  mkdirSync(root)
  writeFileSync(join(root, 'bench-boot.efi'), randomBytes(173_792)) // snponly.efi's size
  return { root, file: 'bench-boot.efi', local: join(root, 'bench-boot.efi') }
}

/** pxebox's config: as deployed (log_level info, tracking with ARP, TFTP and HTTP on), one profile for every machine. */
function pxeboxConfig(s: Settings, work: string, root: string, syslog: string[]): string {
  const dirs = ['data', 'assets/bench', 'ignition'].map((d) => join(work, d))
  for (const d of dirs) mkdirSync(d, { recursive: true })
  writeFileSync(join(work, 'assets', 'bench', 'vmlinuz'), randomBytes(4096))
  let tcpdump = true
  try {
    execFileSync('sh', ['-c', 'command -v tcpdump'], { stdio: 'ignore' })
  } catch {
    tcpdump = false
  }
  return [
    `interface: ${NET.bridge}`,
    `address: ${NET.server}`,
    'log_level: info',
    `data_dir: ${JSON.stringify(join(work, 'data'))}`,
    `assets_dir: ${JSON.stringify(join(work, 'assets'))}`,
    `ignition_dir: ${JSON.stringify(join(work, 'ignition'))}`,
    `generic_dir: ${JSON.stringify(join(work, 'ignition'))}`,
    `butane_files_dir: ${JSON.stringify(join(work, 'ignition'))}`,
    'dhcp:',
    `  mode: ${s.mode}`,
    '  interface_pinning: auto',
    ...(s.mode === 'authoritative' ? [`  range: { start: ${NET.range.start}, end: ${NET.range.end} }`, '  arp_probe_ms: 0'] : []),
    'tracking:',
    '  enabled: true',
    `  arp: ${tcpdump}`,
    'tftp:',
    '  enabled: true',
    `  root: ${JSON.stringify(root)}`,
    'http:',
    '  enabled: true',
    `  listen: "${NET.server}:${NET.httpPort}"`,
    ...syslog,
    'profiles:',
    '  bench:',
    '    boot:',
    '      kernel: /assets/bench/vmlinuz',
    '      args: [console=ttyS0]',
    'groups:',
    '  - id: everyone',
    '    profile: bench',
    '',
  ].join('\n')
}

/** The RSS bound README.md states ("RSS ... under N MB"), if it states one; --rss-bound overrides. */
function rssBound(): { mb: number; source: string } | undefined {
  const given = opt('rss-bound', '')
  if (given !== '') return { mb: Number(given), source: '--rss-bound' }
  const readme = readFileSync(join(REPO, 'README.md'), 'utf8')
  const m = /RSS[^.\n]{0,100}?(?:under|below|at most|within|<=|≤)\s*~?\s*([\d,.]+)\s*(MB|MiB|GB|GiB)/i.exec(readme)
  if (m === null) return undefined
  const value = Number((m[1] as string).replace(/,/g, '')) * (/^G/i.test(m[2] as string) ? 1024 : 1)
  return { mb: value, source: `README: "${m[0].slice(0, 60)}"` }
}

/** Total bytes of each file under `dir`, by path relative to it (pxebox's state after the run). */
function stateFiles(dir: string): [string, number][] {
  const out: [string, number][] = []
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name)
      if (e.isDirectory()) walk(p)
      else if (e.isFile()) out.push([relative(dir, p), statSync(p).size])
    }
  }
  if (existsSync(dir)) walk(dir)
  return out.sort((x, y) => y[1] - x[1]).slice(0, 6)
}

/** Starts `argv` in namespace `ns` (ip netns exec execs, so the child's PID is the program's). */
function startIn(children: Set<ChildProcess>, ns: string, argv: string[], stdout: 'pipe' | number): ChildProcess {
  const child = spawn('ip', ['netns', 'exec', ns, ...argv], { stdio: ['ignore', stdout, stdout === 'pipe' ? 'inherit' : stdout] })
  children.add(child)
  child.on('exit', () => children.delete(child))
  return child
}

/** Collects a child's stdout. */
function output(child: ChildProcess): () => string {
  let out = ''
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()))
  return () => out
}

/** SIGTERM, then SIGKILL after `ms`; resolves with how long it took, or undefined when it had to be killed. */
async function stop(child: ChildProcess, ms: number): Promise<number | undefined> {
  if (child.exitCode !== null || child.signalCode !== null) return 0
  const t0 = performance.now()
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  child.kill('SIGTERM')
  const timer = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), ms))
  if ((await Promise.race([exited, timer])) === 'timeout') {
    child.kill('SIGKILL')
    await exited
    return undefined
  }
  return performance.now() - t0
}

/** A started pxebox: its PID, how it died (if it ended without being asked), and a clean stop. */
interface RunningPxebox {
  pid: number
  /** Times a death from `t0` (performance.now() when the floods start). */
  startClock(t0: number): void
  death(): RunData['death']
  /** SIGTERM, SIGKILL after 5 s; says how it went. */
  stop(): Promise<string>
}

/** Starts pxebox in `ns`, stdout and stderr to `logFile` (the log the report measures, and a crash's stack trace). */
async function startPxebox(children: Set<ChildProcess>, ns: string, config: string, logFile: string, nodeArgs: string[]): Promise<RunningPxebox> {
  const fd = openSync(logFile, 'a')
  const child = startIn(children, ns, [process.execPath, ...nodeArgs, PXEBOX, 'serve', '--config', config], fd)
  closeSync(fd)
  let death: RunData['death']
  let stopping = false
  let t0 = performance.now()
  child.on('exit', (code, signal) => {
    if (!stopping) death = { atS: (performance.now() - t0) / 1000, how: signal !== null ? `signal ${signal}` : `exit code ${code}` }
  })
  for (let i = 0; ; i++) {
    if (/pxebox .* ready/.test(readFileSync(logFile, 'utf8'))) break
    if (death !== undefined || i > 300) throw new Error(`pxebox did not start (${death?.how ?? 'no "ready" after 30 s'}):\n${readFileSync(logFile, 'utf8')}`)
    await new Promise((r) => setTimeout(r, 100))
  }
  return {
    pid: child.pid as number,
    startClock: (t) => void (t0 = t),
    death: () => death,
    async stop() {
      stopping = true
      const took = await stop(child, 5000)
      return took === undefined ? 'did not exit within 5 s (SIGKILLed)' : `exited in ${took.toFixed(0)} ms`
    },
  }
}

/** The valid client's arguments. */
function clientArgs(s: Settings, boot: { file: string; local: string }): AbuseClientArgs {
  return {
    mode: s.mode,
    server: NET.server,
    httpPort: NET.httpPort,
    clientIp: NET.client,
    mac: CLIENT_MAC,
    bootFile: boot.file,
    bootFileLocal: boot.local,
    intervalMs: num('interval', 1000),
  }
}

/** The last line of a helper's output as JSON ({} when it printed none: killed before its summary). */
function lastJson<T>(text: string): Partial<T> {
  try {
    return JSON.parse(text.trim().split('\n').at(-1) || '{}') as Partial<T>
  } catch {
    return {}
  }
}

function plan(s: Settings, syslog: { port: number } | undefined): { a: FloodArgs; b: FloodArgs; lines: string[]; skipped: string[] } {
  const on = (f: FloodName): boolean => !s.without.has(f)
  const durationMs = s.durationS * 1000
  const a: FloodArgs = { server: NET.server, httpPort: NET.httpPort, durationMs, macByte: 'a1' }
  const b: FloodArgs = { server: NET.server, httpPort: NET.httpPort, durationMs, macByte: 'b1' }
  const lines: string[] = []
  const skipped: string[] = [...s.without].map((f) => `${f} (--without)`)
  if (on('sse')) {
    a.sse = { idle: num('sse-idle', 300), reading: num('sse-reading', 50), reconnectMs: 1000 }
    lines.push(`sse: ${a.sse.idle} /v1/events streams that never read + ${a.sse.reading} that read (reopened 1 s after a close)`)
  }
  if (on('discover')) {
    a.discover = { rate: num('discover-rate', 300) }
    lines.push(`discover: ${a.discover.rate} DISCOVERs/s, each from a new MAC`)
  }
  if (on('spoof')) {
    b.spoof = { rate: num('spoof-rate', 50) }
    lines.push(`spoof: ${b.spoof.rate}/s OFFERs and ACKs broadcast from a rogue "server", random server ids`)
  }
  if (on('tftp')) {
    const rate = num('tftp-rate', 19)
    const spread = Math.min(num('tftp-spread', 4), NET.attackerB.length - 1)
    const spreadRate = num('tftp-spread-rate', 10)
    b.tftpHold = {
      sources: NET.attackerB.slice(0, spread + 1).map((address, i) => ({ address, rate: i === 0 ? rate : spreadRate })),
      maxOpenPerSource: 520,
      file: 'snponly.efi',
    }
    lines.push(`tftp: RRQs with timeout=255 never ACKed, ${rate}/s from ${NET.attackerB[0]} and ${spreadRate}/s from each of ${spread} more addresses (<= 520 held per address)`)
  }
  if (on('labels')) {
    a.labels = { rate: num('labels-rate', 10), length: num('label-length', 4000) }
    lines.push(`labels: ${a.labels.rate}/s /ipxe?mac=<new>&uuid=<new>&hostname=<${a.labels.length} chars>&serial=<${a.labels.length} chars>`)
  }
  if (on('port0')) {
    a.port0 = { intervalMs: num('port0-interval', 2000) }
    lines.push(`port0: a TFTP WRQ / bad-mode RRQ / malformed RRQ from UDP source port 0 every ${a.port0.intervalMs} ms (raw socket)`)
  }
  if (on('syslog')) {
    if (syslog === undefined) skipped.push('syslog: this build has no syslog receiver (no `syslog` key in config/pxebox.schema.json)')
    else {
      a.syslog = { rate: num('syslog-rate', 1000), port: syslog.port }
      lines.push(`syslog: ${a.syslog.rate} lines/s to UDP ${syslog.port}`)
    }
  }
  return { a, b, lines, skipped }
}

async function main(): Promise<number> {
  if (process.getuid?.() !== 0) throw new Error('bench/abuse needs root (network namespaces, raw sockets, port 67)')
  const mode = opt('mode', 'proxy')
  if (mode !== 'proxy' && mode !== 'authoritative') throw new Error(`--mode proxy|authoritative, got ${mode}`)
  const without = new Set(opt('without', '').split(',').filter((x) => x !== ''))
  for (const f of without) if (!(FLOOD_NAMES as readonly string[]).includes(f)) throw new Error(`--without: unknown flood ${f} (${FLOOD_NAMES.join(', ')})`)
  const s: Settings = {
    durationS: num('duration', 600),
    mode,
    without,
    tag: opt('tag', `pxab${process.pid % 10000}`),
    sampleS: Math.max(1, num('sample', 5)),
    rssAbortMb: num('rss-abort-mb', 2048),
  }
  const ns = namespaces(s.tag)
  const work = mkdtempSync(join(tmpdir(), 'pxebox-bench-abuse-'))
  const { children } = benchCleanup(Object.values(ns), () => rmSync(work, { recursive: true, force: true }))

  const loadStart = loadavg()[0] ?? NaN
  const syslog = syslogSupport()
  const boot = tftpRoot(work)
  const config = join(work, 'pxebox.yaml')
  writeFileSync(config, pxeboxConfig(s, work, boot.root, syslog?.config ?? []))
  const floods = plan(s, syslog)
  if (floods.b.tftpHold !== undefined) floods.b.tftpHold.file = boot.file
  makeTopology(s.tag)
  await bridgeUp(s.tag)

  const logFile = join(work, 'pxebox.log')
  const log = watchLog(logFile)
  const profileDir = opt('profile', '')
  const probeFile = join(work, 'loop-probe.json')
  if (profileDir !== '') {
    mkdirSync(profileDir, { recursive: true })
    process.env['PXEBOX_LOOP_PROBE_FILE'] = probeFile // ip netns exec passes our environment on
  }
  const nodeArgs = profileDir === '' ? [] : ['--cpu-prof', '--cpu-prof-dir', profileDir, '--import', LOOP_PROBE]
  const pxebox = await startPxebox(children, ns.server, config, logFile, nodeArgs)

  const clock = performance.now()
  const elapsed = (): number => (performance.now() - clock) / 1000
  pxebox.startClock(clock)
  const samples: Sample[] = []
  const sample = (note?: string): void =>
    void samples.push({ t: elapsed(), rssMb: rssMb(pxebox.pid), cpuMs: cpuMs(pxebox.pid), log: log.poll(), ...(note === undefined ? {} : { note }) })
  sample()
  const start = (name: string, n: string, argv: string[]) => {
    const child = startIn(children, n, [process.execPath, ...argv], 'pipe')
    return { name, child, out: output(child) }
  }
  const client = start('valid client', ns.client, [CLIENT, JSON.stringify(clientArgs(s, boot))])
  // An attacker with every one of its floods turned off is not started.
  const attackers = [
    ['attacker A', ns.a, floods.a],
    ['attacker B', ns.b, floods.b],
  ] as const
  const flooders = attackers.filter(([, , f]) => FLOOD_KEYS.some((k) => f[k] !== undefined)).map(([name, n, f]) => start(name, n, [FLOODS, JSON.stringify(f)]))
  const helpers = [client, ...flooders]
  process.stderr.write(`abuse bench: ${s.mode} mode, ${s.durationS} s, pxebox PID ${pxebox.pid}, namespaces ${Object.values(ns).join(' ')}\n`)

  // Sample until the duration is up, pxebox has been dead for 10 s (so the client's failed attempts show), or it
  // grows past the safety cap (the box is shared). A helper that exits on its own is a broken bench.
  let stoppedEarly: string | undefined
  while (elapsed() < s.durationS) {
    await new Promise((r) => setTimeout(r, Math.min(s.sampleS, s.durationS - elapsed()) * 1000))
    sample()
    const last = samples.at(-1) as Sample
    process.stderr.write(`  ${last.t.toFixed(0)} s: RSS ${Number.isFinite(last.rssMb) ? `${last.rssMb.toFixed(0)} MB` : 'gone'}, ${client.out().split('\n').length - 1} client attempts\n`)
    const broken = helpers.find((h) => h.child.exitCode !== null || h.child.signalCode !== null)
    if (broken !== undefined) throw new Error(`the ${broken.name} exited during the run (${broken.child.exitCode ?? broken.child.signalCode}); see its stderr above`)
    const death = pxebox.death()
    if (death !== undefined && elapsed() - death.atS >= 10) {
      stoppedEarly = `pxebox ended at ${death.atS.toFixed(1)} s (${death.how}); floods stopped 10 s later`
      break
    }
    if (last.rssMb > s.rssAbortMb) {
      stoppedEarly = `pxebox's RSS reached ${last.rssMb.toFixed(0)} MB, over the safety cap (--rss-abort-mb ${s.rssAbortMb}) on this shared machine`
      break
    }
  }
  const ranS = elapsed()
  await stop(client.child, 2000)
  await Promise.all(flooders.map((f) => stop(f.child, 10_000)))
  if (pxebox.death() === undefined) sample('the floods had stopped')
  const records = client
    .out()
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as AttemptRecord | CutShortRecord)
  const attempts = records.filter((r): r is AttemptRecord => !('cutShort' in r))
  const cutShort = records.find((r): r is CutShortRecord => 'cutShort' in r)
  const results: FloodResults = Object.assign({}, ...flooders.map((f) => lastJson<FloodResults>(f.out())))
  const death = pxebox.death()
  const stopText = death !== undefined ? 'n/a (already dead)' : await pxebox.stop()
  log.poll()
  const bound = rssBound()
  const data: RunData = {
    mode: s.mode,
    durationS: s.durationS,
    ranS,
    floods: floods.lines,
    skipped: floods.skipped,
    clientMac: CLIENT_MAC,
    bootFile: { name: boot.file, bytes: statSync(boot.local).size },
    attempts,
    ...(cutShort === undefined ? {} : { cutShort }),
    samples,
    log: { total: log.total(), topWarnings: log.topWarnings(5), tail: log.tail(12) },
    ...(death === undefined ? {} : { death }),
    ...(stoppedEarly === undefined ? {} : { stoppedEarly }),
    stop: stopText,
    stateFiles: stateFiles(join(work, 'data')),
    results,
    machine: { cpus: cpus().length, loadStart, loadEnd: loadavg()[0] ?? NaN, node: process.version, build: buildName() },
    ...(bound === undefined ? {} : { rssBound: bound }),
    warnPerMinute: num('warn-per-min', 60),
  }
  console.log(report(data).join('\n'))
  if (profileDir !== '') console.log(profileLines(profileDir, probeFile, pxebox.pid).join('\n'))
  const keep = opt('keep-log', '')
  if (keep !== '') {
    copyFileSync(logFile, keep)
    console.log(`pxebox's log: ${keep}`)
  }
  return death === undefined ? 0 : 1
}

/** The stall profile of a --profile run: the loop probe's figures and the CPU profile's stalls. */
function profileLines(dir: string, probeFile: string, pid: number): string[] {
  const out: string[] = [`profile (pxebox under --cpu-prof, in ${dir}):`]
  if (!existsSync(probeFile)) return [...out, '  loop probe: no result (pxebox did not exit normally)']
  const probe = JSON.parse(readFileSync(probeFile, 'utf8')) as LoopProbeResult
  const late = probe.stalls.map((x) => x.lateMs).sort((a, b) => b - a)
  out.push(
    `  loop probe: event-loop delay p50 ${probe.delay.p50} ms, p99 ${probe.delay.p99} ms, p99.9 ${probe.delay.p999} ms, max ${probe.delay.max} ms; ` +
      `${late.length} ticks late > ${probe.thresholdMs} ms (> 50 ms: ${late.filter((x) => x > 50).length}, > 100 ms: ${late.filter((x) => x > 100).length}), longest ${late.slice(0, 8).join(', ')} ms`,
  )
  const prof = readdirSync(dir).filter((f) => f.endsWith('.cpuprofile') && f.includes(`.${pid}.`))
  if (prof.length === 0) out.push(`  no CPU profile of PID ${pid} in ${dir}`)
  for (const f of prof) out.push(...stallLines(stallProfile(join(dir, f), probe.stalls, probe.thresholdMs)).map((l) => `  ${l}`))
  return out
}

/** Which pxebox this is: the tree's commit (and whether it has local changes). */
function buildName(): string {
  try {
    const head = execFileSync('git', ['-C', REPO, 'log', '-1', '--format=%h %s'], { stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim()
    const dirty = execFileSync('git', ['-C', REPO, 'status', '--porcelain', '--untracked-files=no'], { stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim() !== ''
    return `pxebox at ${head.slice(0, 90)}${dirty ? ' (with local changes)' : ''}`
  } catch {
    return 'pxebox (not a git checkout)'
  }
}

try {
  process.exitCode = await main()
} catch (err) {
  process.stderr.write(`abuse bench failed: ${(err as Error).stack ?? String(err)}\n`)
  process.exit(1) // the 'exit' handler stops the helpers and removes the namespaces
}
