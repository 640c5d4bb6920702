/**
 * The machine store: an EventSink that turns the DHCP, TFTP and HTTP services' boot events into machine records
 * (identity + timeline), kept in memory for the boot path and the API and in the Store (records-store.ts: one
 * document per machine) across restarts.
 *
 * Attribution: an event with a MAC goes to that machine, and teaches the store which MAC uses its IP. An event
 * without one (TFTP from an IP, an asset download) goes to the MAC last seen on that IP, or to the address tracker's
 * binding for it; failing both it waits (per IP, briefly) until a later event names the MAC for that IP: BIOS PXE
 * fetches its loader over TFTP before iPXE's `/ipxe?mac=...` says who it was.
 *
 * Writes are batched (the machines changed during `flushDelayMs` of activity, one row each: the cost of a boot event
 * does not grow with the number of machines); operator actions (installed, re-arm, labels, forget) are written
 * durably before they are acknowledged.
 *
 * Start reads each record without its timeline (records-store.ts says why), so a restart with 100,000 records is
 * ready in about a second; the timelines are then read in slices that give the event loop back (`timelines`
 * resolves when all are in). A change to a machine whose timeline is not in yet (a boot event, a syslog line, an
 * operator action) first reads that machine's timeline, then applies in arrival order.
 */
import { silentLogger } from '../host/log.js'
import type { StoreEntry } from '../store/index.js'
import type { BootEvent } from './events.js'
import { MAX_LOG_LINES, RECORD_LIMITS, type MachineRecord, type TimelineEntry } from './model.js'
import { applyEntry, entryFromEvent, identityFromEvent, newRecord } from './timeline.js'
import { nicVendor } from './oui.js'
import { checkTimeline, isRecordDocument, isTimelineDocument, loadMachineRecords, loadTimeline, MACHINE_KIND, TIMELINE_KIND, writeMachineRecords, type ReadTimeline, type WriteGuard } from './records-store.js'
import { boundRecord } from './timeline.js'
import { coldOf, hotOf, mergeCold, mergeHot, sameDocument } from './merge.js'
import { followRecords, type RecordsFollow } from './records-follow.js'
import { MachineLabelError, type Diagnosis, type MachineStore, type MachineStoreOptions } from './store-api.js'

export { MachineLabelError, type Diagnosis, type MachineStore, type MachineStoreOptions } from './store-api.js'

/** Timelines read in one turn of the event loop at most this long, after start, when read one by one. */
const FILL_SLICE_MS = 4
/** Timelines per page read after start: ~1-2 KB each, so one turn parses ~100-200 KB. */
const FILL_PAGE = 100

/** MAC-less events wait this long for their IP to be attributed. */
const PENDING_MS = 10 * 60_000
const PENDING_PER_IP = 16
const MAX_PENDING_IPS = 1024
const MAX_IPS = 8192

