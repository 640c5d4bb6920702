/**
 * Catalog scale benchmark (issue 16): the real daemon (`dist/src/main.js serve`) over a Matchbox folder of 1,000,
 * 10,000 and 100,000 groups (one per machine, `hostname`/`ssh_key` metadata, 10 profiles, 3 shared Butane templates:
 * test/helpers/scale-fixture.ts). Per size it prints:
 *   validate   `pxebox validate` wall time
 *   start      spawn until `/ipxe` answers 200 for a machine of the catalog
 *   RSS        the daemon's resident memory once serving (after the first reload)
 *   reload     SIGHUP until the daemon logs the reload done
 *   write      one API group write (PUT /v1/groups/<id>, replacing its profile) until `/ipxe` answers with it
 *   CPU        validate's and the daemon's CPU time (user + system) for validate, start and one reload: on a shared
 *              machine wall times move with the load average, CPU time much less
 *   /ipxe and proxy offer p50/p99/max: measured while a full reload runs (requests one after another, each on a new
 *              connection; PXE DISCOVERs from bench/lib/dhcp-clients.ts, one at a time)
 * Topology as bench/dhcp.ts: the daemon alone in a server namespace (`bs0`, 10.213.64.1/20), the clients in a client
 * namespace joined by a veth; nothing leaves those namespaces.
 *
 * Run (root): bench/scale.sh [--sizes 1000,10000,100000] [--keep DIR] [--pxebox PATH] [--profile DIR]
 *   --keep DIR: keep the generated folders there for reruns; --pxebox: another build's dist/src/main.js (before/after)
 *   --profile DIR: `validate` and the daemon run under --cpu-prof (profiles in DIR), the daemon with the event-loop
 *     probe (bench/lib/loop-probe.ts); after each size the functions with most self time in validate and in the
 *     daemon, and the loop stalls during the measured reload with what ran in them (bench/lib/stall-profile.ts).
 *     Profiling costs CPU: compare profiled runs with profiled runs.
 */
import { spawn, execFileSync, spawnSync, type ChildProcess } from 'node:child_process'
import { existsSync, mkdirSync, openSync, closeSync, readFileSync } from 'node:fs'
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { cpus, loadavg, tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { DhcpClientsArgs, DhcpClientsResult, Percentiles } from './lib/dhcp-clients.js'
import type { ScaleProbeArgs, WriteResult } from './lib/scale-probe.js'
import { NET } from './lib/dhcp-servers.js'
import { benchCleanup } from './lib/bench-lab.js'
import { selfTimes } from './lib/cpu-profile.js'
import type { LoopProbeResult } from './lib/loop-probe.js'
import { stallLines, stallProfile } from './lib/stall-profile.js'
import { scaleGroup, scaleMac, writeScaleMatchboxDir } from '../test/helpers/scale-fixture.js'
import { opt } from './lib/args.js'

const here = dirname(fileURLToPath(import.meta.url))
// --pxebox: another build's dist/src/main.js, for a before/after table.
const PXEBOX_ARG = process.argv.indexOf('--pxebox')
const PXEBOX = PXEBOX_ARG >= 0 ? process.argv[PXEBOX_ARG + 1]! : join(here, '..', 'src', 'main.js')
const CLIENTS = join(here, 'lib', 'dhcp-clients.js')
const PROBE = join(here, 'lib', 'scale-probe.js')
const LOOP_PROBE = join(here, 'lib', 'loop-probe.js')
const SIZES = opt('sizes', '1000,10000,100000').split(',').map(Number)
const KEEP = opt('keep', '')
const PROFILE = opt('profile', '')
const TOKEN = 'scale-bench-token-0123456789'

const tag = `pxsc${process.pid % 100000}`
const SERVER_NS = `${tag}s`
const CLIENT_NS = `${tag}c`
const { children, cleanup } = benchCleanup([SERVER_NS, CLIENT_NS])
const ip = (...args: string[]): void => void execFileSync('ip', args, { stdio: 'inherit' })

async function topology(): Promise<void> {
  cleanup()
  for (const ns of [SERVER_NS, CLIENT_NS]) {
    ip('netns', 'add', ns)
    ip('-n', ns, 'link', 'set', 'lo', 'up')
  }
  ip('-n', CLIENT_NS, 'link', 'add', 'bc0', 'type', 'veth', 'peer', 'name', 'bs0', 'netns', SERVER_NS)
  ip('-n', SERVER_NS, 'addr', 'add', `${NET.server}/${NET.prefix}`, 'dev', 'bs0')
  ip('-n', CLIENT_NS, 'addr', 'add', `10.213.64.2/${NET.prefix}`, 'dev', 'bc0')
  ip('-n', CLIENT_NS, 'link', 'set', 'bc0', 'up')
  ip('-n', SERVER_NS, 'link', 'set', 'bs0', 'up')
  ip('-n', CLIENT_NS, 'route', 'add', 'default', 'dev', 'bc0')
  for (let i = 0; i < 50; i++) {
    const up = (ns: string, dev: string): boolean => /state UP/.test(execFileSync('ip', ['-n', ns, '-o', 'link', 'show', dev]).toString())
    if (up(SERVER_NS, 'bs0') && up(CLIENT_NS, 'bc0')) return
    await new Promise((r) => setTimeout(r, 100))
  }
  throw new Error('veth did not come up')
}

/** Run a helper in the client namespace; its one JSON line. */
function inClient<T>(script: string, args: unknown): Promise<T> {
  return new Promise((resolve, reject) => {
    const child = spawn('ip', ['netns', 'exec', CLIENT_NS, process.execPath, script, JSON.stringify(args)], { stdio: ['ignore', 'pipe', 'inherit'] })
    children.add(child)
    let out = ''
    child.stdout.on('data', (d: Buffer) => (out += d.toString()))
    child.on('exit', (code) => {
      children.delete(child)
      if (code === 0) resolve(JSON.parse(out.trim()) as T)
      else reject(new Error(`${script} exited ${code}`))
    })
  })
}
const probe = <T>(args: ScaleProbeArgs): Promise<T> => inClient<T>(PROBE, args)
const dhcp = (args: DhcpClientsArgs): Promise<DhcpClientsResult> => inClient<DhcpClientsResult>(CLIENTS, args)

/** CPU time (user + system, ms) a process has used so far, from /proc/<pid>/stat (USER_HZ = 100). */
function cpuMs(pid: number | undefined): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return ((Number(f[11]) + Number(f[12])) * 1000) / 100
}

