/**
 * Boot storm bench (issue 18): a rack powering on at once, booting through pxebox (the real daemon, proxyDHCP, its
 * TFTP and HTTP) and through the reference, dnsmasq (proxyDHCP and its TFTP) plus nginx, in interleaved rounds
 * (pxebox, reference, pxebox, ...) so a busy moment on a shared machine lands on both alike. Each machine runs the
 * OVMF-then-iPXE flow of bench/storm-clients.ts: proxy OFFER and the 4011 ACK, TFTP of snponly.efi lock-step at
 * blksize 1468, iPXE's DHCP, /boot.ipxe and /ipxe, an 8 MiB kernel and a 32 MiB initrd.
 *
 * Per measurement, fresh namespaces: the server side alone in one (`bs0`, 10.213.64.1/20), the machines in another
 * (`bc0`, 10.213.64.2), joined by a veth. Both sides serve the same files from the same folders.
 *
 * Prints per size: boots/min (first power-on to last byte), per-boot p50/p99, each step's p50, server CPU per boot
 * (user+system from /proc: pxebox; dnsmasq + nginx's master and workers), peak RSS during the storm (VmHWM reset as
 * it starts; summed for the reference), and how busy the rest of the machine was (CPU used by neither the servers nor
 * the machines, in cores).
 * Medians over rounds, with their spread [lowest-highest].
 *
 * Run (root): bench/storm.sh [--sizes 50:1,200:2,1000:10] [--rounds 3] [--only pxebox|reference]
 *   [--pxebox DIST/src/main.js]: run that build of the daemon (e.g. main's, for a before/after)
 *   [--node-flags "FLAGS"]: Node's flags for the daemon (default: those debian/pxebox starts it with)
 *   [--cpu-prof DIR]: V8 CPU profiles of the pxebox daemon there, and its top self-time functions printed
 *   [--warmup N]: machines booted before each measurement on both sides (default 5); 200 measures a warm daemon
 *   [--repeat K]: instead of rounds, each side serves K storms of the same machines (same MACs) in a row, one
 *     start of its servers: boots/min, CPU per boot, that storm's peak RSS and RSS after it, to show whether
 *     memory stays flat as the same rack boots again and again (issue 18)
 *   [--pause S]: with --repeat, S seconds of quiet between storms (default 0, back to back). V8 gives memory back
 *     (its memory reducer's compacting GC) only after ~8 s with little allocation, which back-to-back storms never leave
 */
