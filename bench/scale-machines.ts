/**
 * bench/scale.sh's machine half (issue 16): machine records at 100 and at 100,000, kept in the Store (SQLite).
 *   node dist/bench/scale-machines.js [--sizes 100,100000] [--events 1000] [--baseline DIR] [--unclean]
 * For each size: the cost of recording one boot event until it is in the store (record + the write of that machine's
 * row: median and p99 over --events events, each to a random machine), then a restart in a fresh process: the time
 * and CPU from opening the store until the machine store is open (ready to serve: the boot path has every record),
 * then the time until every timeline is read too (they are read in slices after open), the longest event-loop stall
 * meanwhile, and the RSS and heap per record once all is in. `--baseline DIR` runs the same against a built checkout
 * of the release before the Store (its dist/, machines.json rewritten whole per flush). The restart follows a clean
 * close, so the store skips its quick_check (store/sqlite-clean.ts); `--unclean` removes the clean-close mark first,
 * as after a crash or kill, so the restart pays the check.
 * A benchmark, not a test: it prints a table and asserts nothing.
 */
import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { parseArgs } from 'node:util'
import type { BootEvent } from '../src/machines/events.js'

const { values: args } = parseArgs({
  options: {
    sizes: { type: 'string', default: '100,100000' },
    events: { type: 'string', default: '1000' },
    baseline: { type: 'string' },
    unclean: { type: 'boolean', default: false },
    // Internal: the restart measurement in a fresh process.
    load: { type: 'string' },
    impl: { type: 'string' },
  },
})

const mac = (i: number) => `52:54:${[i >>> 24, (i >>> 16) & 255, (i >>> 8) & 255, i & 255].map((b) => b.toString(16).padStart(2, '0')).join(':')}`

/** A UEFI install as the services record it: 7 events, about 2 KB of record. */
function boot(m: string, ip: string, start: number): BootEvent[] {
  const at = (k: number) => new Date(start + k * 2000).toISOString()
  const d = { arch: 7, arch_label: 'x86_64', client_class: 'PXEClient', group: 'rack1' }
  return [
    { time: at(0), kind: 'dhcp', mac: m, ip: '0.0.0.0', step: 'offer', outcome: 'ok', detail: { ...d, boot_file: 'ipxe.efi' } },
    { time: at(1), kind: 'dhcp', mac: m, ip, step: 'ack', outcome: 'ok', detail: { ...d, port: 4011, boot_file: 'ipxe.efi' } },
    { time: at(2), kind: 'tftp', mac: m, ip, step: 'file', outcome: 'ok', detail: { file: 'ipxe.efi', bytes: 1_050_000 } },
    { time: at(3), kind: 'http', mac: m, ip, step: 'ipxe', outcome: 'ok', detail: { path: `/ipxe?mac=${m}&uuid=8f0e0c4e-0000-4000-8000-${m.replace(/:/g, '')}`, status: 200, group: 'rack1', profile: 'worker' } },
    { time: at(4), kind: 'http', mac: m, ip, step: 'kernel', outcome: 'ok', detail: { path: '/assets/fcos/kernel', status: 200 } },
    { time: at(5), kind: 'http', mac: m, ip, step: 'initrd', outcome: 'ok', detail: { path: '/assets/fcos/initramfs.img', status: 200 } },
    { time: at(6), kind: 'http', mac: m, ip, step: 'ignition', outcome: 'ok', detail: { path: `/ignition?mac=${m}`, status: 200 } },
  ]
}

type Impl = 'store' | 'baseline'
const repo = fileURLToPath(new URL('../..', import.meta.url))

/** openMachineStore over `dir` for this build (the Store) or the baseline's (machines.json). */
async function open(impl: Impl, dir: string, maxMachines: number) {
  if (impl === 'store') {
    const { openEmbeddedStore } = await import('../src/store/index.js')
    const { openMachineStore } = await import('../src/machines/store.js')
    const store = await openEmbeddedStore(dir)
    const machines = await openMachineStore({ store, maxMachines, flushDelayMs: 3_600_000 })
    return { machines, close: async () => (await machines.close(), await store.close()) }
  }
  const mod = (await import(pathToFileURL(join(args.baseline!, 'dist/src/machines/store.js')).href)) as { openMachineStore(o: object): Promise<{ record(e: BootEvent): void; flush(): Promise<void>; close(): Promise<void>; list(): unknown[]; timelines?: Promise<void> }> }
  const machines = await mod.openMachineStore({ dir: join(dir, 'machines'), maxMachines, flushDelayMs: 3_600_000 })
  return { machines, close: () => machines.close() }
}

const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))]!

