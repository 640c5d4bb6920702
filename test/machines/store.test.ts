import t, { type Test } from 'tap'
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { openMachineStore } from '../../src/machines/store.js'
import { nicVendor } from '../../src/machines/oui.js'
import type { BootEvent } from '../../src/machines/events.js'
import { bootEvents } from '../http/api/fixture.js'
import { storeIn } from '../helpers/store.js'

async function tempDir(t: Test): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'pxebox-machines-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  return dir
}

const M = '52:54:00:00:0a:01'

t.test('records survive a restart: a new store over the same data reads them back', async (t) => {
  const dir = await tempDir(t)
  const a = await openMachineStore({ store: await storeIn(t, dir), flushDelayMs: 10_000 })
  a.record(bootEvents(M, '10.213.10.1', 9, Date.now() - 60_000)[0]!)
  for (const e of bootEvents(M, '10.213.10.1', 9, Date.now() - 60_000).slice(1)) a.record(e)
  await a.setLabels(M, { rack: 'r7' })
  await a.close()
  const b = await openMachineStore({ store: await storeIn(t, dir) })
  t.same(b.problems, [])
  await b.timelines
  const r = b.get(M)!
  t.same(r, a.get(M), 'identical record')
  t.equal(r.timeline.length, 9)
  t.same(r.labels, { rack: 'r7' })
})

t.test('records carry the site and the appliance that last saw the machine (store.site, store.name), stored with them (issue 17)', async (t) => {
  const dir = await tempDir(t)
  const a = await openMachineStore({ store: await storeIn(t, dir), site: 'rack-7', appliance: 'pxe-a' })
  for (const e of bootEvents(M, '10.213.10.1', 3, Date.now() - 60_000)) a.record(e)
  t.same([a.get(M)!.site, a.get(M)!.appliance], ['rack-7', 'pxe-a'])
  await a.close()
  const b = await openMachineStore({ store: await storeIn(t, dir), site: 'rack-9', appliance: 'pxe-b' })
  t.same([b.get(M)!.site, b.get(M)!.appliance], ['rack-7', 'pxe-a'], 'read back from the store')
  b.record(bootEvents(M, '10.213.10.1', 1, Date.now())[0]!)
  // The event applies once the record's timeline is read back (read lazily after a restart).
  for (let i = 0; i < 200 && b.get(M)!.site !== 'rack-9'; i++) await new Promise((r) => setTimeout(r, 10))
  t.same([b.get(M)!.site, b.get(M)!.appliance], ['rack-9', 'pxe-b'], 'the site and appliance that saw it last')
  await b.close()
  const none = await openMachineStore({ store: await storeIn(t, await tempDir(t)) })
  none.record(bootEvents(M, '10.213.10.1', 1, Date.now())[0]!)
  t.same([none.get(M)!.site, none.get(M)!.appliance], [undefined, undefined], 'none given: none recorded')
  await none.close()
})

t.test('a boot event rewrites only the machine it belongs to (one row, not the whole table)', async (t) => {
  const dir = await tempDir(t)
  const store = await storeIn(t, dir)
  const s = await openMachineStore({ store, flushDelayMs: 10_000 })
  const other = '52:54:00:00:0a:02'
  for (const e of bootEvents(M, '10.213.10.1', 3, Date.now() - 60_000)) s.record(e)
  for (const e of bootEvents(other, '10.213.10.2', 3, Date.now() - 60_000)) s.record(e)
  await s.flush()
  const before = (await store.get('machine', other))!.modRevision
  t.equal((await store.get('machine-timeline', other))!.modRevision, before)
  s.record(bootEvents(M, '10.213.10.1', 4, Date.now() - 1000)[3]!)
  await s.flush()
  t.equal((await store.get('machine', other))!.modRevision, before, 'the other machine was not rewritten')
  t.equal((await store.get('machine-timeline', other))!.modRevision, before, 'nor its timeline')
  t.ok((await store.get('machine', M))!.modRevision > before, 'the machine that booted was')
  t.equal(((await store.get('machine-timeline', M))!.value as { timeline: unknown[] }).timeline.length, 4)
})

