/**
 * Fleet lists at 100,000 machines on a 3-member etcd (issues 16 and 17): the time to list every machine record
 * through the etcd store (etcd-range.ts: pages at one revision), to fill a new outage-layer copy with them
 * (mirror-fill.ts), and to read a page of 1,000 from that copy as `GET /v1/fleet/machines` does; with the longest the
 * event loop went without a turn during each (what DHCP, TFTP and HTTP would have waited).
 *   node dist/bench/fleet-list.js [--records 100000] [--timelines] [--port 23200]
 * `--timelines` adds each machine's timeline document (~1.8 KB, one UEFI install), as the daemon writes it, to the
 * fill. The cluster is test/helpers/etcd.ts's (fsync on, members on 127.0.0.1). A benchmark, not a test.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { openEtcdStore, openMirroredStore, type StoreOp } from '../src/store/index.js'
import { runEtcdCluster } from '../test/helpers/etcd.js'
import { watchLoopGaps } from './lib/loop-gap.js'

const { values: args } = parseArgs({ options: { records: { type: 'string', default: '100000' }, timelines: { type: 'boolean', default: false }, port: { type: 'string', default: '23200' } } })
const records = Number(args.records)

const mac = (i: number) => `52:54:00:${((i >> 16) & 255).toString(16).padStart(2, '0')}:${((i >> 8) & 255).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`
const record = (i: number) => ({
  mac: mac(i),
  site: `site-${i % 3}`,
  appliance: `pxe-${i % 3}`,
  hostname: `node-${String(i).padStart(6, '0')}.rack${i % 40}.example.net`,
  serial: `SN${String(i * 7919).padStart(12, '0')}`,
  arch: 'x86_64-efi',
  group: `rack${i % 40}-workers`,
  profile: 'flatcar-stable-install',
  ips: [`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`],
  labels: { rack: `r${i % 40}`, role: 'worker' },
  first_seen: '2026-11-20T08:00:00.000Z',
  last_seen: '2026-11-28T08:00:00.000Z',
  attempt_started: '2026-11-28T08:00:00.000Z',
  last_progress: '2026-11-28T08:09:00.000Z',
  boots: 1,
  installed_at: '2026-11-28T08:10:00.000Z',
  installs: 1,
  reinstalls: 0,
})
const STAGES = ['dhcp', 'tftp', 'script', 'kernel', 'initrd', 'ignition', 'installed']
const timeline = (i: number) => ({
  timeline: STAGES.flatMap((stage, s) => [0, 1].map((k) => ({ time: new Date(Date.parse('2026-11-28T08:00:00.000Z') + (s * 2 + k) * 20_000).toISOString(), stage, step: k ? 'done' : 'start', outcome: 'ok', detail: { ip: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, file: `/assets/flatcar/${stage}` } }))),
  history: [],
})

/** Runs `fn`, timing it and the longest event-loop gap meanwhile. */
async function measure<T>(fn: () => Promise<T>): Promise<{ value: T; ms: number; stallMs: number }> {
  const stop = watchLoopGaps()
  const t0 = performance.now()
  const value = await fn()
  const ms = performance.now() - t0
  return { value, ms, stallMs: stop() }
}

const cluster = await runEtcdCluster(Number(args.port))
const dir = mkdtempSync(join(tmpdir(), 'pxebox-fleet-list-'))
try {
  const store = await openEtcdStore({ endpoints: cluster.endpoints, prefix: '/bench' })
  const ops: StoreOp[] = []
  for (let i = 0; i < records; i++) {
    ops.push({ op: 'put', kind: 'machine', id: mac(i), value: record(i) })
    if (args.timelines) ops.push({ op: 'put', kind: 'machine-timeline', id: mac(i), value: timeline(i) })
  }
  // Batches of 128 (etcd --max-txn-ops) under 1.5 MiB (--max-request-bytes), 8 at once.
  const per = args.timelines ? 64 : 128
  let next = 0
  const written = await measure(() =>
    Promise.all(
      Array.from({ length: 8 }, async () => {
        while (next < ops.length) {
          const from = next
          next += per
          await store.batch(ops.slice(from, from + per))
        }
      }),
    ),
  )
  const bytes = ops.reduce((n, op) => n + (op.op === 'put' ? JSON.stringify(op.value).length : 0), 0)
  console.log(`wrote ${ops.length} documents (${(bytes / 1024 / 1024).toFixed(1)} MiB of values) in ${(written.ms / 1000).toFixed(1)} s`)

  const rss0 = process.memoryUsage().rss
  const listed = await measure(() => store.list('machine'))
  console.log(`etcd list('machine'): ${listed.value.length} records in ${listed.ms.toFixed(0)} ms; longest loop gap ${listed.stallMs.toFixed(0)} ms; RSS +${((process.memoryUsage().rss - rss0) / 1024 / 1024).toFixed(0)} MB`)

  const remote = await openEtcdStore({ endpoints: cluster.endpoints, prefix: '/bench' })
  const kinds = args.timelines ? ['machine', 'machine-timeline'] : ['machine']
  const filled = await measure(() => openMirroredStore({ remote, file: join(dir, 'store-cache.db'), queued: kinds, kinds }))
  const mirror = filled.value
  console.log(`a new copy filled (${kinds.join(', ')}): ${filled.ms.toFixed(0)} ms; longest loop gap ${filled.stallMs.toFixed(0)} ms`)

  const pages: number[] = []
  let after: string | undefined
  let stall = 0
  do {
    const p = await measure(() => mirror.page('machine', { limit: 1000, ...(after === undefined ? {} : { after }) }))
    pages.push(p.ms)
    stall = Math.max(stall, p.stallMs)
    after = p.value.next
  } while (after !== undefined)
  pages.sort((a, b) => a - b)
  console.log(`copy pages of 1,000: ${pages.length} pages, p50 ${pages[Math.floor(pages.length / 2)]!.toFixed(1)} ms, max ${pages[pages.length - 1]!.toFixed(1)} ms; longest loop gap ${stall.toFixed(0)} ms`)
  console.log(`load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}`)
  await mirror.close()
  await store.close()
} finally {
  await cluster.close()
  rmSync(dir, { recursive: true, force: true })
}