import { execFileSync, spawnSync, type ChildProcess } from 'node:child_process'
import { copyFile, mkdir, mkdtemp, open, readdir, rm, writeFile } from 'node:fs/promises'
import { closeSync, existsSync, openSync, readFileSync, writeFileSync } from 'node:fs'
import { randomBytes } from 'node:crypto'
import { cpus, loadavg, tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { NetnsLab } from '../test/helpers/netns.js'
import { cpuMs, rssMb, threadCpuMs } from './lib/proc-stats.js'
import { launcherFlags } from './lib/launcher.js'
import { dnsmasqArgs, NET, pxeboxConfig } from './lib/dhcp-servers.js'
import { nginxArgv, nginxConfig, nginxWorkers } from './lib/nginx.js'
import { selfTimes } from './lib/cpu-profile.js'
import { waitForLog } from './lib/bench-lab.js'
import { STEPS, type StormClientsArgs, type StormClientsResult } from './storm-clients.js'
import { num, opt } from './lib/args.js'

const here = dirname(fileURLToPath(import.meta.url))
// --pxebox: another build's dist/src/main.js, to compare two versions of the daemon with the same bench.
const PXEBOX = opt('pxebox', join(here, '..', 'src', 'main.js'))
const CLIENTS = join(here, 'storm-clients.js')
// The daemon runs as deployed: with the launcher's V8 heap sizing, unless --node-flags says otherwise.
const NODE_FLAGS = opt('node-flags', launcherFlags()).split(' ').filter((f) => f !== '')
const SIZES = opt('sizes', '50:1,200:2,1000:10').split(',').map((s) => {
  const [n, ramp] = s.split(':')
  return { machines: Number(n), rampS: Number(ramp ?? 1) }
})
const ROUNDS = Number(opt('rounds', '3'))
const ONLY = opt('only', '')
const PROFILE_DIR = opt('cpu-prof', '')
const REPEAT = Number(opt('repeat', '0'))
const PAUSE_S = num('pause', 0)
/**
 * Machines booted before each measurement, on both sides. 5 warms page cache and ARP; an appliance that has been up
 * for a while has also had its JavaScript compiled by V8's optimizing tier, which a few hundred boots bring about
 * (the second of repeated storms cost ~30% less CPU per boot than the first): --warmup 200 measures that daemon.
 */
const WARMUP = Math.max(1, Number(opt('warmup', '5')))
/** pxebox's own threads (named in native/sendfile.c and native/tftp-runner.c), whose CPU the table shows apart. */
const NAMED_THREADS = ['pxebox-sender', 'pxebox-tftp'] as const
const HTTP_PORT = 8080
/** Concurrent TFTP transfers both servers allow (dnsmasq's default is 50, pxebox's 500): more than a rack. */
const TFTP_MAX = 2000
const CLIENT_IP = '10.213.64.2'
/**
 * Machine i's address: 10.213.65.1 upward in the bench's /20 (3,810 addresses; larger racks reuse them in turn).
 */
function machineIp(i: number): string {
  const n = i % (15 * 254)
  return `10.213.${65 + Math.floor(n / 254)}.${(n % 254) + 1}`
}
const KERNEL = '/assets/storm/kernel'
const INITRD = '/assets/storm/initrd'
// bench/storm.sh names the namespaces after its shell, so its trap can remove them when this process was killed.
const tag = opt('tag', `pxst${process.pid % 10000}`)
const SERVER_NS = `${tag}s`
const CLIENT_NS = `${tag}c`

type Side = 'pxebox' | 'reference'

/** One measurement's figures. */
interface Run {
  clients: StormClientsResult
  /** Server CPU (user + system) during the storm, ms. */
  serverCpuMs: number
  /** Peak resident memory during the storm, MB (VmHWM reset as it starts; summed over the reference's processes). */
  peakRssMb: number
  /** Resident memory right after the storm, MB (VmRSS; summed likewise). */
  rssMb: number
  /** CPU used by everything else on the machine during the storm, in cores. */
  othersCores: number
  /** pxebox only: the server CPU split by thread (event loop, asset sender, TFTP runner, V8 helpers and libuv's pool), ms. */
  threads?: { main: number; sender: number; tftp: number; other: number }
  /** The reference only: dnsmasq's CPU (DHCP and TFTP) apart from nginx's (master and workers), ms. */
  dnsmasqCpuMs?: number
}

/** Busy CPU time of the whole machine so far, ms (/proc/stat: all but idle and iowait). */
function machineBusyMs(): number {
  const f = (readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '').split(/\s+/).slice(1).map(Number)
  const total = f.reduce((a, b) => a + b, 0)
  return ((total - (f[3] ?? 0) - (f[4] ?? 0)) * 1000) / 100
}

/**
 * Starts the process's peak RSS over from its RSS now (proc(5): `5` to clear_refs), so each storm's peak is its own.
 * VmHWM otherwise keeps the highest of the start and of every storm before: over repeated storms it showed the
 * running maximum, which rises with noise alone.
 */
function resetPeakRss(pid: number): void {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5')
  } catch {
    // gone: its peak reads 0 below
  }
}

/** VmHWM (peak RSS since the last resetPeakRss), MB, or 0 when the process is gone. */
function peakRssMb(pid: number): number {
  try {
    const m = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
    return m ? Number(m[1]) / 1024 : 0
  } catch {
    return 0
  }
}

