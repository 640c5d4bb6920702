/**
 * Issue 20: a syslog flood of 50,000 lines/s for 10 s from 100 sources leaves DHCP and `/ipxe` answering and the
 * daemon's memory bounded, with malformed lines counted. The real daemon (dist/src/main.js, built by `npm test`)
 * runs in a namespace as a new user's box would: authoritative DHCP, discovery holding, syslog on UDP 514 with the
 * default limits. The 100 flood sources are machines pxebox knows (each fetched `/ipxe` from its address first), so
 * every accepted line takes the full path: attribution, the machine's log, the record's change notification.
 * The flood (test/syslog/flood-sender.py: a tenth malformed, a hundredth oversized) comes over the bridge from the
 * clients' namespace; from the same namespace a probe sends a PXE DISCOVER and a `GET /ipxe` every 100 ms.
 *
 * Bounds asserted (generous: 2 cores shared by several helpers' test runs and VMs; the measured values, and the same
 * probes for 3 s before the flood, are printed as comments): every DISCOVER got its OFFER and every `/ipxe` its
 * script, p99 of each under 2000 ms; the daemon's RSS grew less than 128 MB; every datagram sent was counted, by
 * pxebox (accepted, or dropped by reason: malformed, oversized, rate) or by the kernel at the socket buffer; the
 * OFFERs carry option 7 (RFC 2132 3.9) naming pxebox, since syslog is on. The python sender aims at 50,000 lines/s
 * but is CPU-bound here: the rate it reached is in the comments ("sent N in S").
 */
import t from 'tap'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { spawn, type ChildProcess } from 'node:child_process'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { stringify } from 'yaml'
import { ip, NetnsLab, netnsUnavailable, tsNodeArgs } from '../helpers/netns.js'
import { runPxebox } from '../helpers/daemon.js'

const SRV = 'sfl-srv'
const CLI = 'sfl-cli'
const NET = '10.213.58'
const ADDRESS = `${NET}.1`
const URL_BASE = `http://${ADDRESS}:8080`
const SOURCES = 100
const FIRST_SOURCE = `${NET}.10`
const RATE = 50_000
const SECONDS = 10
const PROBE = fileURLToPath(new URL('flood-probe.ts', import.meta.url))
const SENDER = fileURLToPath(new URL('../syslog/flood-sender.py', import.meta.url))

const percentile = (values: number[], p: number): number => {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))] ?? NaN
}

/** Run a child to its end; its stdout's last JSON line. */
function jsonResult(child: ChildProcess): Promise<Record<string, any>> {
  let out = ''
  let err = ''
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()))
  child.stderr?.on('data', (d: Buffer) => (err += d.toString()))
  return new Promise((resolve, reject) => {
    child.on('close', (code) => {
      const line = out.trim().split('\n').filter((l) => l.startsWith('{')).pop()
      if (line === undefined) reject(new Error(`child exited ${code} without a result; stderr:\n${err}`))
      else resolve(JSON.parse(line) as Record<string, any>)
    })
  })
}

/** VmRSS of a process in MB (the daemon runs under `ip netns exec`, which execs: the child's PID is pxebox's). */
const rssMb = (pid: number): number => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? NaN) / 1024

