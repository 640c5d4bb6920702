/**
 * The appliance registry (issue 17): every appliance on a shared etcd store puts `<prefix>/appliance/<name>` (its
 * name, site, interface, address, version, start time and heartbeat) attached to an etcd lease of `ttlSeconds`, kept
 * alive by the client. When an appliance stops answering (kill -9, power cut, cut off from etcd) its lease expires
 * and etcd deletes the key: the others see it go within the TTL. The record is also kept, without a lease, under
 * `appliance-seen/<name>`, so an appliance that starts after another one stopped still lists it as gone.
 *
 * One name, one running appliance: the key is created with `Txn(If(CreateRevision == 0))`, so a second appliance
 * with a live name is refused at start (RegistryNameTaken). A restart within the TTL (systemd after a crash) finds
 * its previous run's record, with this host name and a PID that no longer runs, and waits for its lease to run out
 * instead.
 *
 * Whether etcd answers is not decided here: the outage layer in front of the daemon's store (mirrored.ts, its `up`)
 * is the one health flag (`pxebox_store_up`, the API's 503, the log line per change). A heartbeat that fails is only
 * logged at debug; the lease lost after a long outage is claimed again when etcd answers.
 */
import { hostname } from 'node:os'
import type { Lease } from 'etcd3'
import { silentLogger, type Logger } from '../host/log.js'
import { StoreError, type StoreWatch } from './store.js'
import type { EtcdStore } from './etcd.js'

/** Store kind of the live records (attached to a lease). */
export const APPLIANCE_KIND = 'appliance'
/** Store kind of the last record seen of each appliance (no lease: outlives it). */
export const APPLIANCE_SEEN_KIND = 'appliance-seen'

/** What an appliance says about itself. */
export interface ApplianceRecord {
  readonly name: string
  readonly site: string
  readonly interface: string
  readonly address: string
  readonly version: string
  /** The host it runs on and its process: a restart may wait out its own previous run's record. */
  readonly host: string
  readonly pid: number
  /** ISO 8601. */
  readonly started: string
  /** ISO 8601: the last heartbeat written. */
  readonly heartbeat: string
}

/** An appliance as GET /v1/appliances shows it. */
export interface ApplianceView extends ApplianceRecord {
  /** up: its record is live in etcd; gone: its lease expired (or it stopped). */
  readonly state: 'up' | 'gone'
}

/** A second appliance with a live name. */
export class RegistryNameTaken extends StoreError {
  override readonly name = 'RegistryNameTaken'
  constructor(readonly holder: ApplianceRecord) {
    super(
      'PXEBOX_APPLIANCE_NAME_TAKEN',
      `appliance name "${holder.name}" is held by a running appliance (host ${holder.host}, site ${holder.site}, address ${holder.address}, started ${holder.started}, heartbeat ${holder.heartbeat}); give this one another store.name`,
    )
  }
}

/** Options for registerAppliance. */
export interface RegistryOptions {
  /** Lease TTL: how long after its last heartbeat an appliance shows as gone. Default 10 s. */
  readonly ttlSeconds?: number
  readonly logger?: Logger
  readonly now?: () => Date
  /** Ends the start's wait for this host's previous run's record to expire (the process is told to stop). */
  readonly signal?: AbortSignal
}

/** This appliance's registration and the fleet's list. */
export interface ApplianceRegistry {
  /** Every appliance known: live ones up, the rest gone. By site, then name. */
  list(): ApplianceView[]
  /** Stop the heartbeat, revoke the lease (the key goes at once) and stop watching. */
  close(): Promise<void>
}