async function measure(impl: Impl, size: number, events: number) {
  const dir = mkdtempSync(join(tmpdir(), 'pxebox-scale-machines-'))
  try {
    const start = Date.now() - 3_600_000
    const a = await open(impl, dir, size)
    for (let i = 0; i < size; i++) for (const e of boot(mac(i), `10.${(i >>> 16) & 255}.${(i >>> 8) & 255}.${i & 255}`, start)) a.machines.record(e)
    await a.machines.flush()
    // One boot event, then the flush that makes it durable: what a boot event costs pxebox at this size.
    const costs: number[] = []
    let x = 12345
    for (let k = 0; k < events; k++) {
      x = (x * 1103515245 + 12345) & 0x7fffffff
      const i = x % size
      const e = boot(mac(i), `10.${(i >>> 16) & 255}.${(i >>> 8) & 255}.${i & 255}`, Date.now())[4]!
      const t0 = process.hrtime.bigint()
      a.machines.record(e)
      await a.machines.flush()
      costs.push(Number(process.hrtime.bigint() - t0) / 1e6)
    }
    await a.close()
    costs.sort((p, q) => p - q)
    if (args.unclean) rmSync(join(dir, 'pxebox.db.clean'), { force: true })
    const self = fileURLToPath(import.meta.url)
    const child = spawnSync(process.execPath, ['--expose-gc', self, '--load', dir, '--impl', impl, '--sizes', String(size), ...(args.baseline ? ['--baseline', args.baseline] : [])], { encoding: 'utf8' })
    if (child.status !== 0) throw new Error(`restart measurement failed: ${child.stderr}`)
    const load = JSON.parse(child.stdout) as { loadMs: number; loadCpuMs: number; allMs: number; allCpuMs?: number; stallMs: number; rssMb: number; heapPerRecord: number; records: number }
    return { impl, size, median: pct(costs, 50), p99: pct(costs, 99), ...load }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

if (args.load !== undefined) {
  const heap0 = process.memoryUsage().heapUsed
  const t0 = process.hrtime.bigint()
  const cpu0 = process.cpuUsage()
  const a = await open(args.impl as Impl, args.load, Number(args.sizes))
  const loadMs = Number(process.hrtime.bigint() - t0) / 1e6
  const cpu = process.cpuUsage(cpu0)
  // The longest gap of a 1 ms timer while the timelines are read: what a boot request could wait meanwhile.
  let stallMs = 0
  let last = performance.now()
  const probe = setInterval(() => {
    const t = performance.now()
    stallMs = Math.max(stallMs, t - last - 1)
    last = t
  }, 1)
  await a.machines.timelines
  clearInterval(probe)
  const allMs = Number(process.hrtime.bigint() - t0) / 1e6
  const allCpu = process.cpuUsage(cpu0)
  const records = a.machines.list().length
  global.gc?.()
  const heapPerRecord = (process.memoryUsage().heapUsed - heap0) / Math.max(1, records)
  process.stdout.write(JSON.stringify({ loadMs, loadCpuMs: (cpu.user + cpu.system) / 1000, allMs, allCpuMs: (allCpu.user + allCpu.system) / 1000, stallMs, rssMb: process.memoryUsage().rss / 2 ** 20, heapPerRecord, records }))
  await a.close()
} else {
  const sizes = args.sizes.split(',').map(Number)
  const rows = []
  for (const impl of (args.baseline ? ['baseline', 'store'] : ['store']) as Impl[]) {
    for (const size of sizes) {
      const r = await measure(impl, size, Number(args.events))
      rows.push(r)
      console.error(`${impl} ${size}: done`)
    }
  }
  console.log(`machine records (${repo}): one boot event recorded and written, restart load in a fresh process${args.unclean ? ' (after an unclean stop: quick_check)' : ''}`)
  console.log(`load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}`)
  console.log('impl       records   event median ms   event p99 ms   ready ms (CPU)   timelines ms (CPU)   stall ms   RSS MB   heap B/record   loaded')
  for (const r of rows) {
    console.log(
      `${r.impl.padEnd(9)}  ${String(r.size).padStart(7)}   ${r.median.toFixed(2).padStart(15)}   ${r.p99.toFixed(2).padStart(12)}   ${`${r.loadMs.toFixed(0)} (${r.loadCpuMs.toFixed(0)})`.padStart(14)}   ${`${r.allMs.toFixed(0)} (${r.allCpuMs === undefined ? '?' : r.allCpuMs.toFixed(0)})`.padStart(18)}   ${r.stallMs.toFixed(0).padStart(8)}   ${r.rssMb.toFixed(0).padStart(6)}   ${r.heapPerRecord.toFixed(0).padStart(13)}   ${String(r.records).padStart(6)}`,
    )
  }
}