/** The files both sides serve: the TFTP root with snponly.efi, the kernel and initrd, and nginx's two scripts. */
async function makeFiles(work: string): Promise<{ tftpRoot: string; assets: string; scripts: string }> {
  const tftpRoot = join(work, 'tftp')
  const assets = join(work, 'assets')
  const scripts = join(work, 'scripts')
  await mkdir(tftpRoot, { recursive: true })
  await mkdir(join(assets, 'storm'), { recursive: true })
  await mkdir(scripts, { recursive: true })
  // Debian's snponly.efi where installed (the size firmware fetches), else random bytes of that size.
  const snp = [join(here, '..', '..', 'firmware', 'snponly.efi'), '/usr/lib/ipxe/snponly.efi'].find(existsSync)
  if (snp !== undefined) await copyFile(snp, join(tftpRoot, 'snponly.efi'))
  else await writeFile(join(tftpRoot, 'snponly.efi'), randomBytes(173_792))
  for (const [name, mib] of [['kernel', 8], ['initrd', 32]] as const) {
    const fh = await open(join(assets, 'storm', name), 'w', 0o644)
    for (let i = 0; i < mib; i++) await fh.write(randomBytes(1 << 20))
    await fh.close()
  }
  const base = `http://${NET.server}:${HTTP_PORT}`
  await writeFile(join(scripts, 'boot.ipxe'), `#!ipxe\nchain ${base}/ipxe?mac=\${mac:hexhyp}&uuid=\${uuid}&arch=\${buildarch}&platform=\${platform}\n`)
  await writeFile(join(scripts, 'ipxe'), `#!ipxe\nkernel ${base}${KERNEL} initrd=main\ninitrd --name main ${base}${INITRD}\nboot\n`)
  return { tftpRoot, assets, scripts }
}


async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  child.kill('SIGTERM')
  await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))])
  if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
}

/** Starts one side's processes in SERVER_NS; resolves once they serve. */
async function startSide(lab: NetnsLab, side: Side, files: Awaited<ReturnType<typeof makeFiles>>, work: string): Promise<{ procs: ChildProcess[]; pids: () => number[] }> {
  const log = join(work, `${side}.log`)
  const fd = openSync(log, 'a')
  const procs: ChildProcess[] = []
  try {
    if (side === 'pxebox') {
      const config = join(work, 'pxebox.yaml')
      const extra = [
        'profiles:',
        '  storm:',
        '    boot:',
        `      kernel: ${KERNEL}`,
        `      initrd: ["--name main ${INITRD}"]`,
        '      args: [initrd=main, console=ttyS0]',
        'groups:',
        '  - id: rack',
        '    profile: storm',
      ]
      // As many transfers at once as dnsmasq's --tftp-max below: at the default 500, a 1,000-machine storm had 390
      // machines refused (ERROR "Server busy"), which the simulated firmware does not retry.
      await writeFile(config, pxeboxConfig({ mode: 'proxy', probe: false, dataDir: join(work, 'data'), assetsDir: files.assets, ignitionDir: files.assets, tftpRoot: files.tftpRoot, tftpMaxTransfers: TFTP_MAX, tracking: true, extra }))
      const prof = PROFILE_DIR ? ['--cpu-prof', `--cpu-prof-dir=${PROFILE_DIR}`] : []
      const child = lab.spawn(SERVER_NS, [process.execPath, ...NODE_FLAGS, ...prof, PXEBOX, 'serve', '--config', config], { stdio: ['ignore', fd, fd] })
      procs.push(child)
      await waitForLog(log, /pxebox .* ready/, child, 30_000)
      return { procs, pids: () => [child.pid!] }
    }
    const dnsmasq = lab.spawn(
      SERVER_NS,
      [
        'dnsmasq',
        ...dnsmasqArgs({ mode: 'proxy', probe: false, dir: work, log }),
        '--enable-tftp',
        `--tftp-root=${files.tftpRoot}`,
        // dnsmasq's default is 50 transfers at once: a rack is more, and pxebox is not held to 50 either.
        `--tftp-max=${TFTP_MAX}`,
        '--dhcp-userclass=set:ipxe,iPXE',
        `--dhcp-boot=tag:ipxe,http://${NET.server}:${HTTP_PORT}/boot.ipxe`,
      ],
      { stdio: ['ignore', fd, fd] },
    )
    procs.push(dnsmasq)
    const conf = join(work, 'nginx.conf')
    const locations = { '/assets/': `alias ${files.assets}/;`, '= /boot.ipxe': `alias ${files.scripts}/boot.ipxe;`, '= /ipxe': `alias ${files.scripts}/ipxe;` }
    // Debian's nginx.conf runs one worker per core.
    await writeFile(conf, nginxConfig({ dir: work, listen: `${NET.server}:${HTTP_PORT}`, locations, workers: 'auto' }))
    const nginx = lab.spawn(SERVER_NS, nginxArgv(work, conf), { stdio: ['ignore', fd, fd] })
    procs.push(nginx)
    await waitForLog(log, /DHCP, proxy on subnet/, dnsmasq, 20_000)
    for (let i = 0; i < 100 && nginxWorkers(nginx.pid!).length === 0; i++) await new Promise((r) => setTimeout(r, 50))
    return { procs, pids: () => [dnsmasq.pid!, nginx.pid!, ...nginxWorkers(nginx.pid!)] }
  } finally {
    closeSync(fd)
  }
}

