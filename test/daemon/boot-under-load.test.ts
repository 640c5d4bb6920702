/**
 * Issue 18's acceptance test: boot work never waits behind bulk transfers. The real daemon serves a 200 MB asset over
 * loopback to curl, back to back at full speed, and to a rack of 32 slower clients at once, while a lock-step TFTP
 * transfer of 1 MiB (blksize 1468, as EDK2's MTFTP4 fetches a boot file) measures every block's round trip; the same
 * transfer measured before the downloads is the idle figure. The one full-speed download alone never stalled the loop
 * much (its socket drains a few MB at a time); the slow clients are the storm's case, a socket that drains a little,
 * often.
 * A lock-step client sends its next ACK only when the DATA arrives, so each block's round trip is what a PXE ROM
 * waits; in the issue's storm it grew ~5 ms a block behind asset sends on the one event loop.
 *
 * The bound is generous, since the machine is shared and both figures move with its load: during the downloads the
 * p95 block round trip may be at most max(5 x the idle p95, the idle p95 + 5 ms). Not a speed goal (bench/storm.sh
 * measures that): 5 ms a block is the stall the issue found, and at 715 blocks a boot file it is 3.6 s a machine.
 * p95, not p99: the p99 of 2,145 blocks is the 22nd worst, which on the shared 2-core test machine follows other
 * processes' scheduling (0.3-6.6 ms idle, up to 7.7 ms during the downloads at load 11, before and after the asset
 * sender alike), while a loop that makes blocks wait behind asset sends delays most of them.
 */
import t from 'tap'
import type { ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { mkdtemp, mkdir, open, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { runPxebox } from '../helpers/daemon.js'
import { onJsonLines } from '../helpers/json-lines.js'
import { NetnsLab, netnsUnavailable, tsNodeArgs } from '../helpers/netns.js'

const NS = 'bootload-d'
const PROBE = fileURLToPath(new URL('tftp-rtt-probe.ts', import.meta.url))
const ASSET_BYTES = 200 * 1024 * 1024
const TFTP_BYTES = 1024 * 1024

/** The slower clients downloading at the same time, and each one's rate. */
const SLOW_CLIENTS = 32
const SLOW_RATE = '4M'

const percentile = (values: number[], p: number): number => {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))] ?? NaN
}
const summary = (v: number[]): string =>
  `${v.length} blocks, p50 ${percentile(v, 50).toFixed(3)} ms, p95 ${percentile(v, 95).toFixed(3)} ms, p99 ${percentile(v, 99).toFixed(3)} ms, ` +
  `max ${Math.max(...v).toFixed(3)} ms`

/** Runs the probe child to its end: its JSON line (test/helpers/json-lines.ts), or its stderr when it printed none. */
function probeResult(child: ChildProcess): Promise<{ rtts: number[]; sha256: string[] }> {
  let result: Record<string, any> | undefined
  let err = ''
  onJsonLines(child.stdout, (line) => (result = line))
  child.stderr?.on('data', (d: Buffer) => (err += d.toString()))
  return new Promise((resolve, reject) => {
    child.on('close', (code) => {
      if (result === undefined) reject(new Error(`probe exited ${code} without a result; stderr:\n${err}`))
      else resolve(result as { rtts: number[]; sha256: string[] })
    })
  })
}

/** A curl fetching the asset over and over; each download that ends prints its status and size on stderr. */
function curlLoad(child: ChildProcess): { child: ChildProcess; firstLine: Promise<void>; lines: () => string[]; stop: () => Promise<void> } {
  let out = ''
  const ended = new Promise<void>((r) => child.on('close', () => r()))
  const firstLine = new Promise<void>((resolve) => {
    child.stderr?.on('data', (d: Buffer) => {
      out += d.toString()
      if (out.includes('\n')) resolve()
    })
    void ended.then(() => resolve())
  })
  return {
    child,
    firstLine,
    lines: () => out.split('\n').slice(0, -1),
    stop: async () => {
      child.kill('SIGKILL')
      await ended
    },
  }
}