t.test('machines.json written by the previous release is imported once and kept as machines.json.migrated', async (t) => {
  const dir = await tempDir(t)
  const legacyDir = join(dir, 'machines')
  await mkdir(legacyDir)
  // The fixture was written by the release before the Store (openMachineStore over a dir, kept in machines.json).
  await writeFile(join(legacyDir, 'machines.json'), await readFile(new URL('../fixtures/data-dir-v1/machines/machines.json', import.meta.url)))
  const s = await openMachineStore({ store: await storeIn(t, dir), legacyDir })
  t.same(s.problems, [])
  t.same(s.list().map((r) => r.mac), ['52:54:00:00:0a:02', '52:54:00:00:0a:01'], 'both records, most recently seen first')
  t.same(s.get('52:54:00:00:0a:01')!.labels, { rack: 'r7' })
  t.ok(s.get('52:54:00:00:0a:02')!.installed_at, 'install-once state came along')
  t.same((await readdir(legacyDir)).sort(), ['machines.json.migrated'], 'the old file is kept, renamed')
  await s.close()
  const again = await openMachineStore({ store: await storeIn(t, dir), legacyDir })
  t.equal(again.list().length, 2, 'not imported twice, still there')
})

t.test('a corrupt legacy machines.json is moved aside and reported; the store starts without it and works', async (t) => {
  const dir = await tempDir(t)
  await writeFile(join(dir, 'machines.json'), '{"version":1,"machines":[{"mac":')
  const s = await openMachineStore({ store: await storeIn(t, dir), legacyDir: dir })
  t.equal(s.problems.length, 1)
  t.match(s.problems[0], /machines\.json is corrupt .*moved to .*machines\.json\.corrupt-/)
  t.same(s.list(), [])
  const names = await readdir(dir)
  t.ok(names.some((n) => n.startsWith('machines.json.corrupt-')), 'evidence kept')
  await s.markInstalled(M, '10.213.10.1')
  const again = await openMachineStore({ store: await storeIn(t, dir), legacyDir: dir })
  t.same(again.problems, [])
  t.ok(again.get(M)!.installed_at)
})

