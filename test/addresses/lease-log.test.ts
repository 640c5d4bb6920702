import t from 'tap'
import { mkdtempSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { pino } from 'pino'
import { openLeaseLog, parseLeaseLog, type LeaseRecord } from '../../src/addresses/lease-log.js'
import { createAddressPool } from '../../src/addresses/pool.js'

const rec = (n: number, extra: Partial<LeaseRecord> = {}): LeaseRecord => ({ mac: `02:00:00:00:00:${n.toString(16).padStart(2, '0')}`, ip: `10.0.0.${n}`, expires: 2e12, at: 1e12, ...extra })

function capture() {
  const lines: Record<string, unknown>[] = []
  const logger = pino({ level: 'info' }, new Writable({ write(chunk, _e, cb) { lines.push(JSON.parse(String(chunk))); cb() } }))
  return { logger, lines }
}

t.test('truncated mid-record: complete records kept, a warning names the file and offset, appends continue cleanly', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'pxebox-leaselog-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const file = join(dir, 'leases.log')
  const log1 = await openLeaseLog(file)
  for (let i = 1; i <= 3; i++) await log1.append(rec(i))
  await log1.close()
  const size = statSync(file).size
  const thirdStart = readFileSync(file, 'utf8').lastIndexOf('{')
  truncateSync(file, size - 10) // the crash hit while the third record was being written
  const { logger, lines } = capture()
  const log2 = await openLeaseLog(file, { logger })
  t.same([...log2.leases.keys()], [rec(1).mac, rec(2).mac], 'both complete records kept')
  t.same(log2.problems, [{ offset: thirdStart, reason: `incomplete record (${size - 10 - thirdStart} bytes without a newline at the end: a write cut short)` }])
  const warn = lines.find((l) => l.level === 40)
  t.match(warn, { file, offset: thirdStart, msg: new RegExp(`lease log ${file}: incomplete record .* at byte offset ${thirdStart}; dropped`) })
  await log2.append(rec(4))
  await log2.close()
  const parsed = parseLeaseLog(readFileSync(file))
  t.same(parsed.problems, [], 'the torn tail was compacted away: no garbage glued to the next record')
  t.same([...parsed.leases.keys()], [rec(1).mac, rec(2).mac, rec(4).mac])
})

t.test('a corrupt line in the middle is skipped and reported; the latest record per MAC wins', async (t) => {
  const buf = Buffer.from(JSON.stringify(rec(1)) + '\n' + 'garbage{\n' + JSON.stringify(rec(1, { ip: '10.0.0.9' })) + '\n' + JSON.stringify({ mac: 'x' }) + '\n')
  const r = parseLeaseLog(buf)
  t.same(r.leases.get(rec(1).mac)?.ip, '10.0.0.9')
  t.same(r.problems.map((p) => p.offset), [JSON.stringify(rec(1)).length + 1, buf.length - JSON.stringify({ mac: 'x' }).length - 1])
})

t.test('concurrent appends are group-committed and all durable when they resolve', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'pxebox-leaselog-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const file = join(dir, 'leases.log')
  writeFileSync(file, '')
  const log = await openLeaseLog(file)
  await Promise.all(Array.from({ length: 300 }, (_, i) => log.append(rec(i % 250, { at: i }))))
  t.equal(parseLeaseLog(readFileSync(file)).leases.size, 250)
  await log.close()
})

t.test('pool: reservation, sticky address, requested, skip bad and held, exhaustion', async (t) => {
  let now = 1_000_000
  const pool = createAddressPool({
    start: '10.0.0.10', end: '10.0.0.13', exclude: ['10.0.0.11'],
    reservations: [{ mac: '02:00:00:00:00:aa', address: '10.0.0.50', hostname: 'r' }, { uuid: 'AAAAAAAA-0000-4000-8000-000000000001', address: '10.0.0.51' }],
    leases: [rec(12, { mac: '02:00:00:00:00:12', ip: '10.0.0.12', expires: now + 1000 })],
    now: () => now,
  })
  t.match(pool.choose({ mac: '02:00:00:00:00:aa' }), { ip: '10.0.0.50', reservation: { hostname: 'r' } })
  t.match(pool.choose({ mac: '02:00:00:00:00:bb', uuid: 'aaaaaaaa-0000-4000-8000-000000000001' }), { ip: '10.0.0.51' })
  t.same(pool.choose({ mac: '02:00:00:00:00:12' }), { ip: '10.0.0.12', known: true }, 'its own lease')
  t.same(pool.choose({ mac: '02:00:00:00:00:01', requested: '10.0.0.13' }), { ip: '10.0.0.13', known: false }, 'requested and free')
  pool.markBad('10.0.0.10', now + 5000)
  pool.hold('10.0.0.13', '02:00:00:00:00:02')
  t.equal(pool.choose({ mac: '02:00:00:00:00:03' }), undefined, '.10 bad, .11 ours, .12 leased, .13 held: exhausted')
  t.notOk(pool.canLease({ mac: '02:00:00:00:00:03' }, '10.0.0.12'))
  t.ok(pool.canLease({ mac: '02:00:00:00:00:02' }, '10.0.0.13'))
  now += 70_000
  t.same(pool.choose({ mac: '02:00:00:00:00:03' }), { ip: '10.0.0.10', known: false }, 'bad time over, hold over: .10 first')
})

t.test('every field is validated on load: ip 999.999.999.999, a bad MAC, negative or fractional times are dropped', async (t) => {
  const bad = [rec(1, { ip: '999.999.999.999' }), rec(2, { ip: '10.0.0' }), { ...rec(3), mac: '02:00:00:00:00' }, rec(4, { expires: -1 }), rec(5, { at: 1.5 }), rec(6, { hostname: 'x'.repeat(300) })]
  const r = parseLeaseLog(Buffer.from([...bad, rec(7)].map((x) => JSON.stringify(x) + '\n').join('')))
  t.same([...r.leases.keys()], [rec(7).mac], 'only the valid record is kept')
  t.equal(r.problems.length, bad.length, 'each invalid record is reported')
})

t.test('a torn fragment glued to the next whole record (a full disk under an older build) loses only the fragment', async (t) => {
  const torn = JSON.stringify(rec(1)).slice(0, 1)
  const r = parseLeaseLog(Buffer.from(JSON.stringify(rec(2)) + '\n' + torn + JSON.stringify(rec(3)) + '\n'))
  t.same([...r.leases.keys()], [rec(2).mac, rec(3).mac], 'the record after the fragment is kept')
  t.same(r.problems.map((p) => p.reason), ['corrupt record (not a valid lease JSON line)'], 'the fragment is reported')
})
