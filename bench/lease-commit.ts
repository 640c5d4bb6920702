/**
 * What a durable lease costs in each lease book (src/addresses/lease-book.ts): the lease log (an append with an
 * asynchronous fdatasync; appends arriving meanwhile are committed together, group commit) against the Store: a raw
 * durable SQLite put, and the Store-backed book (a batch guarded on the address claim and the lease, durable), which
 * is what a shared store runs. A durable SQLite commit through better-sqlite3 runs its fsync on the event loop, one
 * per commit, stalling DHCP, TFTP and HTTP for each; so the lease log stays the single appliance's book.
 *   node dist/bench/lease-commit.js [--grants 1000] [--concurrency 50]
 * Prints, for each: grants per second, the commit (= ACK) latency p50/p99 as a client sees it with `concurrency`
 * grants outstanding, and the longest the event loop went without a turn while they ran. A benchmark, not a test.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import type { LeaseRecord } from '../src/addresses/lease-log.js'
import { openLogLeaseBook } from '../src/addresses/log-lease-book.js'
import { openStoreLeaseBook } from '../src/addresses/store-lease-book.js'
import { openSqliteStore } from '../src/store/index.js'
import { watchLoopGaps } from './lib/loop-gap.js'

const { values: args } = parseArgs({ options: { grants: { type: 'string', default: '1000' }, concurrency: { type: 'string', default: '50' } } })
const grants = Number(args.grants)
const concurrency = Number(args.concurrency)
const lease = (i: number): LeaseRecord => ({ mac: `02:00:00:00:${((i >> 8) & 255).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`, ip: `10.213.${(i >> 8) & 255}.${i & 255}`, expires: Date.now() + 3_600_000, at: Date.now() })

const percentile = (sorted: number[], p: number): number => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN

async function run(name: string, commit: (r: LeaseRecord) => Promise<unknown>): Promise<void> {
  // The longest time between two turns of a 1 ms timer: how long DHCP, TFTP and HTTP would have waited.
  const stop = watchLoopGaps()
  const latencies: number[] = []
  const t0 = performance.now()
  let next = 0
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < grants) {
        const start = performance.now()
        await commit(lease(next++))
        latencies.push(performance.now() - start)
      }
    }),
  )
  const end = performance.now()
  const worst = stop()
  latencies.sort((a, b) => a - b)
  console.log(
    `${name.padEnd(44)} ${(grants / ((end - t0) / 1000)).toFixed(0).padStart(6)} grants/s   ACK p50 ${percentile(latencies, 50).toFixed(1).padStart(6)} ms  p99 ${percentile(latencies, 99).toFixed(1).padStart(6)} ms   longest event loop stall ${worst.toFixed(1).padStart(7)} ms`,
  )
}

console.log(`${grants} grants, ${concurrency} outstanding; load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}`)
const dir = mkdtempSync(join(tmpdir(), 'pxebox-lease-commit-'))
try {
  const log = await openLogLeaseBook(join(dir, 'leases.log'))
  await run('lease log book (fdatasync, group commit)', (r) => log.grant(r))
  await log.close()
  const raw = await openSqliteStore({ file: join(dir, 'raw.db') })
  await run('SQLite store, durable (FULL) put', (r) => raw.put('lease', r.mac, r, { durable: true }))
  await raw.close()
  const store = await openSqliteStore({ file: join(dir, 'pxebox.db') })
  const book = await openStoreLeaseBook({ store })
  await run('Store lease book over SQLite (claim+lease)', (r) => book.grant(r))
  await book.close()
  await store.close()
} finally {
  rmSync(dir, { recursive: true, force: true })
}
