/**
 * Shared-file write benchmark (issue 17): time from an API-written file's new version (BootOverlay.putFile, what
 * `PUT /v1/ignition/:name` calls) to `/ignition` serving it, at fleet size. In process, over the embedded Store:
 * config.yaml-style groups (one per machine, test/helpers/scale-fixture.ts's hostname/ssh_key metadata), 10 profiles
 * over 3 shared Butane templates, so one file is used by 3 or 4 profiles and about a third of the groups.
 *   edit      the incremental path the daemon runs (BootStore.editFile: the file prepared alone, its groups checked)
 *   reload    the same write through a trial load plus full reload (the path a profile write takes), for comparison
 * Each write then asks /ignition for a machine of a group using the file and checks it got the new version.
 *
 * Run: node dist/bench/file-write.js [--sizes 20000,100000] [--runs 3] [--reload-runs 1]
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { buildApp } from '../src/http/app.js'
import { createMetrics } from '../src/http/metrics.js'
import { silentLogger } from '../src/host/log.js'
import { openSqliteStore, STORE_FILE } from '../src/store/index.js'
import { bootOverlayOver, createBootStoreWithOverlay, readBootOverlay } from '../src/catalog/overlay.js'
import type { GroupInput, ProfileInput } from '../src/catalog/model-schema.js'
import type { BootStateOptions } from '../src/catalog/state.js'
import { SCALE_PROFILES, SCALE_TEMPLATES, scaleGroup, scaleMac, scaleTemplate } from '../test/helpers/scale-fixture.js'
import { opt } from './lib/args.js'

const SIZES = opt('sizes', '20000,100000').split(',').map(Number)
const RUNS = Number(opt('runs', '3'))
const RELOAD_RUNS = Number(opt('reload-runs', '1'))

async function measure(n: number): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'pxebox-file-bench-'))
  const store = await openSqliteStore({ file: join(dir, STORE_FILE) })
  try {
    for (let t = 0; t < SCALE_TEMPLATES; t++) await store.put('ignition', `node-${t}.bu`, { name: `node-${t}.bu`, text: scaleTemplate(t) }, { durable: true })
    const profiles: Record<string, ProfileInput> = {}
    for (let p = 0; p < SCALE_PROFILES; p++) profiles[`profile${p}`] = { boot: { kernel: '/assets/k' }, ignition: `node-${p % SCALE_TEMPLATES}.bu` }
    const groups = Array.from({ length: n }, (_, i) => scaleGroup(i) as unknown as GroupInput)
    const base: BootStateOptions = { profiles, groups }
    const files = await readBootOverlay(store)
    const t0 = performance.now()
    const boot = await createBootStoreWithOverlay(base, { merge: (b) => bootOverlayOver(files, { store, base: () => b, reload: async () => Promise.reject(new Error('unused')) }).merge(b) }, silentLogger, { watch: false })
    const loadMs = performance.now() - t0
    const common = { store, base: () => base, reload: (s: BootStateOptions) => boot.reload(s), profiles: () => boot.get().profiles }
    const incremental = bootOverlayOver(files, { ...common, editFile: (k, name, text, next, commit) => boot.editFile(k, name, text, next, commit) })
    const full = bootOverlayOver(files, common)
    const app = buildApp({ store: boot, assetsDir: dir, publicUrl: 'http://10.0.0.1:8080', events: { record: () => undefined }, addressesOf: () => [], version: 'bench', metrics: createMetrics() })
    let version = 0
    const write = async (overlay: typeof full): Promise<number> => {
      const marker = `v${++version}`
      const text = scaleTemplate(0).replace('inline: template 0', `inline: ${marker}`)
      const started = performance.now()
      const r = await overlay.putFile('ignition', 'node-0.bu', text)
      if (!r.ok) throw new Error(r.errors.join('; '))
      const res = await app.inject({ url: `/ignition?mac=${scaleMac(0)}` })
      const ms = performance.now() - started
      if (res.statusCode !== 200 || !res.body.includes(marker)) throw new Error(`/ignition did not serve ${marker}: ${res.statusCode} ${res.body.slice(0, 200)}`)
      return ms
    }
    const edits: number[] = []
    for (let i = 0; i < RUNS; i++) edits.push(await write(incremental))
    const reloads: number[] = []
    for (let i = 0; i < RELOAD_RUNS; i++) reloads.push(await write(full))
    const f = (xs: number[]) => xs.map((x) => x.toFixed(0)).join(', ')
    console.log(`${n} groups (load ${(loadMs / 1000).toFixed(1)} s): edit ${f(edits)} ms; trial load + reload ${f(reloads)} ms; load average ${loadavg().map((x) => x.toFixed(2)).join(' ')}`)
    await app.close()
    boot.close()
  } finally {
    await store.close()
    await rm(dir, { recursive: true, force: true })
  }
}

for (const n of SIZES) await measure(n)