const reason = (await netnsUnavailable()) ?? (spawn('python3', ['--version']).pid === undefined ? 'python3 missing' : undefined)
t.test('a 50,000 lines/s syslog flood from 100 known machines: DHCP and /ipxe keep answering, memory bounded', { skip: reason ?? false }, async (t) => {
  const lab = new NetnsLab()
  const dir = mkdtempSync(join(tmpdir(), 'pxebox-syslog-flood-'))
  t.teardown(async () => {
    await lab.cleanup()
    rmSync(dir, { recursive: true, force: true })
  })
  await lab.namespace(SRV)
  await lab.bridge(SRV, 'br0', `${ADDRESS}/24`)
  await lab.namespace(CLI)
  await lab.veth({ ns: CLI, ifname: 'eth0', cidr: `${NET}.250/24`, peerNs: SRV, peerIfname: 'vcli', bridge: 'br0', defaultRoute: true })
  const batch = join(dir, 'sources.ip')
  writeFileSync(batch, Array.from({ length: SOURCES }, (_, i) => `addr add ${NET}.${10 + i}/24 dev eth0\n`).join(''))
  await ip('-n', CLI, '-batch', batch)

  for (const sub of ['data', 'assets', 'ignition']) mkdirSync(join(dir, sub))
  const config = join(dir, 'config.yaml')
  writeFileSync(config, stringify({
    interface: 'br0',
    address: ADDRESS,
    data_dir: join(dir, 'data'),
    assets_dir: join(dir, 'assets'),
    ignition_dir: join(dir, 'ignition'),
    // No ARP probe: the offer latency is pxebox's own, not arping's wait.
    dhcp: { mode: 'authoritative', interface_pinning: 'auto', range: { start: `${NET}.150`, end: `${NET}.240` }, arp_probe_ms: 0 },
    tftp: { enabled: false },
    http: { enabled: true, listen: `${ADDRESS}:8080`, public_url: URL_BASE },
    discovery: { mode: 'hold' },
    syslog: { enabled: true },
    profiles: {},
    groups: [],
  }))
  const daemon = runPxebox(['serve', '--config', config], { netns: SRV })
  t.teardown(() => daemon.kill())
  await daemon.waitFor(/pxebox \S+ ready/, 30_000)
  const pid = daemon.child.pid as number

  const node = (role: string, args: object): ChildProcess => lab.spawn(CLI, [process.execPath, ...tsNodeArgs(), PROBE, role, JSON.stringify(args)])
  const introduced = await jsonResult(node('introduce', { url: URL_BASE, first: FIRST_SOURCE, count: SOURCES }))
  t.equal(introduced.introduced, SOURCES, 'every flood source is a machine pxebox knows (its /ipxe answered from its address)')

  const idle = await jsonResult(node('probe', { url: URL_BASE, seconds: 3, intervalMs: 100 }))
  t.comment(`before the flood: DHCP offer p50 ${percentile(idle.dhcp, 50).toFixed(1)} ms p99 ${percentile(idle.dhcp, 99).toFixed(1)} ms; /ipxe p50 ${percentile(idle.http, 50).toFixed(1)} ms p99 ${percentile(idle.http, 99).toFixed(1)} ms`)
  const rssBefore = rssMb(pid)
  let rssMax = rssBefore
  const sampler = setInterval(() => (rssMax = Math.max(rssMax, rssMb(pid))), 250)
  t.teardown(() => clearInterval(sampler))

  const sender = lab.spawn(CLI, ['python3', SENDER, '514', String(RATE), String(SECONDS), String(SOURCES), ADDRESS, FIRST_SOURCE])
  let senderOut = ''
  sender.stdout?.on('data', (d: Buffer) => (senderOut += d.toString()))
  const senderDone = new Promise<number | null>((r) => sender.on('close', r))
  const probe = jsonResult(node('probe', { url: URL_BASE, seconds: SECONDS, intervalMs: 100 }))
  const [flood, senderCode] = await Promise.all([probe, senderDone])
  await new Promise((r) => setTimeout(r, 500))
  clearInterval(sampler)
  t.equal(senderCode, 0, `the flood sender ran to the end (${senderOut.trim()})`)

  const metrics = await new Promise<string>((resolve, reject) => {
    const curl = lab.spawn(CLI, ['curl', '-sS', '-m', '10', `${URL_BASE}/metrics`])
    let body = ''
    curl.stdout?.on('data', (d: Buffer) => (body += d.toString()))
    curl.on('close', (code) => (code === 0 ? resolve(body) : reject(new Error(`curl /metrics exited ${code}`))))
  })
  const metric = (name: string): number => Number(new RegExp(`^${name.replace(/[{}"]/g, '\\$&')} (\\S+)$`, 'm').exec(metrics)?.[1] ?? NaN)
  const outcomes = ['accepted', 'rate_source', 'rate_global', 'oversized', 'malformed', 'handler_error']
  const counted = Object.fromEntries(outcomes.map((o) => [o, metric(`pxebox_syslog_lines_total{outcome="${o}"}`)]))
  const kernelDrops = metric('pxebox_syslog_kernel_drops')
  const unattributed = metric('pxebox_syslog_unattributed_total')
  t.comment(`syslog: ${senderOut.trim()}; pxebox counted ${JSON.stringify(counted)}, unattributed ${unattributed}, kernel drops at the socket ${kernelDrops}`)

  const p99Dhcp = percentile(flood.dhcp, 99)
  const p99Http = percentile(flood.http, 99)
  const rssGrowth = rssMax - rssBefore
  t.comment(
    `during the flood: DHCP ${flood.dhcp.length} offers p50 ${percentile(flood.dhcp, 50).toFixed(1)} ms p99 ${p99Dhcp.toFixed(1)} ms max ${Math.max(...flood.dhcp).toFixed(1)} ms, ${flood.dhcpLost} lost; ` +
      `/ipxe ${flood.http.length} answers p50 ${percentile(flood.http, 50).toFixed(1)} ms p99 ${p99Http.toFixed(1)} ms, ${flood.httpFailed} failed; RSS ${rssBefore.toFixed(0)} -> max ${rssMax.toFixed(0)} MB`,
  )

  t.ok(counted.accepted! > 0, 'lines were accepted')
  t.ok(counted.malformed! > 0, 'malformed lines were counted')
  t.ok(counted.oversized! > 0, 'oversized lines were counted')
  // What was sent was either read by pxebox (and counted by outcome) or dropped by the kernel at the full socket
  // buffer: nothing vanished uncounted. (Within 1%: a sendto that failed with ENOBUFS is counted as sent.) Here the
  // socket buffer, not the rate limits, is what bounds the intake when pxebox reads fewer lines than the limits allow.
  const sent = Number(/sent (\d+)/.exec(senderOut)?.[1] ?? NaN)
  const read = outcomes.reduce((sum, o) => sum + counted[o]!, 0)
  t.ok(Math.abs(sent - (read + kernelDrops)) <= sent / 100, `sent ${sent} = read ${read} + kernel drops ${kernelDrops}`)
  // The sender is CPU-bound on a shared machine (measured: ~20,000 lines/s beside the daemon and the probes); it
  // must at least have outrun what pxebox reads, or the flood proves nothing.
  t.ok(kernelDrops > 0, 'the flood outran the receiver (the kernel dropped datagrams)')
  t.equal(counted.handler_error, 0, 'attributing lines never failed')
  t.equal(unattributed, 0, 'every accepted line was attributed to its machine')
  t.equal(flood.dhcpLost, 0, 'every DISCOVER during the flood got an OFFER')
  t.equal(flood.httpFailed, 0, 'every /ipxe during the flood was answered')
  t.ok(flood.http.length >= SECONDS * 5, `/ipxe kept answering through the flood (${flood.http.length} answers)`)
  t.ok(p99Dhcp < 2000, `DHCP offer p99 ${p99Dhcp.toFixed(1)} ms < 2000 ms`)
  t.ok(p99Http < 2000, `/ipxe p99 ${p99Http.toFixed(1)} ms < 2000 ms`)
  t.ok(rssGrowth < 128, `daemon RSS growth ${rssGrowth.toFixed(1)} MB < 128 MB`)
  t.same(flood.option7, [ADDRESS], 'every OFFER names pxebox as log server (option 7)')
  t.equal(daemon.child.exitCode, null, 'the daemon is still running')
})