function rssMb(pid: number | undefined): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  return m ? Number(m[1]) / 1024 : NaN
}

async function fixture(root: string, n: number): Promise<string> {
  const dir = join(root, `matchbox-${n}`)
  if (!existsSync(join(dir, 'complete'))) {
    await rm(dir, { recursive: true, force: true })
    process.stderr.write(`generating ${n} groups...\n`)
    await writeScaleMatchboxDir(dir, n)
    await writeFile(join(dir, 'complete'), '')
  }
  return dir
}

function config(work: string, matchbox: string): string {
  return [
    `interface: ${NET.iface}`,
    `address: ${NET.server}`,
    'log_level: info',
    `data_dir: ${JSON.stringify(join(work, 'data'))}`,
    `assets_dir: ${JSON.stringify(join(work, 'assets'))}`,
    `matchbox_dir: ${JSON.stringify(matchbox)}`,
    'dhcp:',
    '  mode: proxy',
    'tracking:',
    '  enabled: false',
    'tftp:',
    '  enabled: false',
    'http:',
    '  enabled: true',
    `  listen: "${NET.server}:8080"`,
    'api:',
    `  token: ${TOKEN}`,
    '',
  ].join('\n')
}

/** One size's figures. */
interface Row {
  groups: number
  validateMs: number
  validateCpuMs: number
  startMs: number
  startCpuMs: number
  reloadCpuMs: number
  rssMb: number
  reloadMs: number
  writeMs: number
  /** The PUT's own round trip, and how many GETs it took to see the change. */
  writePutMs: number
  writeGets: number
  ipxe: Percentiles
  offer: Percentiles
  offersLost: number
}

async function waitReloads(log: string, count: number, child: ChildProcess, ms: number): Promise<void> {
  const end = Date.now() + ms
  while (Date.now() < end) {
    const text = await readFile(log, 'utf8').catch(() => '')
    if ((text.match(/SIGHUP: (config reloaded|reload failed)/g) ?? []).length >= count) return
    if (child.exitCode !== null) throw new Error(`pxebox exited:\n${text.slice(-2000)}`)
    await new Promise((r) => setTimeout(r, 5))
  }
  throw new Error('reload did not finish')
}

