/**
 * bench/abuse's closing note: the valid client's figures, pxebox's memory and log over time, what the floods saw,
 * and issue 13's goals with pass/miss next to the figures. Pure formatting: bench/abuse.ts gathers RunData.
 */
import type { AttemptRecord, CutShortRecord } from './abuse-client.js'
import type { FloodResults } from './abuse-floods.js'
import { percentiles } from './lib/dhcp-clients.js'
import type { LogCounts } from './lib/log-watch.js'

/** One sample of pxebox, every few seconds: where it stood at `t` and what its log grew by since the last sample. */
export interface Sample {
  t: number
  /** Shown beside the row, e.g. for the sample taken once the floods had stopped. */
  note?: string
  rssMb: number
  cpuMs: number
  log: LogCounts
}

/** Everything a run gathered. */
export interface RunData {
  mode: 'proxy' | 'authoritative'
  durationS: number
  /** How long the floods actually ran. */
  ranS: number
  /** One line per flood that ran, and one per flood skipped (with why). */
  floods: string[]
  skipped: string[]
  clientMac: string
  bootFile: { name: string; bytes: number }
  attempts: AttemptRecord[]
  /** The attempt the end of the run interrupted, if one was in progress. */
  cutShort?: CutShortRecord
  /** samples[0] is taken when pxebox is ready (its log: the start-up lines); the floods start right after. */
  samples: Sample[]
  log: { total: LogCounts; topWarnings: [string, number][]; tail: string[] }
  /** pxebox ended on its own: when and how (exit code or signal). */
  death?: { atS: number; how: string }
  /** The run was cut short (pxebox over the memory safety cap). */
  stoppedEarly?: string
  /** How long pxebox took to stop on SIGTERM at the end, or why it did not. */
  stop: string
  stateFiles: [string, number][]
  results: FloodResults
  machine: { cpus: number; loadStart: number; loadEnd: number; node: string; build: string }
  rssBound?: { mb: number; source: string }
  warnPerMinute: number
}

const int = (n: number): string => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : 'n/a')
const ms = (n: number): string => (Number.isFinite(n) ? (n < 10 ? n.toFixed(2) : n.toFixed(0)) : 'n/a')
const pct = (a: number, b: number): string => (b > 0 ? `${((100 * a) / b).toFixed(1)}%` : 'n/a')
const mb = (bytes: number): string => `${(bytes / 1048576).toFixed(1)} MB`

/** The most frequent values of `xs`, as "value" xN. */
function top(xs: string[], n: number): string {
  const m = new Map<string, number>()
  for (const x of xs) m.set(x, (m.get(x) ?? 0) + 1)
  return [...m]
    .sort((a, b) => b[1] - a[1])
    .slice(0, n)
    .map(([k, v]) => `"${k.slice(0, 100)}" x${v}`)
    .join('; ')
}

/**
 * Warn lines per minute under the floods: the worst window of at least 60 s of consecutive samples (the whole run when
 * it is shorter), scaled to a minute. Sample i holds the lines logged since sample i-1; sample 0's are the start-up's,
 * not the floods', and are left out.
 */
export function warnPeakPerMinute(samples: Sample[]): number {
  if (samples.length < 2) return NaN
  const t = (i: number): number => (samples[i] as Sample).t
  let worst = NaN
  for (let i = 1; i < samples.length; i++) {
    let sum = 0
    let k = i
    for (; k < samples.length; k++) {
      sum += (samples[k] as Sample).log.warn
      if (t(k) - t(i - 1) >= 60) break
    }
    const end = Math.min(k, samples.length - 1)
    const perMinute = (sum * 60) / Math.max(t(end) - t(i - 1), 1)
    if (!(perMinute <= worst)) worst = perMinute
    if (k >= samples.length) break // the rest are shorter windows inside this one
  }
  return worst
}

/** The RSS rows to show: every sample for a short run, at most ~20 evenly spaced (and the last) for a long one. */
function rssRows(samples: Sample[]): Sample[] {
  const step = Math.max(1, Math.ceil(samples.length / 20))
  return samples.filter((_, i) => i % step === 0 || i === samples.length - 1)
}

