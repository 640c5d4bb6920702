/**
 * Issue 13 item 2, on the wire: `/v1/events` streams that never read must not starve DHCP. The real daemon runs in
 * its own namespace in proxy mode on a bridge; an attacker namespace opens every event stream it can (and more)
 * without reading a byte, and drives machine changes at a rack's power-on rate (DISCOVERs from ever-new MACs: each
 * one creates a machine record, which the fan-out sends to every stream); meanwhile a valid UEFI client in a third
 * namespace sends a DISCOVER every 100 ms and times each OFFER.
 *
 * Before the fan-out, every stream stringified and wrote every change itself and ignored backpressure: with 500
 * such streams at 300 changes/s a valid client got no offer within 6 s and pxebox grew by gigabytes (the issue's
 * report). Now each change is rendered once, a stream more than 256 KiB behind is closed and counted, and streams
 * beyond api.max_event_streams (64 by default) get a 503.
 */
import t from 'tap'
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { ChildProcess } from 'node:child_process'
import { NetnsLab, netnsUnavailable, tsNodeArgs } from '../../helpers/netns.js'
import { runPxebox } from '../../helpers/daemon.js'
import type { PxeClientArgs, PxeClientResult, SseFloodArgs, SseFloodResult } from '../../helpers/pxe-abuse-roles.js'
import { onJsonLines } from '../../helpers/json-lines.js'

const NS = { server: 'ssedhcp-s', attacker: 'ssedhcp-a', client: 'ssedhcp-c' }
const NET = { server: '10.213.113.1', attacker: '10.213.113.10', client: '10.213.113.50', bridge: 'ssedhbr', httpPort: 8080 }
const ROLES = fileURLToPath(new URL('../../helpers/pxe-abuse-roles.ts', import.meta.url))

/** The attack. Streams: far more than the default cap of 64 (the old code had no cap: all 500 stayed open). */
const STREAMS = 500
/** A rack powering on: 300 new machines a second, for the whole run. */
const RATE = 300
const FLOOD_MS = 22_000
/** The valid client's run, inside the flood (it starts once the streams are open). */
const CLIENT_MS = 17_000
/** A DISCOVER with no OFFER within EDK2's first retransmission timeout (4 s, RFC 2131 section 4.1) is a miss. */
const GIVE_UP_MS = 4000
/**
 * Offer p99 bound. The bench goal is 100 ms on a quiet machine; this test shares 2 cores with the attacker,
 * the client, tap and other test files running at once, so the bound is 2.5 times that. Measured here with the
 * fan-out: p99 about 70-180 ms; before it, a third of the DISCOVERs were answered at all, p99 3.7 s.
 */
const OFFER_P99_MS = 250
/** pxebox's RSS bound: about 200 MB at most under this attack with the fan-out; before it, over 600 MB and growing. */
const RSS_MB = 400

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** Resident set size of `pid` in MB, or NaN when it is gone. */
function rssMb(pid: number): number {
  try {
    const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
    return m ? Number(m[1]) / 1024 : NaN
  } catch {
    return NaN
  }
}

/** One Prometheus sample's value, NaN when the metric is absent. */
function sample(text: string, name: string): number {
  const m = new RegExp(`^${name.replace(/[{}"]/g, (c) => `\\${c}`)} (\\d+)$`, 'm').exec(text)
  return m ? Number(m[1]) : NaN
}

/** Nearest-rank percentile of `xs` (q in 0..1). */
function percentile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))] ?? NaN
}

/** The JSON lines a role prints, as they come, and the last one when it exits. */
function roleOutput(child: ChildProcess): { lines: Record<string, unknown>[]; done: Promise<Record<string, unknown>> } {
  const lines: Record<string, unknown>[] = []
  let stderr = ''
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()))
  onJsonLines(child.stdout, (line) => lines.push(line))
  const done = new Promise<Record<string, unknown>>((resolve, reject) =>
    child.on('close', (code) => {
      const last = lines[lines.length - 1]
      if (code === 0 && last !== undefined) resolve(last)
      else reject(new Error(`role exited ${code}: ${stderr.slice(-2000)}`))
    }),
  )
  return { lines, done }
}

