/**
 * The embedded lease book: the lease log (lease-log.ts) at `<data_dir>/leases.log`, for a single appliance. Every
 * change is one durable append; the pool of this one server is the only judge of who gets an address, so a grant
 * never finds the address taken and nothing needs freeing when a lease expires (its time alone frees it).
 */
import type { Logger } from '../host/log.js'
import { endedLease, type LeaseBook } from './lease-book.js'
import { openLeaseLog, type LeaseRecord } from './lease-log.js'

/** Opens (creating if missing) and recovers the lease log at `file` as a lease book. */
export async function openLogLeaseBook(file: string, opts: { logger?: Logger; compactAfter?: number } = {}): Promise<LeaseBook> {
  const log = await openLeaseLog(file, opts)
  /** ip -> the MAC whose record last named it. */
  const holderOf = new Map<string, string>()
  for (const r of log.leases.values()) holderOf.set(r.ip, r.mac)

  const append = async (record: LeaseRecord): Promise<void> => {
    await log.append(record)
    holderOf.set(record.ip, record.mac)
  }
  const end = async (mac: string, ip: string, at: number): Promise<LeaseRecord | undefined> => {
    const cur = log.leases.get(mac)
    if (cur === undefined || cur.ip !== ip) return undefined
    const ended = endedLease(cur, at)
    await append(ended)
    return ended
  }

  return {
    backend: 'log',
    location: log.file,
    problems: log.problems,
    up: true,
    byMac: (mac) => log.leases.get(mac),
    byAddress(ip) {
      const mac = holderOf.get(ip)
      const r = mac === undefined ? undefined : log.leases.get(mac)
      return r?.ip === ip ? r : undefined
    },
    all: () => [...log.leases.values()],
    grant: append,
    async renew(record) {
      await append(record)
      return { queued: false }
    },
    release: end,
    decline: end,
    expire: async () => 0,
    onChange: () => () => undefined,
    close: () => log.close(),
  }
}
