/**
 * Findings shared through the Store (issue 17: "findings" are among what a fleet shares): each appliance publishes
 * its current findings (the address tracker's and the boot side's) as documents of kind `finding`, id
 * `<appliance>@<finding id>`, each carrying the appliance and its site, so every appliance's `/v1/fleet/findings`
 * lists the fleet's.
 *
 * Findings are re-derived state (the tracker recomputes them from the evidence on every evaluation), so:
 * - publishing is a diff, polled every `everyMs`: a finding that appears or clears is written (or deleted) at the
 *   next round; one whose content only changed (new evidence, another MAC, a summary's count) is rewritten at most
 *   once per `refreshMs`. A flood therefore costs at most one batch of changes per round, each finding at most once per
 *   refresh, split by the store's batch bound (etcd's --max-txn-ops);
 * - the set is bounded like the tracker's own list (tracking.max_findings per kind; those already published first,
 *   the rest counted in one `<kind>:more` document), which also bounds the boot side's findings that the tracker
 *   never sees;
 * - nothing is queued while the shared store does not answer (the outage layer refuses the kind; a round is skipped
 *   while it is down): when it answers again, and at start, the appliance lists its own documents and reconciles
 *   them whole with its current set, so findings from a previous run or cleared during the outage go.
 */
import { createHash } from 'node:crypto'
import { silentLogger, type Logger } from '../host/log.js'
import { STORE_KEY, storeHealth, type Store, type StoreOp } from '../store/index.js'
import { FINDING_KINDS, type Finding } from './model.js'

/** Store kind of a shared finding. */
export const FINDING_KIND = 'finding'

/** A finding as stored: the appliance that raised it and that appliance's site (config store.name, store.site). */
export interface SharedFinding extends Finding {
  readonly appliance: string
  readonly site: string
}

/** Options for startFindingsPublisher. */
export interface FindingsPublisherOptions {
  /** The daemon's store (the outage layer over etcd). */
  readonly store: Store
  readonly appliance: string
  readonly site: string
  /** This appliance's current findings (the tracker's and the boot side's). */
  readonly findings: () => readonly Finding[]
  /** Findings published per kind (config tracking.max_findings, read each round so a reload applies). */
  readonly maxPerKind: () => number
  /** How often the current set is compared with what was published (ms). Default 2000. */
  readonly everyMs?: number
  /** How often at most a finding whose content only changed is rewritten (ms). Default 30,000. */
  readonly refreshMs?: number
  readonly logger?: Logger
  readonly now?: () => number
}

/** A running publisher. */
export interface FindingsPublisher {
  /** One round now (also what the timer runs); resolves when its writes are committed, or skipped. */
  publish(): Promise<void>
  /** Batches committed since start. */
  readonly batches: number
  /** Documents written or deleted since start. */
  readonly operations: number
  /** Documents of this appliance the store holds, as last written. */
  readonly published: number
  /** Stop the timer; the documents stay (a restart reconciles them). */
  close(): Promise<void>
}

/** The store id of `findingId` raised at `appliance`: readable when it fits a store key, else a digest. */
export function findingKey(appliance: string, findingId: string): string {
  const key = `${appliance}@${findingId}`
  return STORE_KEY.test(key) ? key : `${appliance}@sha256-${createHash('sha256').update(findingId).digest('hex').slice(0, 40)}`
}

/** Whether a finding summarizes others (the tracker's `<kind>:more`, `rogue-server:unlisted`): always kept. */
const summary = (f: Finding): boolean => f.id.endsWith(':more') || f.id === 'rogue-server:unlisted'

/**
 * At most `max` findings per kind, those published already (`publishedSince` knows them) first; the rest counted in
 * one `<kind>:more` summary, which keeps the `since` it was published with.
 */
export function boundFindings(all: readonly Finding[], max: number, publishedSince: (id: string) => string | undefined, appliance: string, now: string): Finding[] {
  const held = (f: Finding): boolean => publishedSince(f.id) !== undefined
  const out: Finding[] = []
  for (const kind of FINDING_KINDS) {
    const ofKind = all.filter((f) => f.kind === kind)
    const plain = ofKind.filter((f) => !summary(f))
    out.push(...ofKind.filter(summary))
    if (plain.length <= max) {
      out.push(...plain)
      continue
    }
    out.push(...[...plain.filter(held), ...plain.filter((f) => !held(f))].slice(0, max))
    if (!ofKind.some((f) => f.id === `${kind}:more`)) {
      out.push({
        id: `${kind}:more`,
        kind,
        macs: [],
        since: publishedSince(`${kind}:more`) ?? now,
        explanation: `${plain.length - max} more ${kind} findings at appliance ${appliance} are not shared (at most ${max} per kind, tracking.max_findings); its /v1/findings lists them.`,
        evidence: [],
      })
    }
  }
  return out
}