/** CLOCK_MONOTONIC in microseconds: the clock of the loop probe's stalls and of V8 CPU profiles. */
const monotonicUs = (): number => Number(process.hrtime.bigint() / 1000n)

/** --profile: what validate and the daemon spent their CPU on, and the loop stalls during the measured reload. */
function printProfiles(n: number, dir: string, probeFile: string, fromUs: number, toUs: number): void {
  const out: string[] = [`profiles of ${n} groups (in ${dir}):`]
  for (const name of ['validate', 'serve']) {
    const file = join(dir, `${name}.cpuprofile`)
    if (!existsSync(file)) {
      out.push(`  ${name}: no CPU profile`)
      continue
    }
    const p = selfTimes(file)
    out.push(`  ${name}: busy ${(p.busyMs / 1000).toFixed(1)} s; most self time:`)
    for (const f of p.functions.slice(0, 25)) out.push(`    ${f.ms.toFixed(0).padStart(6)} ms ${(100 * f.share).toFixed(1).padStart(5)}%  ${f.name} ${f.where}`)
  }
  if (!existsSync(probeFile)) out.push('  loop probe: no result (pxebox did not exit normally)')
  else {
    const probe = JSON.parse(readFileSync(probeFile, 'utf8')) as LoopProbeResult
    const stalls = probe.stalls.filter((s) => s.endUs >= fromUs && s.endUs <= toUs)
    const prof = stallProfile(join(dir, 'serve.cpuprofile'), stalls, probe.thresholdMs)
    out.push('  during the measured reload:', ...stallLines(prof).map((l) => `    ${l}`))
  }
  process.stderr.write(`${out.join('\n')}\n`)
}

async function measure(n: number, root: string): Promise<Row> {
  const matchbox = await fixture(root, n)
  const work = await mkdtemp(join(tmpdir(), 'pxebox-scale-'))
  try {
    await mkdir(join(work, 'assets'), { recursive: true })
    const file = join(work, 'pxebox.yaml')
    await writeFile(file, config(work, matchbox))
    await topology()

    const profileDir = PROFILE === '' ? '' : join(PROFILE, String(n))
    const probeFile = join(work, 'loop-probe.json')
    if (profileDir !== '') {
      mkdirSync(profileDir, { recursive: true })
      process.env['PXEBOX_LOOP_PROBE_FILE'] = probeFile // ip netns exec passes our environment on
    }
    const profiled = (name: string): string[] => (profileDir === '' ? [] : ['--cpu-prof', '--cpu-prof-dir', profileDir, '--cpu-prof-name', `${name}.cpuprofile`])

    const v0 = performance.now()
    const v = spawnSync('/usr/bin/time', ['-f', 'cpu %U %S', 'ip', 'netns', 'exec', SERVER_NS, process.execPath, ...profiled('validate'), PXEBOX, 'validate', '--config', file], {
      encoding: 'utf8',
      env: { ...process.env, PXEBOX_LOOP_PROBE_FILE: '' },
    })
    const validateMs = performance.now() - v0
    if (v.status !== 0) throw new Error(`validate failed: ${v.stderr}`)
    const times = /cpu ([\d.]+) ([\d.]+)/.exec(v.stderr)
    const validateCpuMs = times ? (Number(times[1]) + Number(times[2])) * 1000 : NaN

    const log = join(work, 'pxebox.log')
    const fd = openSync(log, 'a')
    const s0 = performance.now()
    const loopProbe = profileDir === '' ? [] : ['--import', LOOP_PROBE]
    const child = spawn('ip', ['netns', 'exec', SERVER_NS, process.execPath, ...profiled('serve'), ...loopProbe, PXEBOX, 'serve', '--config', file], { stdio: ['ignore', fd, fd] })
    closeSync(fd)
    children.add(child)
    const base = `http://${NET.server}:8080`
    const machine = Math.floor(n / 2)
    await probe({ mode: 'wait', url: `${base}/ipxe?mac=${scaleMac(machine)}`, timeoutMs: 300_000 })
    const startMs = performance.now() - s0
    const startCpuMs = cpuMs(child.pid)

    // A first reload alone: its duration, and the length of the measured window below.
    const r0 = performance.now()
    const c0 = cpuMs(child.pid)
    child.kill('SIGHUP')
    await waitReloads(log, 1, child, 300_000)
    const reloadMs = performance.now() - r0
    const reloadCpuMs = cpuMs(child.pid) - c0
    const rss = rssMb(child.pid)

    // The second reload with the boot path under measurement for as long as a reload takes.
    const window = Math.max(500, reloadMs)
    const streams = Promise.all([
      probe<Percentiles>({ mode: 'stream', url: `${base}/ipxe?mac=${scaleMac(machine + 1)}`, ms: window, stopFile: join(work, 'reloaded') }),
      dhcp({ count: Math.max(100, Math.round(window / 5)), concurrency: 1, exchange: 'offer', macPrefix: 'bd', timeoutMs: 5000 }),
    ])
    await new Promise((r) => setTimeout(r, 150)) // both clients started (node start-up in the namespace)
    const reloadFromUs = monotonicUs()
    child.kill('SIGHUP')
    // The /ipxe stream runs until this reload is done, however long it blocks.
    await waitReloads(log, 2, child, 600_000)
    const reloadToUs = monotonicUs()
    await writeFile(join(work, 'reloaded'), '')
    const [ipxe, offers] = await streams

    // One API write: a machine of the catalog moved to another profile through an API group of its own MAC... an
    // API group may not reuse a Matchbox id, so the write adds a group for a new machine, then replaces it.
    const extra = n + 1
    const body = (profile: string) => ({ ...scaleGroup(extra), id: 'api-written', profile })
    const url = `${base}/ipxe?mac=${scaleMac(extra)}`
    await probe<WriteResult>({ mode: 'write', url, put: `${base}/v1/groups/api-written`, token: TOKEN, body: body('profile1'), expect: 'kernel-1', timeoutMs: 120_000 })
    const write = await probe<WriteResult>({ mode: 'write', url, put: `${base}/v1/groups/api-written`, token: TOKEN, body: body('profile2'), expect: 'kernel-2', timeoutMs: 120_000 })

    child.kill('SIGTERM')
    await new Promise((r) => child.once('exit', r))
    if (profileDir !== '') printProfiles(n, profileDir, probeFile, reloadFromUs, reloadToUs)
    return { groups: n, validateMs, validateCpuMs, startMs, startCpuMs, reloadCpuMs, rssMb: rss, reloadMs, writeMs: write.ms, writePutMs: write.putMs, writeGets: write.gets, ipxe, offer: offers.offer, offersLost: offers.lost }
  } finally {
    cleanup()
    await rm(work, { recursive: true, force: true })
  }
}