/** Open the machine records kept in `opts.store`. Never throws for bad records: they are skipped and reported. */
export async function openMachineStore(opts: MachineStoreOptions): Promise<MachineStore> {
  const logger = (opts.logger ?? silentLogger).child({ component: 'machines' })
  const now = opts.now ?? Date.now
  const store = opts.store
  const flushDelayMs = opts.flushDelayMs ?? 1000
  const maxMachines = opts.maxMachines ?? 10_000
  const machines = new Map<string, MachineRecord>()
  const macByIp = new Map<string, string>()
  const pending = new Map<string, { at: number; event: BootEvent }[]>()
  const listeners = new Set<(mac: string, event?: BootEvent) => void>()

  const loaded = await loadMachineRecords(store, { legacyDir: opts.legacyDir, maxMachines, logger })
  const problems = loaded.problems
  // The map's order is the eviction order (least recently seen first; see `seenNow`).
  for (const m of loaded.records) machines.set(m.mac, m)
  /** MACs whose timeline is not read yet, and what waits for it (changes in arrival order). */
  const withoutTimeline = loaded.withoutTimeline
  const waiting = new Map<string, (() => void)[]>()
  const reading = new Map<string, Promise<void>>()
  let closed = false
  for (const m of machines.values()) if (m.ips[0] !== undefined) macByIp.set(m.ips[0], m.mac)
  for (const p of problems) logger.error(p)
  if (machines.size > 0) logger.info({ machines: machines.size }, 'machine records loaded')
  /** Each document's modRevision as last read or written here: the guard of its next write, and how echoes are told. */
  const hotRev = loaded.revisions
  const coldRev = new Map<string, number>()
  const revMap = (kind: string): Map<string, number> => (kind === MACHINE_KIND ? hotRev : coldRev)

  /** MACs whose record changed (or went) since the last write: a write costs O(these), not O(all machines). */
  let dirty = new Set<string>([...loaded.rewrite, ...loaded.remove])
  let timer: NodeJS.Timeout | undefined
  let writing: Promise<void> = Promise.resolve()
  const write = (durable = false, mac?: string): Promise<void> => {
    if (timer) clearTimeout(timer)
    timer = undefined
    writing = writing.then(async () => {
      // An acknowledged change is written under this durable commit even if a batched write already took it.
      if (mac !== undefined) dirty.add(mac)
      if (dirty.size === 0) return
      const macs = dirty
      dirty = new Set()
      try {
        await writeMachineRecords(store, macs, (mac) => {
          const record = machines.get(mac)
          return record === undefined ? undefined : { record, withTimeline: !withoutTimeline.has(mac) }
        }, durable, guard)
      } catch (err) {
        for (const mac of macs) dirty.add(mac)
        logger.warn({ err, store: store.location }, 'cannot write machine records; will retry')
        if (durable) throw err
      }
    })
    const done = writing
    // A failed durable write rejects its caller (no acknowledgement); the chain goes on for the next writer.
    writing = writing.catch(() => undefined)
    return done
  }
  const schedule = (mac: string) => {
    dirty.add(mac)
    if (!timer) {
      timer = setTimeout(() => void write(), flushDelayMs)
      timer.unref()
    }
  }
  const changed = (mac: string, event?: BootEvent) => {
    schedule(mac)
    notify(mac, event)
  }
  const notify = (mac: string, event?: BootEvent) => {
    for (const l of listeners) {
      try {
        l(mac, event)
      } catch (err) {
        logger.warn({ err }, 'machine listener failed')
      }
    }
  }

  /** `mac`'s timeline as read from the store, into its record (still without one). */
  const takeTimeline = (mac: string, { timeline, modRevision, problem }: ReadTimeline): void => {
    const r = machines.get(mac)
    if (r === undefined) return
    Object.assign(r, timeline)
    // Entries read back each hold their own copy of the address and of times the record holds too; sharing the
    // record's strings saves ~240 B a machine (one install: 6 of its 7 entries carry the address, its first and last
    // entries the attempt's start and the last progress; the heap per timeline was 1,322 B).
    for (const e of r.timeline) {
      if (e.ip !== undefined) {
        const same = r.ips.find((ip) => ip === e.ip)
        if (same !== undefined) e.ip = same
      }
      if (e.time === r.attempt_started) e.time = r.attempt_started
      else if (e.time === r.last_progress) e.time = r.last_progress
      else if (e.time === r.last_seen) e.time = r.last_seen
    }
    // Keyed by the record's own MAC string: the id a page of timelines carries is a copy, 100,000 of them kept.
    coldRev.set(r.mac, modRevision)
    if (problem !== undefined) {
      problems.push(problem)
      logger.error(problem)
    }
    // Bounded as a record read whole is; an invalid or cut timeline is written back.
    if (boundRecord(r) || problem !== undefined) schedule(mac)
  }
  /** Read `mac`'s timeline into its record (once; concurrent callers share the read), then run what waited for it. */
  const readTimeline = (mac: string): Promise<void> => {
    if (!withoutTimeline.has(mac)) return Promise.resolve()
    let p = reading.get(mac)
    if (p !== undefined) return p
    p = loadTimeline(store, mac).then(
      (read) => {
        if (withoutTimeline.has(mac)) takeTimeline(mac, read)
      },
      (err: unknown) => {
        // Unreadable: the machine goes on with an empty timeline (its next write replaces the stored one); its
        // identity and install-once state, read at open, are kept.
        logger.warn({ err, mac }, 'cannot read the machine timeline; it starts empty')
      },
    ).finally(() => {
      reading.delete(mac)
      withoutTimeline.delete(mac)
      const queued = waiting.get(mac)
      waiting.delete(mac)
      for (const run of queued ?? []) run()
    })
    reading.set(mac, p)
    return p
  }
  /** Run `change` on `mac`'s record with its timeline read: now, or after the read (in arrival order). */
  const withTimeline = (mac: string, change: () => void): void => {
    if (!withoutTimeline.has(mac)) return change()
    const queued = waiting.get(mac) ?? []
    queued.push(() => {
      try {
        change()
      } catch (err) {
        logger.warn({ err, mac }, 'machine change not applied')
      }
    })
    waiting.set(mac, queued)
    void readTimeline(mac)
  }
  /**
   * The timelines of every record, read a page of FILL_PAGE at a time in id order (the store keeps a kind's documents
   * together: one range read per page, where a read per machine was a query each, 100,000 of them), the loop given back
   * after each page so the boot path keeps answering meanwhile. A machine whose timeline is being read on its own (a
   * change came for it) keeps that read; those with no timeline stored, or that came in meanwhile, are read one by
   * one at the end, in slices of FILL_SLICE_MS.
   */
  const readAllTimelines = async (): Promise<void> => {
    const t0 = Date.now()
    const count = withoutTimeline.size
    if (count === 0) return
    try {
      let after: string | undefined
      do {
        const page = await store.page(TIMELINE_KIND, { limit: FILL_PAGE, ...(after !== undefined ? { after } : {}) })
        if (closed) return
        for (const e of page.entries) {
          if (!withoutTimeline.has(e.id) || reading.has(e.id)) continue
          takeTimeline(e.id, checkTimeline(store, e.id, e))
          withoutTimeline.delete(e.id)
        }
        after = page.next
        if (withoutTimeline.size === 0) break
        await new Promise((resolve) => setImmediate(resolve))
      } while (after !== undefined)
    } catch (err) {
      logger.warn({ err }, 'cannot read the machine timelines a page at a time; reading them one by one')
    }
    let slice = performance.now()
    for (const mac of [...withoutTimeline]) {
      if (closed) return
      await readTimeline(mac)
      if (performance.now() - slice > FILL_SLICE_MS) {
        await new Promise((resolve) => setImmediate(resolve))
        slice = performance.now()
      }
    }
    logger.info({ machines: count, ms: Date.now() - t0 }, 'machine timelines read')
  }

  const recordFor = (mac: string, time: string): MachineRecord => {
    let r = machines.get(mac)
    if (!r) {
      r = newRecord(mac, time, nicVendor(mac))
      machines.set(mac, r)
      if (machines.size > maxMachines) evictOldest()
    }
    if (opts.site !== undefined && r.site !== opts.site) r.site = opts.site
    if (opts.appliance !== undefined && r.appliance !== opts.appliance) r.appliance = opts.appliance
    return r
  }
  /**
   * Keeps the map in least-recently-seen-first order, so the record to evict is its first key. Scanning all
   * 10,000 records for the oldest on every new MAC cost ~7% of pxebox's CPU under a new-MAC flood (bench/abuse).
   */
  const seenNow = (r: MachineRecord, before: string): void => {
    if (r.last_seen === before || !machines.has(r.mac)) return
    machines.delete(r.mac)
    machines.set(r.mac, r)
  }
  /**
   * In small batches: each walk from the map's start crosses the slots earlier deletions left there until V8
   * rehashes, so one eviction per new record would pay that walk every time (tracker.ts `trim`, measured there).
   */
  const evictOldest = () => {
    const low = maxMachines - Math.floor(maxMachines / 64)
    for (const mac of machines.keys()) {
      if (machines.size <= low) break
      machines.delete(mac)
      withoutTimeline.delete(mac)
      waiting.delete(mac)
      dirty.add(mac)
    }
  }

  /**
   * Another appliance's version of one of `mac`'s documents (a followed change, or what a conflicting write found):
   * merged into the record here (merge.ts); written back when this appliance holds something the stored one lacks.
   * A removal (undefined) from the follow drops the record here too (the operator forgot it, or the shared cap
   * evicted it); a conflicting write that finds its document gone writes it again.
   */
  const takeIn = (kind: string, mac: string, entry: StoreEntry | undefined, follow: boolean): void => {
    revMap(kind).set(mac, entry?.modRevision ?? 0)
    if (entry === undefined) {
      if (!follow || kind !== MACHINE_KIND || !machines.delete(mac)) return
      withoutTimeline.delete(mac)
      waiting.delete(mac)
      coldRev.delete(mac)
      hotRev.delete(mac)
      return notify(mac)
    }
    const value = entry.value
    if (kind === MACHINE_KIND) {
      if (!isRecordDocument(value) || value.mac !== mac) return void logger.warn({ mac, revision: entry.modRevision }, 'a machine record in the store does not match the record schema; not taken in')
      const r = machines.get(mac)
      if (r === undefined) {
        // A machine another appliance saw first: its timeline follows (the same batch), or is read from the store.
        machines.set(mac, { ...value, timeline: [], history: [] })
        withoutTimeline.add(mac)
        if (machines.size > maxMachines) evictOldest()
        if (value.ips[0] !== undefined && !macByIp.has(value.ips[0])) learnIp(value.ips[0], mac)
        void readTimeline(mac)
        return notify(mac)
      }
      const mine = hotOf(r)
      const merged = mergeHot(mine, value)
      if (!sameDocument(merged, mine)) {
        for (const key of Object.keys(mine) as (keyof typeof mine)[]) if (!(key in merged)) delete r[key]
        Object.assign(r, merged)
        seenNow(r, mine.last_seen)
        notify(mac)
      }
      if (!sameDocument(merged, value)) schedule(mac)
      return
    }
    if (!isTimelineDocument(value) || !machines.has(mac)) return
    withTimeline(mac, () => {
      const r = machines.get(mac)
      if (r === undefined) return
      const mine = coldOf(r)
      const merged = mergeCold(mine, value)
      if (!sameDocument(merged, mine)) {
        Object.assign(r, merged)
        notify(mac)
      }
      if (!sameDocument(merged, value)) schedule(mac)
    })
  }
  const guard: WriteGuard = {
    revision: (kind, mac) => revMap(kind).get(mac),
    wrote(kind, mac, revision) {
      if (revision === undefined) revMap(kind).delete(mac)
      else revMap(kind).set(mac, revision)
    },
    takeIn: (kind, mac, entry) => takeIn(kind, mac, entry, false),
  }
  const learnIp = (ip: string, mac: string) => {
    if (ip === '0.0.0.0') return
    macByIp.delete(ip)
    macByIp.set(ip, mac)
    if (macByIp.size > MAX_IPS) macByIp.delete(macByIp.keys().next().value!)
  }

  const apply = (mac: string, event: BootEvent) => {
    const r = recordFor(mac, event.time)
    const before = r.last_seen
    applyEntry(r, entryFromEvent(event), identityFromEvent(event))
    seenNow(r, before)
  }

  const record = (event: BootEvent) => {
    const mac = event.mac ?? (event.ip !== undefined ? (macByIp.get(event.ip) ?? opts.macForIp?.(event.ip)) : undefined)
    if (mac === undefined) {
      if (event.ip === undefined || event.ip === '0.0.0.0') return
      const list = pending.get(event.ip) ?? []
      const t = now()
      list.push({ at: t, event })
      if (list.length > PENDING_PER_IP) list.shift()
      pending.set(event.ip, list)
      if (pending.size > MAX_PENDING_IPS) pending.delete(pending.keys().next().value!)
      return
    }
    if (event.mac !== undefined && event.ip !== undefined) learnIp(event.ip, mac)
    const attributed = event.ip !== undefined ? pending.get(event.ip) : undefined
    if (attributed) {
      pending.delete(event.ip!)
      const cutoff = now() - PENDING_MS
      for (const w of attributed) {
        if (w.at < cutoff) continue
        withTimeline(mac, () => {
          apply(mac, w.event)
          changed(mac, w.event)
        })
      }
    }
    withTimeline(mac, () => {
      apply(mac, event)
      changed(mac, event)
    })
  }

  const operatorEntry = (step: string, stage: TimelineEntry['stage'], what: string, ip?: string): TimelineEntry => ({
    time: new Date(now()).toISOString(),
    source: 'api',
    step,
    ...(stage !== undefined ? { stage } : {}),
    outcome: 'ok',
    ...(ip !== undefined ? { ip } : {}),
    what,
  })

  const diagnose = (mac: string, d: Diagnosis): void => {
    const r = machines.get(mac)
    if (!r) return
    const entry: TimelineEntry = {
      time: d.time,
      source: 'pxebox',
      step: d.step,
      ...(d.stage !== undefined ? { stage: d.stage } : {}),
      outcome: d.outcome.slice(0, RECORD_LIMITS.whatLength),
      ...(d.ip !== undefined ? { ip: d.ip } : {}),
      what: d.what.slice(0, RECORD_LIMITS.whatLength),
    }
    const before = r.last_seen
    applyEntry(r, entry)
    seenNow(r, before)
    changed(mac)
  }

  const timelines = readAllTimelines()
  const follow: RecordsFollow | undefined = opts.follow === true ? followRecords(store, { revision: guard.revision, takeIn: (kind, mac, entry) => takeIn(kind, mac, entry, true) }, loaded.revision + 1, logger) : undefined

  return {
    record(event) {
      try {
        record(event)
      } catch (err) {
        // EventSink contract: never throw into a protocol server.
        logger.warn({ err, event }, 'boot event not recorded')
      }
    },
    get: (mac) => machines.get(mac),
    list: () => [...machines.values()].sort((a, b) => (a.last_seen < b.last_seen ? 1 : a.last_seen > b.last_seen ? -1 : 0)),
    timelines,
    timelinesPending: () => withoutTimeline.size,
    recordDiagnosis(mac, d) {
      if (!machines.has(mac)) return
      withTimeline(mac, () => diagnose(mac, d))
    },
    async markInstalled(mac, ip) {
      await readTimeline(mac)
      const entry = operatorEntry('installed', 'installed', 'installed callback', ip)
      const r = recordFor(mac, entry.time)
      const before = r.last_seen
      applyEntry(r, entry)
      seenNow(r, before)
      r.installed_at = entry.time
      r.install_state_at = entry.time
      r.installs += 1
      if (ip !== undefined) learnIp(ip, mac)
      changed(mac)
      await write(true, mac)
      return r
    },
    async rearm(mac) {
      await readTimeline(mac)
      const r = machines.get(mac)
      if (!r) return undefined
      applyEntry(r, operatorEntry('rearm', undefined, r.installed_at ? `re-armed (was installed ${r.installed_at})` : 're-armed'))
      delete r.installed_at
      r.install_state_at = new Date(now()).toISOString()
      changed(mac)
      await write(true, mac)
      return r
    },
    async setLabels(mac, labels) {
      await readTimeline(mac)
      const r = machines.get(mac)
      if (!r) return undefined
      const next = { ...r.labels }
      for (const [k, v] of Object.entries(labels)) {
        if (v === null) delete next[k]
        else if (v.length > RECORD_LIMITS.labelValueLength) throw new MachineLabelError(`label "${k}" is ${v.length} characters; at most ${RECORD_LIMITS.labelValueLength}`)
        else next[k] = v
      }
      const count = Object.keys(next).length
      if (count > RECORD_LIMITS.labels) throw new MachineLabelError(`a machine holds at most ${RECORD_LIMITS.labels} labels; this would make ${count}`)
      r.labels = next
      r.labels_at = new Date(now()).toISOString()
      changed(mac)
      await write(true, mac)
      return r
    },
    appendLog(ip, line) {
      const mac = macByIp.get(ip) ?? opts.macForIp?.(ip)
      if (mac === undefined || !machines.has(mac)) return undefined
      const time = new Date(now()).toISOString()
      const text = line.text.length > RECORD_LIMITS.whatLength ? `${line.text.slice(0, RECORD_LIMITS.whatLength - 1)}…` : line.text
      withTimeline(mac, () => {
        const r = machines.get(mac)
        if (r === undefined) return
        const log = (r.log ??= [])
        log.push({ time, severity: line.severity, ...(line.app !== undefined ? { app: line.app.slice(0, 48) } : {}), text })
        if (log.length > MAX_LOG_LINES) {
          const cut = log.length - MAX_LOG_LINES
          log.splice(0, cut)
          r.log_dropped = (r.log_dropped ?? 0) + cut
        }
        const before = r.last_seen
        if (time > r.last_seen) r.last_seen = time
        seenNow(r, before)
        changed(mac)
      })
      return mac
    },
    async forget(mac) {
      const had = machines.delete(mac)
      withoutTimeline.delete(mac)
      waiting.delete(mac)
      if (had) {
        changed(mac)
        await write(true, mac)
      }
      return had
    },
    subscribe(listener) {
      listeners.add(listener)
      return () => listeners.delete(listener)
    },
    problems,
    flush: () => write(),
    async close() {
      closed = true
      follow?.close()
      await write().catch(() => undefined)
      if (timer) clearTimeout(timer)
      timer = undefined
    },
  }
}