/**
 * Where pxebox's memory is, from its own /metrics (prom-client's process and V8 figures): the JS heap used and
 * reserved, memory V8 tracks outside it (Buffers), so RSS beyond these is the native side (SQLite, the addon, malloc).
 */
async function heapFigures(lab: NetnsLab): Promise<string> {
  try {
    const { stdout } = await lab.exec(CLIENT_NS, ['curl', '-sS', '-m', '10', `http://${NET.server}:${HTTP_PORT}/metrics`])
    const mb = (name: string) => Number(new RegExp(`^${name} (\\S+)`, 'm').exec(stdout)?.[1] ?? NaN) / 1048576
    return `; JS heap used ${mb('nodejs_heap_size_used_bytes').toFixed(0)} of ${mb('nodejs_heap_size_total_bytes').toFixed(0)} MB, external ${mb('nodejs_external_memory_bytes').toFixed(0)} MB`
  } catch (err) {
    return `; /metrics unreadable (${(err as Error).message.split('\n')[0]})`
  }
}

function runClients(lab: NetnsLab, args: StormClientsArgs): Promise<{ result: StormClientsResult }> {
  return new Promise((resolve, reject) => {
    const child = lab.spawn(CLIENT_NS, [process.execPath, CLIENTS, JSON.stringify(args)], { stdio: ['ignore', 'pipe', 'inherit'] })
    let out = ''
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()))
    child.on('exit', (code) => {
      if (code === 0) resolve({ result: JSON.parse(out.trim()) as StormClientsResult })
      else reject(new Error(`storm clients exited ${code}`))
    })
  })
}

/**
 * One measurement on fresh namespaces: the side's servers, a 5-machine warm-up, then `storms` storms one after the
 * other (the same machines each time when more than one), one Run each.
 */