/** Whether a process of this host runs with `pid` (signal 0 checks without sending anything). */
function running(pid: unknown): boolean {
  if (typeof pid !== 'number' || !Number.isInteger(pid) || pid <= 0) return false
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

const isRecord = (v: unknown): v is ApplianceRecord => typeof v === 'object' && v !== null && typeof (v as { name?: unknown }).name === 'string'

/** Register `self` (heartbeat filled in) and follow the others. Throws RegistryNameTaken for a live name. */
export async function registerAppliance(store: EtcdStore, self: Omit<ApplianceRecord, 'heartbeat' | 'host' | 'pid'>, opts: RegistryOptions = {}): Promise<ApplianceRegistry> {
  const ttl = opts.ttlSeconds ?? 10
  const now = opts.now ?? (() => new Date())
  const logger = (opts.logger ?? silentLogger).child({ component: 'registry' })
  const host = hostname()
  const key = Buffer.from(store.key(APPLIANCE_KIND, self.name))
  const record = (): ApplianceRecord => ({ ...self, host, pid: process.pid, heartbeat: now().toISOString() })
  const live = new Map<string, ApplianceRecord>()
  const seen = new Map<string, ApplianceRecord>()
  let lease: Lease | undefined
  let closed = false
  let timer: NodeJS.Timeout | undefined
  let watch: StoreWatch | undefined

  /** Create the live key under a new lease; false when a live record of another appliance holds the name. */
  const claim = async (): Promise<ApplianceRecord | undefined> => {
    lease?.release()
    lease = store.client.lease(ttl, { autoKeepAlive: true })
    lease.on('lost', (err) => {
      if (closed) return
      logger.warn({ err: err.message }, 'registry lease lost (etcd unreachable longer than the TTL, or it expired); registering again')
      void reclaim()
    })
    const id = await lease.grant()
    const value = Buffer.from(JSON.stringify(record()))
    const res = await store.client.kv.txn({ compare: [{ key, result: 'Equal', target: 'Create', create_revision: 0 }], success: [{ request_put: { key, value, lease: id } }], failure: [{ request_range: { key } }] })
    if (res.succeeded) return undefined
    const holder = res.responses[0]?.response_range?.kvs[0]
    return holder === undefined ? undefined : (JSON.parse(holder.value.toString()) as ApplianceRecord)
  }

  const reclaim = async (): Promise<void> => {
    try {
      const holder = await claim()
      if (holder !== undefined) logger.error({ holder }, new RegistryNameTaken(holder).message)
    } catch (err) {
      logger.debug({ err: (err as Error).message }, 'registering again failed; trying again')
      if (!closed) setTimeout(() => void reclaim(), (ttl * 1000) / 3).unref()
    }
  }

  const beat = async (): Promise<void> => {
    if (closed || lease === undefined) return
    try {
      const id = await lease.grant()
      const r = record()
      // The live record only while our lease holds it (another appliance may have taken the name after a loss).
      const res = await store.client.kv.txn({
        compare: [{ key, result: 'Equal', target: 'Lease', lease: id }],
        success: [{ request_put: { key, value: Buffer.from(JSON.stringify(r)), lease: id } }],
      })
      if (res.succeeded) await store.put(APPLIANCE_SEEN_KIND, self.name, r)
    } catch (err) {
      logger.debug({ err: (err as Error).message }, 'heartbeat not written')
    }
  }

  // Claim the name; a live record from this same host is this host's previous run (killed): wait it out.
  const deadline = Date.now() + (ttl + 2) * 1000
  for (;;) {
    const holder = await claim()
    if (holder === undefined) break
    if (holder.host !== host || running(holder.pid) || Date.now() > deadline || opts.signal?.aborted === true) {
      lease?.release()
      throw new RegistryNameTaken(holder)
    }
    logger.info({ holder }, `appliance name "${self.name}" is still held by this host's previous run (started ${holder.started}); waiting up to ${ttl} s for its lease to expire`)
    await new Promise((r) => setTimeout(r, 1000))
  }
  await store.put(APPLIANCE_SEEN_KIND, self.name, record())

  for (const e of await store.list(APPLIANCE_SEEN_KIND)) if (isRecord(e.value)) seen.set(e.id, e.value)
  const from = (await store.revision()) + 1
  for (const e of await store.list(APPLIANCE_KIND)) if (isRecord(e.value)) live.set(e.id, e.value)
  watch = store.watch({ kind: APPLIANCE_KIND, fromRevision: from }, (e) => {
    if (e.type === 'put' && isRecord(e.value)) {
      if (!live.has(e.id)) logger.info({ appliance: e.id, site: e.value.site, address: e.value.address }, `appliance ${e.id} is up`)
      live.set(e.id, e.value)
      seen.set(e.id, e.value)
    } else if (e.type === 'delete') {
      const last = live.get(e.id)
      live.delete(e.id)
      if (last !== undefined) logger.warn({ appliance: e.id, heartbeat: last.heartbeat }, `appliance ${e.id} is gone: no heartbeat since ${last.heartbeat}`)
    }
  })
  timer = setInterval(() => void beat(), (ttl * 1000) / 3)
  timer.unref()

  return {
    list() {
      const all = new Map<string, ApplianceView>()
      for (const [name, r] of seen) all.set(name, { ...r, state: 'gone' })
      for (const [name, r] of live) all.set(name, { ...r, state: 'up' })
      return [...all.values()].sort((a, b) => (a.site === b.site ? (a.name < b.name ? -1 : 1) : a.site < b.site ? -1 : 1))
    },
    async close() {
      if (closed) return
      closed = true
      if (timer) clearInterval(timer)
      watch?.close()
      await lease?.revoke().catch(() => undefined)
    },
  }
}
