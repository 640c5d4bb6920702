/**
 * The assertions every VM boot test makes: the booted Linux printed a successful marker with this VM's MAC and
 * SMBIOS UUID, and the config it fetched is the one meant for it. Diagnostics (console timeline, appliance and site
 * logs) go with every failure.
 */
import type { Test } from 'tap'
import type { BootResult, Machine } from '../harness.js'

/** Assert a boot reached Linux and fetched `m`'s config; comments the time to marker. */
export function assertBooted(t: Test, r: BootResult, m: Machine, backend: string): void {
  t.comment(`${m.kind} with ${backend}: marker after ${r.msToMarker ?? 'never'} ms (QEMU ran ${r.msTotal} ms)`)
  const extra = { diagnostics: r.diagnostics }
  t.ok(r.marker, 'the booted Linux printed its marker', extra)
  t.equal(r.marker?.status, 'ok', 'the marker reports success', extra)
  t.equal(r.marker?.mac, m.mac, 'the marker carries the VM MAC', extra)
  t.equal(r.marker?.uuid, m.uuid, 'the SMBIOS UUID reached Linux', extra)
  let config: unknown
  try {
    config = JSON.parse(r.marker?.config ?? 'null')
  } catch {
    config = r.marker?.config
  }
  t.same(config, m.ignition, 'the VM fetched the config meant for its MAC', extra)
}