async function measure(side: Side, machines: number, rampS: number, round: number, files: Awaited<ReturnType<typeof makeFiles>>, storms = 1): Promise<Run[]> {
  const work = await mkdtemp(join(tmpdir(), 'pxebox-bench-storm-'))
  const lab = new NetnsLab()
  try {
    await lab.namespace(SERVER_NS)
    await lab.namespace(CLIENT_NS)
    await lab.veth({ ns: CLIENT_NS, ifname: 'bc0', cidr: `${CLIENT_IP}/${NET.prefix}`, peerNs: SERVER_NS, peerIfname: NET.iface, defaultRoute: true })
    await lab.exec(SERVER_NS, ['ip', 'addr', 'add', `${NET.server}/${NET.prefix}`, 'dev', NET.iface])
    const clientIps = Array.from({ length: Math.min(machines, 15 * 254) }, (_, i) => machineIp(i))
    const batch = join(work, 'addresses.ip')
    await writeFile(batch, clientIps.map((a) => `addr add ${a}/${NET.prefix} dev bc0\n`).join(''))
    await lab.exec(CLIENT_NS, ['ip', '-batch', batch])
    // pxebox only sees an interface once the kernel's link watch marks it running (up to ~1 s after `link set up`).
    for (let i = 0; i < 50 && !/state UP/.test((await lab.exec(SERVER_NS, ['ip', '-o', 'link', 'show', NET.iface])).stdout); i++) await new Promise((r) => setTimeout(r, 100))
    const { procs, pids } = await startSide(lab, side, files, work)
    process.stderr.write(`round ${round + 1}: ${side}, ${machines} machines over ${rampS} s...\n`)
    const base: Omit<StormClientsArgs, 'count' | 'rampMs' | 'macPrefix'> = { server: NET.server, httpPort: HTTP_PORT, clientIps, bootFile: 'snponly.efi', kernel: KERNEL, initrd: INITRD, giveUpMs: 120_000 + machines * 200 }
    // Warm-up (JIT, page cache, ARP) by machines the storm never uses, one after another.
    await runClients(lab, { ...base, count: WARMUP, rampMs: (WARMUP - 1) * 20, macPrefix: 'a5', clientIps: [CLIENT_IP] })
    const cpu = () => pids().reduce((sum, pid) => sum + (cpuMs(pid) || 0), 0)
    const rss = () => pids().reduce((sum, pid) => sum + (rssMb(pid) || 0), 0)
    const runs: Run[] = []
    for (let storm = 0; storm < storms; storm++) {
      if (storms > 1) process.stderr.write(`  storm ${storm + 1} of ${storms}\n`)
      if (storm > 0 && PAUSE_S > 0) {
        await new Promise((r) => setTimeout(r, PAUSE_S * 1000))
        process.stderr.write(`  after ${PAUSE_S} s of quiet: RSS ${rss().toFixed(0)} MB${side === 'pxebox' ? await heapFigures(lab) : ''}\n`)
      }
      for (const pid of pids()) resetPeakRss(pid)
      const cpu0 = cpu()
      const threads0 = side === 'pxebox' ? threadCpuMs(pids()[0] as number, NAMED_THREADS) : undefined
      // The reference's pids() start with dnsmasq's.
      const dnsmasq0 = side === 'reference' ? cpuMs(pids()[0] as number) : undefined
      const busy0 = machineBusyMs()
      const t0 = performance.now()
      // Repeated storms: the same MACs every time (the records are updated, not added); rounds: new machines each.
      const { result } = await runClients(lab, { ...base, count: machines, rampMs: rampS * 1000, macPrefix: (0xc0 + (storms > 1 ? 0 : round)).toString(16) })
      const serverCpuMs = cpu() - cpu0
      const othersMs = machineBusyMs() - busy0 - serverCpuMs - result.clientCpuMs
      const wallMs = performance.now() - t0
      const peak = pids().reduce((sum, p) => sum + peakRssMb(p), 0)
      const now = rss()
      const run: Run = { clients: result, serverCpuMs, peakRssMb: peak, rssMb: now, othersCores: Math.max(0, othersMs) / Math.max(1, wallMs) }
      if (dnsmasq0 !== undefined) run.dnsmasqCpuMs = cpuMs(pids()[0] as number) - dnsmasq0
      if (threads0 !== undefined) {
        const t1 = threadCpuMs(pids()[0] as number, NAMED_THREADS)
        const named = (n: string) => (t1.named[n] ?? NaN) - (threads0.named[n] ?? NaN)
        run.threads = { main: t1.main - threads0.main, sender: named('pxebox-sender'), tftp: named('pxebox-tftp'), other: t1.other - threads0.other }
      }
      runs.push(run)
      // Each storm's figures as it ends: a long --repeat run cut short still shows how memory moved.
      if (storms > 1) {
        const heap = side === 'pxebox' ? await heapFigures(lab) : ''
        process.stderr.write(
          `  storm ${storm + 1}: ${side} booted ${result.booted}, ${bootsPerMin(run).toFixed(0)} boots/min, CPU per boot ${cpuPerBoot(run).toFixed(1)} ms, peak RSS ${peak.toFixed(0)} MB, RSS after ${now.toFixed(0)} MB${heap}\n`,
        )
      }
    }
    for (const p of procs.reverse()) await stopChild(p)
    return runs
  } finally {
    await lab.cleanup()
    await rm(work, { recursive: true, force: true })
  }
}

const median = (xs: number[]): number => {
  const s = xs.filter(Number.isFinite).sort((a, b) => a - b)
  if (s.length === 0) return NaN
  const m = s.length >> 1
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2
}
/** "median [lowest-highest]" with `digits` decimals. */
const spread = (xs: number[], digits: number): string => {
  const s = xs.filter(Number.isFinite)
  if (s.length === 0) return 'n/a'
  const f = (n: number) => n.toFixed(digits)
  return s.length === 1 ? f(s[0] as number) : `${f(median(s))} [${f(Math.min(...s))}-${f(Math.max(...s))}]`
}
const bootsPerMin = (r: Run): number => (r.clients.booted * 60_000) / Math.max(1, r.clients.wallMs)
const cpuPerBoot = (r: Run): number => r.serverCpuMs / Math.max(1, r.clients.booted)

