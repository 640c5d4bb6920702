/**
 * The assertions every VM boot test makes: the booted Linux printed a successful marker with this VM's MAC and
 * SMBIOS UUID, and the config it fetched is the one meant for it; and the appliance's own machine record shows the
 * boot's steps in order (pxebox's `GET /v1/machines/<mac>`, read from inside the lab namespace with curl, since the
 * appliance only listens on the lab bridge). Diagnostics (console timeline, appliance and site logs, the record's
 * timeline) go with every failure.
 */
import type { Test } from 'tap'
import type { BootResult, Lab, Machine } from '../harness.js'
import type { MachineStatus, MachineView, Stage, TimelineEntry } from '../../../src/machines/model.js'
import { run } from './proc.js'

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

/** An HTTP answer from the appliance: status code and body (parsed when it is JSON). */
export interface ApiAnswer {
  status: number
  body: unknown
}

/**
 * One request to the appliance from inside the lab namespace (curl; the appliance is not reachable from outside).
 * `token` adds `Authorization: Bearer`. Rejects only when curl itself fails (no connection).
 */
export async function applianceRequest(lab: Lab, method: 'GET' | 'POST', path: string, token?: string): Promise<ApiAnswer> {
  const args = ['-sS', '-m', '10', '-X', method, '-w', '\n%{http_code}']
  if (token !== undefined) args.push('-H', `Authorization: Bearer ${token}`)
  const out = await run(lab.ns, 'curl', [...args, `${lab.publicUrl}${path}`])
  const nl = out.lastIndexOf('\n')
  const text = out.slice(0, nl)
  let body: unknown = text
  try {
    body = JSON.parse(text)
  } catch {
    /* not JSON: keep the text */
  }
  return { status: Number(out.slice(nl + 1)), body }
}

/** pxebox's record of one machine (`GET /v1/machines/<mac>`); undefined when it answers anything but 200. */
export async function machineRecord(lab: Lab, mac: string): Promise<MachineView | undefined> {
  const a = await applianceRequest(lab, 'GET', `/v1/machines/${mac}`)
  return a.status === 200 ? (a.body as MachineView) : undefined
}

/** One timeline entry a boot must (or must not) show; every given field must match. */
export interface StepMatch {
  stage?: Stage
  source?: TimelineEntry['source']
  step?: string
  /** Matched against the entry's one-line `what` (file, path or decision). */
  what?: RegExp
}

function matches(e: TimelineEntry, m: StepMatch): boolean {
  return (
    (m.stage === undefined || e.stage === m.stage) &&
    (m.source === undefined || e.source === m.source) &&
    (m.step === undefined || e.step === m.step) &&
    (m.what === undefined || m.what.test(e.what))
  )
}

/** `tftp/file[tftp] snponly.efi`-style words for messages. */
export function describeStep(m: StepMatch): string {
  return [m.source ?? '*', '/', m.step ?? '*', m.stage ? `[${m.stage}]` : '', m.what ? ` ${String(m.what)}` : ''].join('')
}

/** One line per timeline entry, for comments and failure diagnostics. */
export function formatTimeline(entries: readonly TimelineEntry[]): string[] {
  return entries.map((e) => `${e.time.slice(11, 23)} ${e.source}/${e.step}${e.stage ? `[${e.stage}]` : ''} ${e.outcome} ${e.what}`)
}

/** The stages of a timeline in order, repeats collapsed: `dhcp tftp dhcp script kernel initrd ignition`. */
export function stagePath(entries: readonly TimelineEntry[]): string {
  const out: string[] = []
  for (const e of entries) if (e.stage !== undefined && e.outcome === 'ok' && out[out.length - 1] !== e.stage) out.push(e.stage)
  return out.join(' ')
}

/**
 * Assert pxebox's record of `mac` has its current attempt's `expected` steps in this order (other entries may come
 * between), each with outcome ok; none of `absent`; and status `status` (default `done`). Returns the record.
 */
export async function assertTimeline(
  t: Test,
  lab: Lab,
  mac: string,
  expected: readonly StepMatch[],
  opts: { absent?: readonly StepMatch[]; status?: MachineStatus } = {},
): Promise<MachineView | undefined> {
  const view = await machineRecord(lab, mac)
  if (view === undefined) {
    t.fail(`pxebox has a record of ${mac}`)
    return undefined
  }
  const timeline = formatTimeline(view.timeline)
  t.comment(`pxebox record of ${mac}: ${view.status}, stages ${stagePath(view.timeline)}`)
  const extra = { timeline, summary: view.summary }
  let from = 0
  for (const m of expected) {
    const at = view.timeline.findIndex((e, i) => i >= from && e.outcome === 'ok' && matches(e, m))
    t.ok(at >= 0, `record shows ${describeStep(m)}${from > 0 ? ' after the previous step' : ''}`, extra)
    if (at < 0) break
    from = at + 1
  }
  for (const m of opts.absent ?? []) {
    t.notOk(view.timeline.some((e) => matches(e, m)), `record shows no ${describeStep(m)}`, extra)
  }
  t.equal(view.status, opts.status ?? 'done', `machine status is ${opts.status ?? 'done'}`, extra)
  return view
}

/** Common steps, for the tests' expected lists. */
export const steps = {
  dhcp: { stage: 'dhcp' },
  script: { stage: 'script' },
  kernel: { stage: 'kernel' },
  initrd: { stage: 'initrd' },
  ignition: { stage: 'ignition' },
  tftp: (file: RegExp): StepMatch => ({ source: 'tftp', stage: 'tftp', what: file }),
} as const satisfies Record<string, StepMatch | ((f: RegExp) => StepMatch)>