const reason = await netnsUnavailable()
t.test('silent /v1/events streams at a rack power-on rate: a PXE client is offered promptly, memory bounded, streams closed and counted', { skip: reason ?? false }, async (t) => {
  const lab = new NetnsLab()
  t.teardown(() => lab.cleanup())
  await lab.namespace(NS.server)
  await lab.bridge(NS.server, NET.bridge, `${NET.server}/24`)
  await lab.namespace(NS.attacker)
  await lab.veth({ ns: NS.attacker, ifname: 'eth0', cidr: `${NET.attacker}/24`, peerNs: NS.server, peerIfname: 'ssedh-a', bridge: NET.bridge, defaultRoute: true })
  await lab.namespace(NS.client)
  await lab.veth({ ns: NS.client, ifname: 'eth0', cidr: `${NET.client}/24`, peerNs: NS.server, peerIfname: 'ssedh-c', bridge: NET.bridge, defaultRoute: true })

  const dir = await mkdtemp(join(tmpdir(), 'pxebox-ssedhcp-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  await chmod(dir, 0o755)
  for (const d of ['firmware', 'assets', 'data']) await mkdir(join(dir, d), { mode: 0o777 })
  const config = join(dir, 'config.yaml')
  await writeFile(
    config,
    [
      `interface: ${NET.bridge}`,
      `address: ${NET.server}`,
      'data_dir: ./data',
      'assets_dir: ./assets',
      'dhcp: { mode: proxy }',
      'tftp: { root: ./firmware }',
      `http: { listen: "${NET.server}:${NET.httpPort}" }`,
      '',
    ].join('\n'),
  )
  const d = runPxebox(['serve', '--config', config], { netns: NS.server })
  t.teardown(() => d.kill())
  // Generous: the daemon starts in about a second, far slower on a loaded test machine.
  await d.waitFor(/HTTP\s+http:\/\/10\.213\.113\.1:8080/, 60_000)
  const pid = d.child.pid as number
  const rss: number[] = [rssMb(pid)]
  const watch = setInterval(() => rss.push(rssMb(pid)), 250)
  t.teardown(() => clearInterval(watch))

  const role = (ns: string, name: string, args: SseFloodArgs | PxeClientArgs) =>
    roleOutput(lab.spawn(ns, [process.execPath, ...tsNodeArgs(), ROLES, name, JSON.stringify(args)]))
  const attacker = role(NS.attacker, 'sse-flood', { server: NET.server, httpPort: NET.httpPort, streams: STREAMS, rate: RATE, durationMs: FLOOD_MS, macByte: 'e2' })
  for (let i = 0; i < 600 && !attacker.lines.some((l) => 'streamsOpen' in l); i++) await sleep(100)
  t.ok(attacker.lines.some((l) => 'streamsOpen' in l), 'the attacker opened its streams')
  // The flood has begun: give the silent streams' buffers a moment to fill before the client starts timing.
  await sleep(1500)
  const client = role(NS.client, 'pxe-client', { server: NET.server, mac: '52:54:00:13:dc:01', durationMs: CLIENT_MS, giveUpMs: GIVE_UP_MS, intervalMs: 100 })
  const [flood, valid] = (await Promise.all([attacker.done, client.done])) as [unknown, unknown] as [SseFloodResult, PxeClientResult]
  clearInterval(watch)
  t.equal(d.child.exitCode, null, `pxebox still runs (stderr: ${d.stderr().slice(-500)})`)

  const answered = valid.latencies.filter((l): l is number => l !== null)
  const p50 = percentile(answered, 0.5)
  const p99 = percentile(answered, 0.99)
  const maxRss = Math.max(...rss.filter((x) => !Number.isNaN(x)))
  const metrics = (await lab.exec(NS.server, ['curl', '-sS', '--max-time', '10', `http://${NET.server}:${NET.httpPort}/metrics`])).stdout
  const slow = sample(metrics, 'pxebox_event_streams_ended_total{reason="slow_reader"}')
  t.comment(
    `valid client: ${answered.length}/${valid.latencies.length} DISCOVERs answered, offer p50 ${p50} ms p99 ${p99} ms max ${Math.max(...answered)} ms; ` +
      `attacker: streams ${JSON.stringify(flood.statuses)}, ${flood.offersReceived}/${flood.discoversSent} flood DISCOVERs offered; ` +
      `pxebox RSS ${rss[0]?.toFixed(0)} MB at start, max ${maxRss.toFixed(0)} MB; slow_reader closes ${slow}; ` +
      metrics.split('\n').filter((l) => l.startsWith('pxebox_dhcp_requests_total')).join(', '),
  )

  t.ok(valid.latencies.length >= 100, `the client kept asking (${valid.latencies.length} DISCOVERs)`)
  t.equal(answered.length, valid.latencies.length, 'every valid DISCOVER was answered')
  t.ok(p99 < OFFER_P99_MS, `offer p99 ${p99} ms < ${OFFER_P99_MS} ms`)
  t.ok(maxRss < RSS_MB, `pxebox RSS stayed under ${RSS_MB} MB (max ${maxRss.toFixed(0)} MB)`)
  const accepted = flood.statuses['200'] ?? 0
  t.equal(accepted, 64, 'api.max_event_streams (64 by default) streams were accepted')
  t.equal(flood.statuses['503'], STREAMS - accepted, 'the rest were refused with a 503')
  t.equal(slow, accepted, 'every silent stream was closed as a slow reader, and counted')
  // The first report: with the streams open, 4.7% of a DISCOVER flood was answered (97% without). Half is the
  // bound because the attacker's own process shares the 2 cores and may miss OFFERs that pxebox did send.
  t.ok(flood.offersReceived > flood.discoversSent / 2, `most of the rack's DISCOVERs were offered (${flood.offersReceived}/${flood.discoversSent})`)
})