function printSize(machines: number, rampS: number, runs: Record<Side, Run[]>): void {
  const px = runs.pxebox
  const rf = runs.reference
  const ratio = (a: number, b: number) => (Number.isFinite(a / b) ? `${(a / b).toFixed(2)}x` : 'n/a')
  console.log(`\n## ${machines} machines powered on over ${rampS} s (${Math.max(px.length, rf.length)} rounds)`)
  console.log('figure | pxebox | dnsmasq+nginx | pxebox/reference (medians)')
  console.log('--- | --- | --- | ---')
  const row = (name: string, f: (r: Run) => number, digits: number) =>
    console.log(`${name} | ${spread(px.map(f), digits)} | ${spread(rf.map(f), digits)} | ${ratio(median(px.map(f)), median(rf.map(f)))}`)
  row('booted', (r) => r.clients.booted, 0)
  row('boots/min', bootsPerMin, 0)
  row('per-boot p50 s', (r) => r.clients.boot.p50 / 1000, 2)
  row('per-boot p99 s', (r) => r.clients.boot.p99 / 1000, 2)
  for (const step of STEPS) row(`  ${step} p50 ms`, (r) => r.clients.steps[step].p50, 1)
  for (const step of STEPS) row(`  ${step} p99 ms`, (r) => r.clients.steps[step].p99, 1)
  row('server CPU per boot ms', cpuPerBoot, 1)
  // Where pxebox's CPU goes: the event loop (DHCP, TFTP requests, HTTP routing, records), the sender thread (asset
  // bodies: sendfile in the kernel, as nginx's workers), the TFTP runner (lock-step blocks), and V8's helpers with
  // libuv's pool (GC, compiling, file opens).
  const perBoot = (r: Run, part: 'main' | 'sender' | 'tftp' | 'other') => (r.threads === undefined ? NaN : r.threads[part] / Math.max(1, r.clients.booted))
  // The reference alike: dnsmasq (DHCP, TFTP) and nginx (the scripts and the asset bodies, by sendfile).
  const dnsmasqPerBoot = (r: Run) => (r.dnsmasqCpuMs ?? NaN) / Math.max(1, r.clients.booted)
  const nginxPerBoot = (r: Run) => (r.serverCpuMs - (r.dnsmasqCpuMs ?? NaN)) / Math.max(1, r.clients.booted)
  console.log(
    `  by process, per boot ms | event loop ${spread(px.map((r) => perBoot(r, 'main')), 1)}, asset sender ${spread(px.map((r) => perBoot(r, 'sender')), 1)}, ` +
      `TFTP runner ${spread(px.map((r) => perBoot(r, 'tftp')), 1)}, ` +
      `V8 helpers + libuv pool ${spread(px.map((r) => perBoot(r, 'other')), 1)} | dnsmasq ${spread(rf.map(dnsmasqPerBoot), 1)}, nginx ${spread(rf.map(nginxPerBoot), 1)} | |`,
  )
  row('peak RSS MB', (r) => r.peakRssMb, 0)
  row('retransmits', (r) => r.clients.retransmits, 0)
  row('rest of the machine busy, cores', (r) => r.othersCores, 2)
  const failures = [...px, ...rf].flatMap((r, i) => Object.entries(r.clients.failures).map(([k, n]) => `${i < px.length ? 'pxebox' : 'reference'} ${k} x${n}`))
  if (failures.length > 0) console.log(`failures: ${failures.join('; ')}`)
}

