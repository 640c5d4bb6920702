/**
 * Why authoritative leases stay in the lease log (src/addresses/lease-log.ts) rather than the SQLite store: a lease
 * must be on disk before its ACK. The log appends with an asynchronous fdatasync and commits whatever arrived
 * meanwhile together (group commit); a durable SQLite commit through better-sqlite3 runs its fsync on the event
 * loop, one per commit, stalling DHCP, TFTP and HTTP for each.
 *   node dist/bench/lease-commit.js [--grants 1000] [--concurrency 50]
 * Prints, for both: grants per second and the longest the event loop went without a turn while they ran. A benchmark, not a test.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { openLeaseLog, type LeaseRecord } from '../src/addresses/lease-log.js'
import { openSqliteStore } from '../src/store/index.js'

const { values: args } = parseArgs({ options: { grants: { type: 'string', default: '1000' }, concurrency: { type: 'string', default: '50' } } })
const grants = Number(args.grants)
const concurrency = Number(args.concurrency)
const lease = (i: number): LeaseRecord => ({ mac: `02:00:00:00:${((i >> 8) & 255).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`, ip: `10.213.${(i >> 8) & 255}.${i & 255}`, expires: Date.now() + 3_600_000, at: Date.now() })

async function run(name: string, commit: (r: LeaseRecord) => Promise<unknown>): Promise<void> {
  // The longest time between two turns of a 1 ms timer: how long DHCP, TFTP and HTTP would have waited.
  let last = performance.now()
  let worst = 0
  const tick = setInterval(() => {
    const now = performance.now()
    worst = Math.max(worst, now - last)
    last = now
  }, 1)
  const t0 = performance.now()
  let next = 0
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < grants) await commit(lease(next++))
    }),
  )
  const end = performance.now()
  clearInterval(tick)
  worst = Math.max(worst, end - last)
  console.log(`${name.padEnd(36)} ${(grants / ((end - t0) / 1000)).toFixed(0).padStart(6)} grants/s   longest event loop stall ${worst.toFixed(1).padStart(7)} ms`)
}

const dir = mkdtempSync(join(tmpdir(), 'pxebox-lease-commit-'))
try {
  const log = await openLeaseLog(join(dir, 'leases.log'))
  await run('lease log (fdatasync, group commit)', (r) => log.append(r))
  await log.close()
  const store = await openSqliteStore({ file: join(dir, 'pxebox.db') })
  await run('SQLite store, durable (FULL) put', (r) => store.put('lease', r.mac, r, { durable: true }))
  await store.close()
} finally {
  rmSync(dir, { recursive: true, force: true })
}
