/**
 * The tracker's tables under a flood of unauthenticated packets (issue 13 item 10): a DISCOVER flood from new MACs
 * (the issue saw 200k; 100k against a 20k cap show the same) and 50k spoofed ACKs with random server ids stay within
 * the stated bounds, the findings are capped and summarized, and the warn log stays bounded. Also: a corrupt
 * observed.json is moved aside under a unique name each time.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { pino } from 'pino'
import t from 'tap'
import { startAddressTracking } from '../../src/addresses/tracking-service.js'
import { createAddressTracker } from '../../src/addresses/tracker.js'
import { DhcpMessageType as T, clientPacket, macOf, serverReply } from './packets.js'

function warnCounter() {
  const counts = { warn: 0, bytes: 0 }
  const logger = pino({ level: 'info' }, new Writable({
    write(chunk, _e, cb) {
      if ((JSON.parse(String(chunk)) as { level: number }).level === 40) counts.warn++
      counts.bytes += chunk.length
      cb()
    },
  }))
  return { logger, counts }
}

const WINDOW = 300_000

t.test('100k DISCOVERs from new MACs: MAC and UUID tables capped, unbound MACs age out, observed.json stays small', async (t) => {
  let clock = Date.parse('2026-01-01T00:00:00Z')
  const tracker = createAddressTracker({ strayAfterMs: 60_000, conflictWindowMs: WINDOW, allowedServers: [], now: () => clock, maxMacs: 20_000 })
  for (let i = 0; i < 100_000; i++) {
    const uuid = `${i.toString(16).padStart(8, '0')}-0000-4000-8000-000000000000`
    tracker.observeDhcp(clientPacket({ type: T.DISCOVER, mac: macOf(i, '02:aa:00'), xid: i, uuid, hostname: `h${i}`, vendorClass: 'PXEClient:Arch:00007:UNDI:003000' }), 67)
    if (i % 1000 === 0) clock += 10
  }
  tracker.evaluate()
  t.ok(tracker.machines().length <= 20_000, `${tracker.machines().length} machines remembered (cap 20,000)`)
  const during = JSON.stringify(tracker.snapshot()).length
  t.ok(during < 2_500_000, `observed.json during the flood: ${during} bytes (UUIDs within the window, capped)`)
  t.ok(tracker.evictions.macs >= 80_000 && tracker.evictions.uuids >= 80_000, `evictions counted: ${JSON.stringify(tracker.evictions)}`)
  clock += WINDOW + 1000
  tracker.evaluate()
  t.equal(tracker.machines().length, 0, 'after the window, MACs that never took an address are forgotten')
  const after = JSON.stringify(tracker.snapshot()).length
  t.ok(after < 200, `observed.json after the window: ${after} bytes`)
})

t.test('50k spoofed ACKs with distinct server ids: servers and findings capped and summarized, warn log bounded', async (t) => {
  let clock = Date.parse('2026-01-01T00:00:00Z')
  const { logger, counts } = warnCounter()
  const tracker = createAddressTracker({ strayAfterMs: 60_000, conflictWindowMs: WINDOW, allowedServers: ['10.213.60.1'], now: () => clock, logger })
  for (let i = 0; i < 50_000; i++) {
    const n = i + 1
    const server = `10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}`
    tracker.observeDhcp(serverReply({ type: T.ACK, mac: macOf(n, '02:bb:00'), yiaddr: `172.16.${(n >> 8) & 255}.${n & 255}`, server, leaseSeconds: 86_400, xid: n }), 68)
    if (i % 5000 === 0) tracker.evaluate() // the service's timer runs during the flood
  }
  const findings = tracker.evaluate()
  const rogue = findings.filter((f) => f.kind === 'rogue-server')
  t.ok(rogue.length <= 66, `${rogue.length} rogue-server findings (64 listed, one summary, one more-than-listed at most)`)
  t.ok(rogue.some((f) => f.id === 'rogue-server:unlisted' && /beyond the 64 listed/.test(f.explanation)), 'the servers beyond the cap are summarized')
  t.ok(tracker.evictions.servers >= 49_000, `${tracker.evictions.servers} sightings not listed (counted)`)
  t.ok(counts.warn <= 70, `${counts.warn} warn lines for 50k spoofed ACKs`)

  // The spoofed leases go silent: strays for every one of them, capped per kind.
  clock += 61_000
  const later = tracker.evaluate()
  const strays = later.filter((f) => f.kind === 'stray')
  t.equal(strays.length, 101, '100 strays listed and one stray:more summary')
  t.match(strays.find((f) => f.id === 'stray:more'), { explanation: /^49900 more stray findings are not listed/ })
  t.ok(counts.warn <= 175, `${counts.warn} warn lines in all`)
  const before = counts.warn
  clock += 5000
  tracker.evaluate()
  t.equal(counts.warn, before, 'the next evaluation of the same flood logs nothing new')
  t.ok(counts.bytes < 1_000_000, `${counts.bytes} bytes of log`)
  t.ok(JSON.stringify(tracker.snapshot()).length < 30_000_000, 'observed.json bounded by the binding cap')
})

t.test('findings turning over for minutes: at most 10 new-finding warn lines and one summary per minute', async (t) => {
  // bench/abuse.sh's spoofed replies: conflicts age out of a short window while new ones appear, so the listed set
  // turns over and, one line per new finding, the log grew ~140 warn lines a minute.
  let clock = Date.parse('2026-01-01T00:00:00Z')
  const lines: string[] = []
  const logged = pino({ level: 'info' }, new Writable({
    write(chunk, _e, cb) {
      const line = JSON.parse(String(chunk)) as { level: number; msg: string }
      if (line.level === 40) lines.push(line.msg)
      cb()
    },
  }))
  const tracker = createAddressTracker({ strayAfterMs: 600_000, conflictWindowMs: 20_000, allowedServers: ['10.213.60.1'], now: () => clock, logger: logged })
  let n = 0
  for (let second = 0; second < 180; second += 5) {
    for (let i = 0; i < 10; i++, n++) {
      const yiaddr = `172.16.${(n >> 8) & 255}.${n & 255}`
      for (const mac of [macOf(2 * n, '02:cc:00'), macOf(2 * n + 1, '02:cc:00')]) {
        tracker.observeDhcp(serverReply({ type: T.ACK, mac, yiaddr, server: '10.213.60.1', leaseSeconds: 86_400, xid: n }), 68)
      }
    }
    tracker.evaluate()
    clock += 5000
  }
  tracker.evaluate()
  const summaries = lines.filter((l) => /more new findings in the last 60 s/.test(l))
  const single = lines.filter((l) => l.startsWith('address finding: '))
  t.ok(n === 360, `${n} conflicts opened over 3 minutes`)
  t.ok(single.length <= 40 && single.length >= 10, `${single.length} findings logged one by one (10 per minute)`)
  t.ok(summaries.length >= 2 && summaries.length <= 4, `${summaries.length} summary lines`)
  t.ok(lines.length <= 44, `${lines.length} warn lines in 3 minutes`)
  t.ok(tracker.evaluate().filter((f) => f.kind === 'duplicate').length > 0, 'the findings themselves stay listed')
})

t.test('a corrupt observed.json is moved aside under a unique name; a second corruption does not overwrite the first', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'pxebox-observed-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const file = join(dir, 'observed.json')
  const start = () => startAddressTracking({ interfaceName: 'lo', dataDir: dir, strayAfterMs: 60_000, allowedServers: [], arp: false, listenClientPort: false })
  writeFileSync(file, '{"version":1,"bindings":[')
  await (await start()).close()
  writeFileSync(file, '{"version":7}')
  await (await start()).close()
  const aside = readdirSync(dir).filter((f) => f.startsWith('observed.json.corrupt-')).sort()
  t.equal(aside.length, 2, `two files set aside: ${aside.join(', ')}`)
  t.same(aside.map((f) => readFileSync(join(dir, f), 'utf8')).sort(), ['{"version":1,"bindings":[', '{"version":7}'], 'each with its own content')
})