/** --repeat: one row per storm of the same machines, each side's servers started once. */
function printRepeat(machines: number, rampS: number, runs: Record<Side, Run[]>): void {
  console.log(`\n## ${machines} machines powered on over ${rampS} s, the same machines ${REPEAT} times against one start of each side`)
  console.log('storm | pxebox booted | boots/min | CPU per boot ms | peak RSS MB | RSS after MB | dnsmasq+nginx booted | boots/min | CPU per boot ms | peak RSS MB | RSS after MB | rest busy, cores (pxebox / reference)')
  console.log('--- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | ---')
  const cells = (r: Run | undefined) => (r === undefined ? ['', '', '', '', ''] : [String(r.clients.booted), bootsPerMin(r).toFixed(0), cpuPerBoot(r).toFixed(1), r.peakRssMb.toFixed(0), r.rssMb.toFixed(0)])
  for (let i = 0; i < REPEAT; i++) {
    const px = runs.pxebox[i]
    const rf = runs.reference[i]
    console.log([String(i + 1), ...cells(px), ...cells(rf), `${px?.othersCores.toFixed(2) ?? '-'} / ${rf?.othersCores.toFixed(2) ?? '-'}`].join(' | '))
  }
  for (const side of ['pxebox', 'reference'] as const) {
    const rs = runs[side]
    if (rs.length < 2) continue
    const first = rs[0] as Run
    const last = rs[rs.length - 1] as Run
    console.log(`${side}: peak RSS ${first.peakRssMb.toFixed(0)} MB in storm 1, ${last.peakRssMb.toFixed(0)} MB in storm ${rs.length} (each storm's own: ${rs.map((r) => r.peakRssMb.toFixed(0)).join(', ')}); RSS after the storms ${spread(rs.map((r) => r.rssMb), 0)} MB`)
    const failures = rs.flatMap((r, i) => Object.entries(r.clients.failures).map(([k, n]) => `storm ${i + 1} ${k} x${n}`))
    if (failures.length > 0) console.log(`${side} failures: ${failures.join('; ')}`)
  }
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('bench/storm needs root (network namespaces, ports 67 and 69)')
  const work = await mkdtemp(join(tmpdir(), 'pxebox-bench-storm-files-'))
  try {
    const files = await makeFiles(work)
    const dnsmasqVersion = execFileSync('dnsmasq', ['--version']).toString().split('\n')[0] ?? 'dnsmasq'
    // nginx -v prints to stderr.
    const nginxVersion = spawnSync('nginx', ['-v'], { encoding: 'utf8' }).stderr.trim()
    console.log(`# Boot storm bench: pxebox vs ${dnsmasqVersion.replace(/ Copyright.*/, '')} + ${nginxVersion}; node ${process.version}; ${cpus().length} CPUs, load ${loadavg()[0]?.toFixed(1)} at start`)
    console.log('each machine: proxy OFFER + 4011 ACK, TFTP snponly.efi lock-step blksize 1468, iPXE DHCP (OFFER + 4011 ACK), /boot.ipxe + /ipxe, 8 MiB kernel, 32 MiB initrd')
    console.log(`pxebox: node ${[...NODE_FLAGS, PXEBOX].join(' ')}`)
    // bench/storm.sh raises the kernel's neighbour table limits for the run: below the storm's size, ARP thrash is
    // what gets measured.
    const neigh = (n: number) => readFileSync(`/proc/sys/net/ipv4/neigh/default/gc_thresh${n}`, 'utf8').trim()
    console.log(`kernel neighbour table: gc_thresh2 ${neigh(2)}, gc_thresh3 ${neigh(3)} (entries for every machine, all namespaces together)`)
    console.log('median [lowest-highest] over interleaved rounds; boots/min from first power-on to the last byte; CPU = user+system of the server processes during the storm')
    console.log(`warm-up before each measurement: ${WARMUP} machines on each side`)
    for (const { machines, rampS } of SIZES) {
      const runs: Record<Side, Run[]> = { pxebox: [], reference: [] }
      for (let round = 0; round < (REPEAT > 0 ? 1 : ROUNDS); round++) {
        for (const side of ['pxebox', 'reference'] as const) {
          if (ONLY !== '' && ONLY !== side) continue
          runs[side].push(...(await measure(side, machines, rampS, round, files, Math.max(1, REPEAT))))
        }
      }
      if (REPEAT > 0) printRepeat(machines, rampS, runs)
      else printSize(machines, rampS, runs)
    }
    console.log(`\nload ${loadavg()[0]?.toFixed(1)} at end`)
    if (PROFILE_DIR) {
      for (const f of (await readdir(PROFILE_DIR)).filter((n) => n.endsWith('.cpuprofile'))) {
        const { busyMs, idleMs, functions } = selfTimes(join(PROFILE_DIR, f))
        console.log(`\n## pxebox CPU profile ${f}: ${(busyMs / 1000).toFixed(1)} s busy, ${(idleMs / 1000).toFixed(1)} s idle on the main thread; top self time`)
        for (const fn of functions.slice(0, 25)) console.log(`${(fn.share * 100).toFixed(1).padStart(5)}%  ${fn.ms.toFixed(0).padStart(6)} ms  ${fn.name}  ${fn.where}`)
      }
    }
  } finally {
    await rm(work, { recursive: true, force: true })
  }
}

process.on('SIGINT', () => process.exit(130))
process.on('SIGTERM', () => process.exit(143))
await main()