t.test('invalid records are skipped one by one and removed; a legacy file of another version is left alone', async (t) => {
  const dir = await tempDir(t)
  const store = await storeIn(t, dir)
  const s = await openMachineStore({ store })
  await s.markInstalled(M)
  await store.put('machine', '52:54:00:00:0a:09', { mac: '52:54:00:00:0a:09', boots: 'many' })
  const b = await openMachineStore({ store })
  t.equal(b.list().length, 1)
  t.match(b.problems[0], /pxebox\.db \(machine\): 52:54:00:00:0a:09 skipped: \/\w+ /)
  await b.close()
  t.equal(await store.get('machine', '52:54:00:00:0a:09'), undefined, 'the invalid record is removed')
  await writeFile(join(dir, 'machines.json'), JSON.stringify({ version: 9, machines: [] }))
  const c = await openMachineStore({ store, legacyDir: dir })
  t.match(c.problems[0], /expected \{"version": 1/)
  t.ok((await readdir(dir)).includes('machines.json'), 'not renamed')
})

t.test('attribution: TFTP by IP waits for the MAC that later uses the IP; tracker fallback; 0.0.0.0 never', async (t) => {
  const dir = await tempDir(t)
  const s = await openMachineStore({ store: await storeIn(t, dir), macForIp: (ip) => (ip === '10.213.10.50' ? '52:54:00:00:0a:50' : undefined) })
  const tftp = (ip: string, time: string): BootEvent => ({ time, kind: 'tftp', ip, step: 'file', outcome: 'ok', detail: { file: 'undionly.kpxe', bytes: 70000 } })
  const t0 = Date.now() - 10_000
  // BIOS: the ROM fetches undionly.kpxe over TFTP before anything names its MAC from that IP.
  s.record(tftp('10.213.10.7', new Date(t0).toISOString()))
  t.same(s.list(), [], 'not attributed yet')
  s.record({ time: new Date(t0 + 2000).toISOString(), kind: 'http', mac: M, ip: '10.213.10.7', step: 'ipxe', outcome: 'ok', detail: { path: '/ipxe?mac=52-54-00-00-0a-01', status: 200 } })
  t.same(s.get(M)!.timeline.map((e) => e.step), ['file', 'ipxe'], 'the waiting TFTP event joined, in time order')
  s.record(tftp('10.213.10.50', new Date(t0 + 3000).toISOString()))
  t.equal(s.get('52:54:00:00:0a:50')!.timeline[0]!.step, 'file', 'tracker binding used')
  s.record({ time: new Date().toISOString(), kind: 'tftp', ip: '0.0.0.0', step: 'file', outcome: 'ok', detail: {} })
  t.equal(s.list().length, 2)
})

t.test('record never throws, whatever the event', async (t) => {
  const dir = await tempDir(t)
  const s = await openMachineStore({ store: await storeIn(t, dir) })
  const weird = [
    { time: 'not a time', kind: 'http', mac: M, step: 'kernel', outcome: 'ok', detail: {} },
    { time: new Date().toISOString(), kind: 'dhcp', mac: M, step: 'offer', outcome: 'ok', detail: { arch_label: 7, path: 3 } },
    { time: new Date().toISOString(), kind: 'http', mac: M, step: 'ipxe', outcome: 'ok', detail: { path: '/ipxe?%zz=1&serial=%' } },
  ] as unknown as BootEvent[]
  for (const e of weird) t.doesNotThrow(() => s.record(e))
})

t.test('attempts: a new DHCP after the script opens a new boot; history keeps the old one; reinstalls counted', async (t) => {
  const dir = await tempDir(t)
  const s = await openMachineStore({ store: await storeIn(t, dir) })
  const start = Date.now() - 3_600_000
  for (const e of bootEvents(M, '10.213.10.1', 9, start)) s.record(e)
  await s.markInstalled(M, '10.213.10.1')
  for (const e of bootEvents(M, '10.213.10.1', 9, start + 600_000)) s.record(e)
  const r = s.get(M)!
  t.equal(r.boots, 2)
  t.same(r.history.map((h) => [h.reached, h.outcome]), [['installed', 'ok']])
  t.equal(r.reinstalls, 1, 'the installer kernel was fetched again after the installed callback')
  t.equal(r.timeline[0]!.step, 'offer')
})

t.test('NIC vendor from the OUI table', async (t) => {
  t.equal(nicVendor('52:54:00:12:34:56'), 'QEMU/KVM')
  t.equal(nicVendor('0c:c4:7a:00:00:01'), 'Supermicro')
  t.equal(nicVendor('b8:59:9f:00:00:01'), 'Mellanox/NVIDIA')
  t.equal(nicVendor('02:00:00:00:00:01'), 'locally administered')
  t.equal(nicVendor('00:00:01:00:00:01'), undefined)
})

t.test('subscribers get the attributed event; recordDiagnosis adds a pxebox entry (issue 19)', async (t) => {
  const dir = await tempDir(t)
  const s = await openMachineStore({ store: await storeIn(t, dir) })
  const seen: Array<[string, string | undefined]> = []
  s.subscribe((mac, event) => seen.push([mac, event?.step]))
  const t0 = Date.now() - 10_000
  const at = (ms: number) => new Date(t0 + ms).toISOString()
  // The TFTP event names no MAC: it waits, then reaches subscribers with the MAC the DHCP event taught.
  s.record({ time: at(0), kind: 'tftp', ip: '10.213.10.9', step: 'file', outcome: 'ok', detail: { file: 'snponly.efi' } })
  s.record({ time: at(1), kind: 'dhcp', mac: M, ip: '10.213.10.9', step: 'ack', outcome: 'ok', detail: {} })
  t.same(seen, [[M, 'file'], [M, 'ack']])
  s.recordDiagnosis(M, { time: at(2), step: 'ipxe-not-run', stage: 'tftp', outcome: 'firmware did not run iPXE', what: 'snponly.efi fetched', ip: '10.213.10.9' })
  s.recordDiagnosis('52:54:00:00:0a:99', { time: at(2), step: 'x', outcome: 'y', what: 'z' })
  t.same(s.get(M)!.timeline.at(-1), { time: at(2), source: 'pxebox', step: 'ipxe-not-run', stage: 'tftp', outcome: 'firmware did not run iPXE', ip: '10.213.10.9', what: 'snponly.efi fetched' })
  t.same(seen.at(-1), [M, undefined], 'a change without a boot event')
  t.equal(s.get('52:54:00:00:0a:99'), undefined, 'no record made up for an unknown MAC')
})

t.test('install once through GRUB: a TFTP local-boot step (the local-boot GRUB config) shows the machine booted locally', async (t) => {
  const { machineView } = await import('../../src/machines/timeline.js')
  const dir = await tempDir(t)
  const s = await openMachineStore({ store: await storeIn(t, dir) })
  const start = Date.now() - 3_600_000
  for (const e of bootEvents(M, '10.213.10.1', 9, start)) s.record(e)
  await s.markInstalled(M, '10.213.10.1')
  const at = (ms: number) => new Date(Date.now() - 60_000 + ms).toISOString()
  s.record({ time: at(0), kind: 'dhcp', mac: M, ip: '10.213.10.1', step: 'ack', outcome: 'ok', detail: { boot_file: 'shimx64.efi' } })
  s.record({ time: at(1), kind: 'tftp', mac: M, ip: '10.213.10.1', step: 'local-boot', outcome: 'ok', detail: { file: 'grub/grub.cfg-01-52-54-00-00-0a-01', bytes: 900 } })
  const r = s.get(M)!
  t.equal(r.boots, 2)
  t.match(r.timeline.at(-1), { source: 'tftp', step: 'local-boot', stage: 'tftp', what: 'local disk boot via grub/grub.cfg-01-52-54-00-00-0a-01 900 bytes' })
  const view = machineView(r, { now: Date.now(), stuckAfterMs: 1000, profile: { bootOnce: true, finalStage: 'installed' } })
  t.equal(view.status, 'local-boot', 'not "stuck" after the TFTP stage')
})

t.test('shim-grub: kernel and initrd over TFTP reach the kernel and initrd stages, so the boot completes', async (t) => {
  const { machineView } = await import('../../src/machines/timeline.js')
  const dir = await tempDir(t)
  const s = await openMachineStore({ store: await storeIn(t, dir) })
  const at = (ms: number) => new Date(Date.now() - 60_000 + ms).toISOString()
  s.record({ time: at(0), kind: 'dhcp', mac: M, ip: '10.213.10.1', step: 'ack', outcome: 'ok', detail: { boot_file: 'shimx64.efi' } })
  s.record({ time: at(1), kind: 'tftp', mac: M, ip: '10.213.10.1', step: 'file', outcome: 'ok', detail: { file: 'grubx64.efi', bytes: 900 } })
  s.record({ time: at(2), kind: 'tftp', mac: M, ip: '10.213.10.1', step: 'kernel', outcome: 'ok', detail: { file: 'assets/vmlinuz', bytes: 9000 } })
  s.record({ time: at(3), kind: 'tftp', mac: M, ip: '10.213.10.1', step: 'initrd', outcome: 'ok', detail: { file: 'assets/initrd.img', bytes: 9000 } })
  const r = s.get(M)!
  t.same(r.timeline.slice(-2).map((e) => [e.stage, e.what]), [['kernel', 'assets/vmlinuz 9000 bytes'], ['initrd', 'assets/initrd.img 9000 bytes']])
  const view = machineView(r, { now: Date.now(), stuckAfterMs: 1000, profile: { bootOnce: false, finalStage: 'initrd' } })
  t.equal(view.stage, 'initrd')
  t.not(view.status, 'stuck', 'the profile ends at its initrd, which came over TFTP')
})

t.test("authoritative mode: the booted OS's own DHCP (no boot file) is no boot stage and opens no new attempt", async (t) => {
  const { machineView } = await import('../../src/machines/timeline.js')
  const dir = await tempDir(t)
  const s = await openMachineStore({ store: await storeIn(t, dir) })
  const at = (ms: number) => new Date(Date.now() - 60_000 + ms).toISOString()
  const dhcp = (ms: number, step: string, pxe: boolean): BootEvent => ({
    time: at(ms), kind: 'dhcp', mac: M, ip: '10.213.10.1', step, outcome: 'ok', detail: { mode: 'authoritative', ...(pxe ? { boot_file: 'shimx64.efi' } : {}) },
  })
  s.record(dhcp(0, 'offer', true))
  s.record(dhcp(1, 'ack', true))
  s.record({ time: at(2), kind: 'tftp', mac: M, ip: '10.213.10.1', step: 'kernel', outcome: 'ok', detail: { file: 'assets/vmlinuz' } })
  s.record({ time: at(3), kind: 'tftp', mac: M, ip: '10.213.10.1', step: 'initrd', outcome: 'ok', detail: { file: 'assets/initrd.img' } })
  s.record(dhcp(4, 'offer', false))
  s.record(dhcp(5, 'ack', false))
  let r = s.get(M)!
  t.equal(r.boots, 1, 'still the first boot')
  t.same(r.timeline.map((e) => e.stage ?? '-'), ['dhcp', 'dhcp', 'kernel', 'initrd', '-', '-'])
  t.equal(machineView(r, { now: Date.now(), stuckAfterMs: 1000, profile: { bootOnce: false, finalStage: 'initrd' } }).stage, 'initrd')
  s.record(dhcp(6, 'offer', true))
  r = s.get(M)!
  t.equal(r.boots, 2, 'a PXE DHCP after the kernel is a reboot: a new attempt')
})
