/**
 * Turning stored things into API answers: machine records into views (status against the clock and the machine's
 * profile), boot-store groups and profiles into their JSON shapes.
 */
import type { Static } from '@sinclair/typebox'
import type { BootState } from '../../catalog/state.js'
import type { Group, Profile } from '../../catalog/model.js'
import { STATUS_ORDER, type MachineRecord, type MachineView, type Stage } from '../../machines/model.js'
import { machineView, type ProfileFacts } from '../../machines/timeline.js'
import type { FindingView, GroupViewSchema, ProfileViewSchema } from './schemas.js'

/** What a machine view shows of a finding. */
type FindingSummary = NonNullable<MachineView['findings']>[number]

/** Findings indexed by the MACs they name, for machine views (one pass, whatever the number of records). */
export function findingsByMac(findings: readonly FindingView[]): Map<string, FindingSummary[]> {
  const out = new Map<string, FindingSummary[]>()
  for (const f of findings) {
    for (const mac of f.macs) {
      const list = out.get(mac) ?? []
      list.push({ id: f.id, kind: f.kind, explanation: f.explanation })
      out.set(mac, list)
    }
  }
  return out
}

/** The last stage a boot of `profile` reaches: its installed callback, Ignition, initrd or kernel download. */
export function profileFacts(profile: Profile | undefined): ProfileFacts | undefined {
  if (!profile) return undefined
  const bootOnce = profile.bootOnce === true
  let finalStage: Stage = 'ignition'
  if (bootOnce) finalStage = 'installed'
  else if (profile.ignition === undefined && profile.boot) finalStage = profile.boot.initrds.length > 0 ? 'initrd' : 'kernel'
  return { bootOnce, finalStage }
}

/** A record's view against the current boot state, with the findings naming it (see findingsByMac). */
export function viewOf(r: MachineRecord, state: BootState, now: number, stuckAfterMs: number, findings?: ReadonlyMap<string, FindingSummary[]>): MachineView {
  const profile = r.profile !== undefined ? state.profiles.get(r.profile) : undefined
  const view = machineView(r, { now, stuckAfterMs, profile: profileFacts(profile) })
  const mine = findings?.get(r.mac)
  return mine === undefined ? view : { ...view, findings: mine }
}

/** Views in the dashboard's order: failed, stuck (longest first), booting, ..., done. */
export function sortViews(views: MachineView[]): MachineView[] {
  return views.sort(
    (a, b) =>
      STATUS_ORDER.indexOf(a.status) - STATUS_ORDER.indexOf(b.status) ||
      b.seconds_since_progress - a.seconds_since_progress ||
      (a.mac < b.mac ? -1 : a.mac > b.mac ? 1 : 0),
  )
}

/** A Group as JSON. */
export function groupView(g: Group, managed: boolean): Static<typeof GroupViewSchema> {
  return {
    id: g.id,
    ...(g.name !== undefined ? { name: g.name } : {}),
    profile: g.profile,
    selector: Object.fromEntries(Object.entries(g.selector).map(([k, v]) => [k, [...v]])),
    metadata: { ...g.metadata },
    pxe: g.pxe,
    ...(g.bootFile !== undefined ? { boot_file: g.bootFile } : {}),
    chainload_ipxe: g.chainloadIpxe,
    ...(g.loader !== undefined ? { loader: g.loader } : {}),
    source: g.source,
    managed_by_api: managed,
  }
}

/** A Profile as JSON. */
export function profileView(p: Profile, managed: boolean): Static<typeof ProfileViewSchema> {
  return {
    id: p.id,
    ...(p.name !== undefined ? { name: p.name } : {}),
    ...(p.boot
      ? { boot: { kernel: p.boot.kernel, initrd: p.boot.initrds.map((i) => ({ name: i.name, url: i.url })), args: [...p.boot.args] } }
      : {}),
    ...(p.ignition !== undefined ? { ignition: p.ignition } : {}),
    ...(p.generic !== undefined ? { generic: p.generic } : {}),
    boot_once: p.bootOnce === true,
    ...(p.loader !== undefined ? { loader: p.loader } : {}),
    source: p.source,
    managed_by_api: managed,
  }
}

/** Machines by status right now (for `/metrics` and the list's counts). */
export function statusCounts(records: readonly MachineRecord[], state: BootState, now: number, stuckAfterMs: number): Record<string, number> {
  const counts: Record<string, number> = {}
  for (const r of records) {
    const status = viewOf(r, state, now, stuckAfterMs).status
    counts[status] = (counts[status] ?? 0) + 1
  }
  return counts
}