const ms = (x: number): string => (x >= 1000 ? `${(x / 1000).toFixed(1)} s` : `${x.toFixed(1)} ms`)
const pct = (p: Percentiles): string => `${p.p50.toFixed(1)} / ${p.p99.toFixed(1)} / ${p.max.toFixed(1)}`

const loadAtStart = loadavg().map((x) => x.toFixed(1)).join(' ')
const root = KEEP || (await mkdtemp(join(tmpdir(), 'pxebox-scale-fixtures-')))
const rows: Row[] = []
try {
  for (const n of SIZES) {
    process.stderr.write(`measuring ${n} groups...\n`)
    rows.push(await measure(n, root))
  }
} finally {
  if (!KEEP) await rm(root, { recursive: true, force: true })
}
const head = ['groups', 'validate (CPU)', 'start: /ipxe answers (CPU)', 'RSS MB', 'full reload (CPU)', 'API write visible (PUT, GETs)', '/ipxe p50/p99/max ms during reload', 'offer p50/p99/max ms during reload (lost)']
console.log(`load average at the start: ${loadAtStart}, at the end: ${loadavg().map((x) => x.toFixed(1)).join(' ')} (${cpus().length} CPUs)`)
console.log([head.join(' | '), head.map(() => '---').join(' | ')].join('\n'))
for (const r of rows) {
  console.log([r.groups, `${ms(r.validateMs)} (${ms(r.validateCpuMs)})`, `${ms(r.startMs)} (${ms(r.startCpuMs)})`, r.rssMb.toFixed(0), `${ms(r.reloadMs)} (${ms(r.reloadCpuMs)})`, `${ms(r.writeMs)} (${ms(r.writePutMs)}, ${r.writeGets})`, pct(r.ipxe), `${pct(r.offer)} (${r.offersLost})`].join(' | '))
}