/** CPU time (user + system) of a process's main thread so far, ms. */
const threadCpuMs = (pid: number): number =>
  readFileSync(`/proc/${pid}/task/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ').slice(11, 13).reduce((a, b) => a + Number(b), 0) * 10

t.test('a lock-step TFTP transfer keeps its per-block round trip near idle during a 200 MB asset download', { skip: (await netnsUnavailable()) ?? false }, async (t) => {
  const lab = new NetnsLab()
  const dir = await mkdtemp(join(tmpdir(), 'pxebox-bootload-'))
  t.teardown(async () => {
    await lab.cleanup()
    await rm(dir, { recursive: true, force: true })
  })
  await lab.namespace(NS)
  for (const sub of ['data', 'assets', 'firmware']) await mkdir(join(dir, sub))
  const bootFile = randomBytes(TFTP_BYTES)
  await writeFile(join(dir, 'firmware', 'boot.efi'), bootFile)
  // Sparse: the page cache serves it as any cached initrd, without writing 200 MB to the test machine's disk.
  const asset = await open(join(dir, 'assets', 'initrd.img'), 'w')
  await asset.truncate(ASSET_BYTES)
  await asset.close()
  const config = join(dir, 'config.yaml')
  // Port 8080 and TFTP's 69 in the test's own namespace, so no other test's daemon is in the way.
  await writeFile(
    config,
    `interface: lo\naddress: 127.0.0.1\ndata_dir: ./data\nassets_dir: ./assets\ndhcp: { mode: off }\ntftp: { root: ./firmware }\nhttp: { listen: "127.0.0.1:8080" }\n`,
  )

  const daemon = runPxebox(['serve', '--config', config], { netns: NS })
  t.teardown(() => daemon.kill())
  await daemon.waitFor(/pxebox \S+ ready/)

  const probe = () => probeResult(lab.spawn(NS, [process.execPath, ...tsNodeArgs(), PROBE, JSON.stringify({ host: '127.0.0.1', file: 'boot.efi', runs: 3 })]))
  const idle = await probe()
  t.comment(`idle: ${summary(idle.rtts)}`)

  // The asset again and again on one connection at full speed, so a 200 MB download runs for the whole TFTP
  // measurement; and a rack of slower clients (curl's --limit-rate) fetching it at once, whose sockets stay full: each
  // time one drains, the server has to notice and send more, which is where a storm's asset work comes from.
  const url = 'http://127.0.0.1:8080/assets/initrd.img?[1-10000]'
  const report = ['-w', '%{stderr}%{http_code} %{size_download}\\n']
  const fast = curlLoad(lab.spawn(NS, ['curl', '-sS', ...report, url], { stdio: ['ignore', 'ignore', 'pipe'] }))
  // One whole download first: the asset is in the page cache, and the path is known to work.
  await fast.firstLine
  const whole = `200 ${ASSET_BYTES}`
  t.equal(fast.lines()[0], whole, 'the asset downloads whole')
  const rack = curlLoad(
    lab.spawn(NS, ['curl', '-sS', '--no-progress-meter', '--limit-rate', SLOW_RATE, '-Z', '--parallel-max', String(SLOW_CLIENTS), ...report, url], {
      stdio: ['ignore', 'ignore', 'pipe'],
    }),
  )
  // The rack connects and fills its sockets.
  await new Promise((r) => setTimeout(r, 1000))
  const before = fast.lines().length
  const mainThreadMs = threadCpuMs(daemon.child.pid as number)
  const loaded = await probe()
  const daemonMs = threadCpuMs(daemon.child.pid as number) - mainThreadMs
  t.equal(fast.child.exitCode, null, 'the download was still running when the TFTP measurement ended')
  t.equal(rack.child.exitCode, null, 'and so were the slower clients')
  await fast.stop()
  await rack.stop()
  t.same([...fast.lines(), ...rack.lines()].filter((l) => l !== whole), [], 'every download that ended was whole')
  t.comment(
    `during the downloads (${fast.lines().length - before} more whole ones at full speed, ${SLOW_CLIENTS} at ${SLOW_RATE}B/s): ${summary(loaded.rtts)}; ` +
      `the daemon's main thread used ${daemonMs} ms of CPU meanwhile`,
  )

  const blocks = Math.ceil((TFTP_BYTES + 1) / 1468)
  t.equal(idle.rtts.length, 3 * blocks, 'every idle block was timed once')
  t.equal(loaded.rtts.length, 3 * blocks, 'every block during the downloads was timed once')
  t.ok([...idle.sha256, ...loaded.sha256].every((h) => h === idle.sha256[0]), 'every transfer is whole')

  const idleP95 = percentile(idle.rtts, 95)
  const bound = Math.max(5 * idleP95, idleP95 + 5)
  const loadedP95 = percentile(loaded.rtts, 95)
  t.ok(loadedP95 <= bound, `p95 block round trip during the downloads ${loadedP95.toFixed(3)} ms <= ${bound.toFixed(3)} ms (max(5 x idle p95, idle p95 + 5 ms))`)
})