/** The closing note, as lines. */
export function report(d: RunData): string[] {
  const out: string[] = []
  const a = d.attempts
  const offers = a.map((x) => x.offerMs).filter((x): x is number => x !== null)
  const offer = percentiles(offers)
  const acks = a.filter((x) => x.ackMs !== null).length
  const tftp = a.filter((x) => x.tftpOk).length
  const httpOk = a.filter((x) => x.httpOk).length
  const all = a.filter((x) => x.offerMs !== null && x.ackMs !== null && x.tftpOk && x.httpOk).length
  const errs = (step: string): string => top(a.flatMap((x) => (x.errors[step] === undefined ? [] : [x.errors[step] as string])), 3)

  out.push(`pxebox abuse bench: ${d.mode} mode, ${d.durationS} s asked, floods ran ${d.ranS.toFixed(0)} s; ${d.machine.build}`)
  out.push(`machine: ${d.machine.cpus} CPUs, load average ${d.machine.loadStart.toFixed(1)} at start, ${d.machine.loadEnd.toFixed(1)} at end; node ${d.machine.node}`)
  out.push('floods, all at once:')
  for (const f of d.floods) out.push(`  - ${f}`)
  for (const s of d.skipped) out.push(`  - skipped: ${s}`)
  if (d.stoppedEarly !== undefined) out.push(`STOPPED EARLY: ${d.stoppedEarly}`)

  out.push('')
  out.push(`valid client (${d.clientMac}, OVMF's packets; every step tried on each attempt): ${a.length} attempts`)
  out.push(`  DHCP offer:   ${offers.length}/${a.length} answered; p50 ${ms(offer.p50)} ms, p99 ${ms(offer.p99)} ms, max ${ms(offer.max)} ms${offers.length < a.length ? `; misses: ${errs('offer')}` : ''}`)
  out.push(`  ${d.mode === 'proxy' ? '4011 ACK:  ' : 'DHCP ACK:  '}   ${acks}/${a.length}${acks < a.length ? `; misses: ${errs('ack')}` : ''}`)
  out.push(`  TFTP ${d.bootFile.name} (${int(d.bootFile.bytes)} bytes): ${tftp}/${a.length} (${pct(tftp, a.length)})${tftp < a.length ? `; failures: ${errs('tftp')}` : ''}`)
  out.push(`  HTTP /boot.ipxe and /ipxe: ${httpOk}/${a.length} (${pct(httpOk, a.length)})${httpOk < a.length ? `; failures: ${errs('http')}` : ''}`)
  out.push(`  every step of the attempt: ${all}/${a.length}`)
  if (d.cutShort !== undefined) {
    const c = d.cutShort
    const done = c.sofar.length > 0 ? ` after ${c.sofar.join(', ')}` : ''
    const counted = c.failed ? 'counted as failed in the goals below' : 'not counted'
    out.push(`  ${counted}: the attempt started at ${(c.at / 1000).toFixed(1)} s, cut short by the end of the run${done}, while waiting ${int(c.waitedMs)} ms for ${c.step}`)
  }

  out.push('')
  out.push('pxebox:')
  if (d.death === undefined) out.push('  alive throughout: yes')
  else out.push(`  alive throughout: NO, it ended by itself at ${d.death.atS.toFixed(1)} s (${d.death.how}); its last log lines:`)
  if (d.death !== undefined) for (const l of d.log.tail) out.push(`    | ${l.slice(0, 240)}`)
  const alive = d.samples.filter((x) => Number.isFinite(x.cpuMs))
  const first = alive[0]
  const lastSample = alive.at(-1)
  if (first !== undefined && lastSample !== undefined && lastSample.t > first.t) {
    const cpu = lastSample.cpuMs - first.cpuMs
    out.push(`  CPU: ${(cpu / 1000).toFixed(1)} s in ${(lastSample.t - first.t).toFixed(0)} s (${((100 * cpu) / ((lastSample.t - first.t) * 1000)).toFixed(0)}% of one core)`)
  }
  out.push('  t (s) | RSS (MB) | log lines | log bytes | warn lines | error lines   (log columns: since the row before)')
  let pending: LogCounts = { lines: 0, bytes: 0, warn: 0, error: 0 }
  const shown = new Set(rssRows(d.samples))
  for (const s of d.samples) {
    pending = { lines: pending.lines + s.log.lines, bytes: pending.bytes + s.log.bytes, warn: pending.warn + s.log.warn, error: pending.error + s.log.error }
    if (!shown.has(s)) continue
    out.push(`  ${s.t.toFixed(0).padStart(5)} | ${(Number.isFinite(s.rssMb) ? s.rssMb.toFixed(0) : 'gone').padStart(8)} | ${int(pending.lines).padStart(9)} | ${mb(pending.bytes).padStart(9)} | ${int(pending.warn).padStart(10)} | ${int(pending.error)}${s.note === undefined ? '' : `   (${s.note})`}`)
    pending = { lines: 0, bytes: 0, warn: 0, error: 0 }
  }
  const rss = d.samples.map((s) => s.rssMb).filter(Number.isFinite)
  const rssMax = rss.length > 0 ? Math.max(...rss) : NaN
  const rssAt = d.samples.find((s) => s.rssMb === rssMax)?.t ?? NaN
  out.push(`  RSS max: ${ms(rssMax)} MB at ${int(rssAt)} s (first sample ${ms(rss[0] ?? NaN)} MB)`)
  const minutes = Math.max(d.ranS, 1) / 60
  const warnPeak = warnPeakPerMinute(d.samples)
  const floodWarns = d.samples.slice(1).reduce((sum, x) => sum + x.log.warn, 0)
  out.push(
    `  log: ${int(d.log.total.lines)} lines, ${mb(d.log.total.bytes)} (${mb(d.log.total.bytes / minutes)}/min); warn ${int(d.log.total.warn)} ` +
      `(${int(floodWarns / minutes)}/min on average under the floods, ${int(warnPeak)}/min at the worst minute); error/fatal ${int(d.log.total.error)}`,
  )
  if (d.log.topWarnings.length > 0) out.push(`  most frequent warnings: ${d.log.topWarnings.map(([m, n]) => `"${m}" x${int(n)}`).join('; ')}`)
  out.push(`  state files: ${d.stateFiles.map(([f, n]) => `${f} ${mb(n)}`).join(', ') || 'none'}`)
  out.push(`  stop on SIGTERM at the end: ${d.stop}`)

  out.push('')
  out.push("what the attackers saw:")
  const r = d.results
  if (r.sse) out.push(`  sse: ${int(r.sse.opened)} streams opened (${int(r.sse.closed)} closed and reopened, ${int(r.sse.refused)} refused, ${int(r.sse.connectErrors)} connect errors); reading streams got ${mb(r.sse.bytesRead)}, ~${int(r.sse.events)} events; statuses seen by reading streams ${JSON.stringify(r.sse.statuses)}`)
  if (r.discover) out.push(`  discover: ${int(r.discover.sent)} sent from new MACs, ${int(r.discover.answered)} offered (${pct(r.discover.answered, r.discover.sent)}); their offers p50 ${ms(r.discover.offer.p50)} ms, p99 ${ms(r.discover.offer.p99)} ms`)
  if (r.spoof) out.push(`  spoofed replies: ${int(r.spoof.offers)} OFFERs + ${int(r.spoof.acks)} ACKs with random server ids`)
  if (r.tftpHold) out.push(`  tftp slot holding: ${int(r.tftpHold.sent)} RRQs (timeout=255, never ACKed), ${int(r.tftpHold.held)} answered with OACK/DATA; refusals: ${Object.entries(r.tftpHold.refused).map(([m, n]) => `"${m}" x${int(n)}`).join('; ') || 'none'}`)
  if (r.labels) out.push(`  long labels on /ipxe: ${int(r.labels.sent)} sent (${int(r.labels.skipped)} skipped, 64 in flight); answers ${JSON.stringify(r.labels.statuses)}`)
  if (r.port0) out.push(`  TFTP from source port 0: ${JSON.stringify(r.port0.sent)}`)
  if (r.syslog) out.push(`  syslog: ${int(r.syslog.sent)} lines`)

  out.push('')
  out.push("goals (issue 13's acceptance):")
  const goal = (name: string, figure: string, verdict: string): void => void out.push(`  ${name.padEnd(44)} ${figure.padEnd(44)} ${verdict}`)
  // An attempt the end of the run cut short after one of its steps had failed is a failed attempt.
  const tried = a.length + (d.cutShort?.failed === true ? 1 : 0)
  goal('valid client answered on every attempt', `${all}/${tried} attempts fully answered`, tried > 0 && all === tried ? 'pass' : 'MISS')
  goal('offer p99 <= 100 ms', offers.length > 0 ? `p99 ${ms(offer.p99)} ms (${offers.length} offers)` : 'no offers', offers.length > 0 && offer.p99 <= 100 ? 'pass' : 'MISS')
  if (d.rssBound === undefined) goal("RSS under the README's bound", `max ${ms(rssMax)} MB; README states no bound`, 'n/a')
  else goal(`RSS under ${d.rssBound.mb} MB (${d.rssBound.source})`, `max ${ms(rssMax)} MB`, rssMax < d.rssBound.mb ? 'pass' : 'MISS')
  goal(`no warn-line flood (<= ${d.warnPerMinute} warn lines/min)`, `${int(warnPeak)}/min at the worst minute`, warnPeak <= d.warnPerMinute ? 'pass' : 'MISS')
  goal('pxebox alive throughout', d.death === undefined ? 'yes' : `died at ${d.death.atS.toFixed(1)} s (${d.death.how})`, d.death === undefined ? 'pass' : 'FAIL (bench exits 1)')
  return out
}
