/**
 * "Firmware did not run iPXE" (issue 19): a UEFI machine that fetched iPXE over TFTP in full and never came back as
 * iPXE gets a timeline entry and a finding after the timeout; one that runs iPXE, fetches shim instead, or only probed
 * the size does not. Events go through the real machine store, which attributes the MAC-less TFTP event by address.
 */
import t, { type Test } from 'tap'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { openMachineStore, type MachineStore } from '../../src/machines/store.js'
import { machineView } from '../../src/machines/timeline.js'
import type { BootEvent } from '../../src/machines/events.js'
import { createIpxeHandoffWatch, IPXE_NOT_RUN, type IpxeHandoffWatch } from '../../src/boot/ipxe-handoff.js'
import { storeIn } from '../helpers/store.js'

const A = '52:54:00:00:0b:01'
const B = '52:54:00:00:0b:02'
const START = Date.parse('2026-11-27T18:00:00.000Z')

interface Rig {
  machines: MachineStore
  watch: IpxeHandoffWatch
  advance(ms: number): void
  feed(...events: BootEvent[]): void
  at(ms: number): string
}

/** The daemon's wiring: store -> subscribe(mac, event) -> watch -> store.recordDiagnosis, on a fake clock. */
async function rig(t: Test, opts: { timeoutMs?: number; maxMachines?: number; findingTtlMs?: number } = {}): Promise<Rig> {
  const dir = await mkdtemp(join(tmpdir(), 'pxebox-handoff-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  let clock = START
  const now = () => clock
  const machines = await openMachineStore({ store: await storeIn(t, dir), flushDelayMs: 60_000, now })
  t.teardown(() => machines.close())
  const watch = createIpxeHandoffWatch({ timeoutMs: opts.timeoutMs ?? 60_000, report: (mac, d) => machines.recordDiagnosis(mac, d), now, ...opts })
  machines.subscribe((mac, event) => {
    if (event !== undefined) watch.observe(mac, event)
  })
  return {
    machines,
    watch,
    advance: (ms) => (clock += ms),
    feed: (...events) => events.forEach((e) => machines.record(e)),
    at: (ms) => new Date(START + ms).toISOString(),
  }
}

/** OVMF's PXE boot as pxebox records it: the 4011 ACK naming the file, the tsize probe, the full transfer (by IP). */
function uefiPxe(r: Rig, mac: string, ip: string, file: string, at = 0): BootEvent[] {
  const dhcp = { arch: 7, arch_label: 'x86_64', client_class: 'pxe-efi', boot_file: file, port: 4011 }
  return [
    { time: r.at(at), kind: 'dhcp', mac, ip, step: 'ack', outcome: 'ok', detail: dhcp },
    { time: r.at(at + 500), kind: 'tftp', ip, step: 'file', outcome: 'aborted', detail: { file, tsize_probe: true } },
    { time: r.at(at + 900), kind: 'tftp', ip, step: 'file', outcome: 'ok', detail: { file, bytes: 225_280 } },
  ]
}

t.test('a UEFI machine that fetched snponly.efi and went silent: timeline entry, failed status, finding', async (t) => {
  const r = await rig(t)
  r.feed(...uefiPxe(r, A, '10.213.0.101', 'snponly.efi'))
  r.advance(59_000)
  t.same(r.watch.evaluate(), [], 'not before the timeout')
  r.advance(2_000)
  const [f, ...rest] = r.watch.evaluate()
  t.same(rest, [])
  t.match(f, { id: `ipxe-not-run:${A}`, kind: 'ipxe-not-run', macs: [A], ip: '10.213.0.101' })
  t.ok(f!.explanation.startsWith(`${IPXE_NOT_RUN}. ${A} fetched snponly.efi over TFTP and did not come back as iPXE within 60 s.`), f!.explanation)
  t.match(f!.evidence, [{ source: 'tftp', mac: A, what: 'snponly.efi sent in full' }])
  const rec = r.machines.get(A)!
  const last = rec.timeline[rec.timeline.length - 1]!
  t.match(last, { source: 'pxebox', step: 'ipxe-not-run', stage: 'tftp', outcome: IPXE_NOT_RUN, ip: '10.213.0.101' })
  t.match(last.what, /^snponly\.efi \(225280 bytes\) fetched at 2026-11-27T18:00:00\.900Z; no iPXE DHCP request or boot script within 60 s$/)
  const view = machineView(rec, { now: START + 61_000, stuckAfterMs: 300_000 })
  t.equal(view.status, 'failed')
  t.match(view.summary, `tftp: ${IPXE_NOT_RUN}`)
  r.advance(60_000)
  t.equal(r.watch.evaluate().length, 1, 'reported once: no second timeline entry')
  t.equal(r.machines.get(A)!.timeline.filter((e) => e.step === 'ipxe-not-run').length, 1)
})

t.test('iPXE coming back (its DHCP, or a script by address) in time: nothing reported', async (t) => {
  const r = await rig(t)
  r.feed(...uefiPxe(r, A, '10.213.0.101', 'snponly.efi'), ...uefiPxe(r, B, '10.213.0.102', 'ipxe.efi'))
  r.advance(3_000)
  r.feed({ time: r.at(3_000), kind: 'dhcp', mac: A, ip: '0.0.0.0', step: 'offer', outcome: 'ok', detail: { client_class: 'ipxe', boot_file: 'http://x/boot.ipxe' } })
  r.feed({ time: r.at(3_000), kind: 'http', ip: '10.213.0.102', step: 'script', outcome: 'ok', detail: { path: '/boot.ipxe', status: 200 } })
  r.advance(120_000)
  t.same(r.watch.evaluate(), [])
  t.notOk(r.machines.get(A)!.timeline.some((e) => e.source === 'pxebox'))
})

t.test('size probes, BIOS loaders, failed transfers and shim are not iPXE handoffs', async (t) => {
  const r = await rig(t)
  const probeOnly = uefiPxe(r, A, '10.213.0.101', 'snponly.efi').slice(0, 2)
  r.feed(...probeOnly)
  r.feed(...uefiPxe(r, B, '10.213.0.102', 'undionly.kpxe'))
  r.feed({ time: r.at(1_000), kind: 'tftp', mac: '52:54:00:00:0b:03', ip: '10.213.0.103', step: 'file', outcome: 'timeout', detail: { file: 'ipxe.efi' } })
  r.feed(...uefiPxe(r, '52:54:00:00:0b:04', '10.213.0.104', 'shimx64.efi'))
  r.advance(600_000)
  t.same(r.watch.evaluate(), [])
})

t.test('the finding clears when the machine runs iPXE or fetches another first stage later', async (t) => {
  const r = await rig(t)
  r.feed(...uefiPxe(r, A, '10.213.0.101', 'snponly.efi'), ...uefiPxe(r, B, '10.213.0.102', 'snponly.efi'))
  r.advance(61_000)
  t.equal(r.watch.evaluate().length, 2)
  // A: the operator set loader: shim-grub; B: Secure Boot switched off, iPXE runs.
  r.feed(...uefiPxe(r, A, '10.213.0.101', 'shimx64.efi', 70_000))
  r.feed(...uefiPxe(r, B, '10.213.0.102', 'snponly.efi', 70_000))
  r.feed({ time: r.at(72_000), kind: 'dhcp', mac: B, ip: '0.0.0.0', step: 'discover', outcome: 'ok', detail: { client_class: 'ipxe' } })
  t.same(r.watch.evaluate(), [])
  r.advance(120_000)
  t.same(r.watch.evaluate(), [], 'and B is not reported again: its iPXE ran')
})

t.test('bounded: a flood of MACs keeps at most maxMachines; findings expire after their TTL', async (t) => {
  const r = await rig(t, { maxMachines: 3, findingTtlMs: 3600_000 })
  for (let i = 0; i < 10; i++) {
    const mac = `52:54:00:00:0c:${i.toString(16).padStart(2, '0')}`
    r.feed({ time: r.at(i), kind: 'tftp', mac, ip: `10.213.0.${i + 1}`, step: 'file', outcome: 'ok', detail: { file: 'snponly.efi', bytes: 1 } })
  }
  r.advance(61_000)
  t.same(r.watch.evaluate().map((f) => f.macs[0]), ['52:54:00:00:0c:07', '52:54:00:00:0c:08', '52:54:00:00:0c:09'], 'the newest 3')
  r.advance(3600_001)
  t.same(r.watch.evaluate(), [])
})