/** What was published of one finding: its identity part (written at once when it changes) and the whole document. */
interface Held {
  readonly since: string | undefined
  readonly identity: string
  readonly whole: string
  readonly at: number
}

const identityOf = (f: Finding): string => JSON.stringify([f.id, f.kind, f.since])

/** Starts publishing at once (a first round reconciles what a previous run left), then every `everyMs`. */
export function startFindingsPublisher(o: FindingsPublisherOptions): FindingsPublisher {
  const log = (o.logger ?? silentLogger).child({ component: 'findings-publisher' })
  const now = o.now ?? Date.now
  const refreshMs = o.refreshMs ?? 30_000
  const health = storeHealth(o.store)
  const prefix = `${o.appliance}@`
  let held = new Map<string, Held>()
  /** False until the store's documents of this appliance were read back (start, after an outage or a failure). */
  let synced = false
  let failing = false
  let batches = 0
  let operations = 0
  let closed = false
  // One round at a time; a publish() during a round gets the next one, which sees the findings as they are then.
  let chain: Promise<void> = Promise.resolve()
  let waiting: Promise<void> | undefined

  /** Read back this appliance's documents: what a previous run or the time before an outage left. */
  const reconcile = async (): Promise<void> => {
    const next = new Map<string, Held>()
    for (const e of await o.store.list(FINDING_KIND)) {
      if (!e.id.startsWith(prefix)) continue
      const v = e.value as Partial<Finding>
      // Whatever it holds, `identity` cannot match a current finding's unless it is one: stale documents are deleted.
      next.set(e.id, { since: typeof v.since === 'string' ? v.since : undefined, identity: JSON.stringify([v.id, v.kind, v.since]), whole: JSON.stringify(v), at: 0 })
    }
    held = next
    synced = true
  }

  const round = async (): Promise<void> => {
    if (closed) return
    if (health !== undefined && !health.up) {
      synced = false
      return
    }
    try {
      if (!synced) await reconcile()
      const t = now()
      const current = o.findings()
      const bounded = boundFindings(current, o.maxPerKind(), (id) => held.get(findingKey(o.appliance, id))?.since, o.appliance, new Date(t).toISOString())
      const ops: StoreOp[] = []
      const written = new Map<string, Held>()
      const wanted = new Set<string>()
      for (const f of bounded) {
        const id = findingKey(o.appliance, f.id)
        if (wanted.has(id)) continue
        wanted.add(id)
        const doc: SharedFinding = { ...f, appliance: o.appliance, site: o.site }
        const whole = JSON.stringify(doc)
        const was = held.get(id)
        const identity = identityOf(f)
        if (was !== undefined && (was.whole === whole || (was.identity === identity && t - was.at < refreshMs))) continue
        ops.push({ op: 'put', kind: FINDING_KIND, id, value: doc })
        written.set(id, { since: f.since, identity, whole, at: t })
      }
      for (const id of held.keys()) if (!wanted.has(id)) ops.push({ op: 'delete', kind: FINDING_KIND, id })
      const size = Math.max(1, Number.isFinite(o.store.maxBatchOps) ? o.store.maxBatchOps : ops.length)
      for (let i = 0; i < ops.length; i += size) {
        const chunk = ops.slice(i, i + size)
        await o.store.batch(chunk)
        batches++
        operations += chunk.length
        for (const op of chunk) {
          if (op.op === 'delete') held.delete(op.id)
          else held.set(op.id, written.get(op.id)!)
        }
      }
      if (failing) log.info({ published: held.size }, 'findings published to the shared store again')
      failing = false
    } catch (err) {
      // Not queued (re-derived state): the next round after the store answers reads back and writes what differs.
      synced = false
      if (!failing) log.warn({ err: (err as Error).message }, 'publishing findings to the shared store failed; the whole set is reconciled once it answers')
      failing = true
    }
  }

  const publish = (): Promise<void> => {
    if (waiting !== undefined) return waiting
    const next = chain.then(() => {
      waiting = undefined
      return round()
    })
    waiting = next
    chain = next
    return next
  }
  const timer = setInterval(() => void publish(), o.everyMs ?? 2000)
  timer.unref()
  const unsubscribe = health?.onUpChange((up) => {
    if (up) void publish()
  })
  void publish()

  return {
    publish,
    get batches() {
      return batches
    },
    get operations() {
      return operations
    },
    get published() {
      return held.size
    },
    async close() {
      closed = true
      clearInterval(timer)
      unsubscribe?.()
      await chain
    },
  }
}
