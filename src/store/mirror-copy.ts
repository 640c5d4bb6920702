/**
 * The local copy behind the mirrored store (mirrored.ts): the last state this appliance saw of the shared store, in
 * its own small SQLite file (`<data_dir>/store-cache.db`), plus the outbox of machine writes made while the shared
 * store was unreachable.
 *
 * - `docs` holds each document with the REMOTE's modRevision and createRevision, so a consumer that guards a write or
 *   resumes a watch by revision uses the shared store's numbers, never local ones. A row written locally during an
 *   outage is `pending`: its revisions are the last ones the remote gave it (0 for one created locally), and remote
 *   events do not overwrite it until the outbox is flushed and the row is read back from the remote.
 * - `meta.applied` is the last remote revision whose changes are all in `docs`: a restart resumes the remote's watch
 *   after it (or re-lists when the remote compacted that far).
 * - `meta.current_at` is when the shared store last answered while the copy followed it (ISO 8601): what an appliance
 *   started during an outage says it serves ("the copy of <time>, revision <n>").
 * - `meta.remote` names the store the copy mirrors: a copy of another store (an appliance moved to another etcd
 *   prefix) is emptied rather than served.
 * - `outbox` keeps the queued writes in order, durably (synchronous=FULL: a queued machine event was acknowledged to
 *   the boot path); over `maxOutbox` entries the oldest are dropped and counted.
 *
 * It is a cache: a file that is not a database is moved aside and the copy starts empty (the remote refills it).
 * One process owns the file.
 */
import { mkdirSync } from 'node:fs'
import { dirname } from 'node:path'
import Database from 'better-sqlite3'
import { moveCorruptAside } from '../host/durable-file.js'
import { limitPageCache } from './sqlite-cache.js'
import type { StoreEntry, StoreEvent, StoreOp, WriteOptions } from './store.js'

const SCHEMA = `
  CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
  INSERT OR IGNORE INTO meta (key, value) VALUES ('applied', '0'), ('remote', ''), ('current_at', '');
  CREATE TABLE IF NOT EXISTS docs (
    kind TEXT NOT NULL, id TEXT NOT NULL, value TEXT NOT NULL,
    mod_revision INTEGER NOT NULL, create_revision INTEGER NOT NULL, pending INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (kind, id)
  );
  CREATE TABLE IF NOT EXISTS outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, call TEXT NOT NULL, ops TEXT NOT NULL, durable INTEGER NOT NULL);
`

/** One queued write: `create` is create-if-absent of ops[0]; `batch` is the ops as one commit. */
export interface OutboxEntry {
  readonly seq: number
  readonly call: 'create' | 'batch'
  readonly ops: readonly StoreOp[]
  readonly opts: WriteOptions
}

interface Row {
  kind: string
  id: string
  value: string
  mod_revision: number
  create_revision: number
  pending: number
}

/** The copy's operations (all synchronous: better-sqlite3). */
export interface MirrorCopy {
  readonly file: string
  /** What opening found and set aside. */
  readonly problems: readonly string[]
  /** The last remote revision fully applied. */
  applied(): number
  /** When the shared store last answered while this copy followed it (ISO 8601); undefined for a new copy. */
  currentAt(): string | undefined
  /** Record that the shared store answered at `at` and the copy follows it. */
  markCurrent(at: Date): void
  get(kind: string, id: string): StoreEntry | undefined
  list(kind: string): StoreEntry[]
  /** Up to `limit` documents of `kind` after `after` (from the first when absent), in id order. */
  page(kind: string, after: string | undefined, limit: number): StoreEntry[]
  /** Every kind the copy holds a document of (re-listed after a compacted watch). */
  kinds(): string[]
  /** Remote events, one transaction: a row changes only when the event is newer than it and it is not pending. */
  applyEvents(events: readonly StoreEvent[]): void
  /**
   * One page of a remote listing of `kind`, covering the ids after `after` (from the first when undefined) up to and
   * including `through` (to the end when undefined): the non-pending documents of that span become the page's.
   */
  fillSpan(kind: string, after: string | undefined, through: string | undefined, entries: readonly StoreEntry[]): void
  /** A listing of every kind the copy follows, at `revision`, is complete: the copy holds that revision. */
  listedAt(revision: number): void
  /** Set one document to what the remote holds now (undefined: absent), clearing `pending`. */
  settle(kind: string, id: string, entry: StoreEntry | undefined): void
  /** Documents written locally and not yet read back from the remote. */
  pending(): { kind: string; id: string }[]
  /** Apply a write locally (pending) and append it to the outbox, in one transaction. Returns the entries dropped. */
  queue(call: OutboxEntry['call'], ops: readonly StoreOp[], opts: WriteOptions, maxOutbox: number): number
  /** The oldest queued write. */
  nextQueued(): OutboxEntry | undefined
  /** Remove a queued write once the remote took it (or refused it for good). */
  unqueue(seq: number): void
  queued(): number
  close(): void
}

/** Opens (creating) the copy at `file` for the store named `remote`; a copy of another store is emptied. */
export async function openMirrorCopy(file: string, remote: string, now: () => Date = () => new Date()): Promise<MirrorCopy> {
  mkdirSync(dirname(file), { recursive: true })
  const problems: string[] = []
  let db: Database.Database
  try {
    db = openDb(file)
  } catch (err) {
    // A cache: the evidence is kept, the copy starts empty and the remote refills it.
    const movedTo = await moveCorruptAside(file, now())
    problems.push(`${file} is not a usable store copy (${(err as Error).message}); ${movedTo === undefined ? 'it could not be moved aside' : `moved to ${movedTo}`}, starting with an empty copy`)
    db = openDb(file)
  }
  const meta = db.prepare<[string], { value: string }>(`SELECT value FROM meta WHERE key = ?`)
  const setMeta = db.prepare<[string, string]>(`UPDATE meta SET value = ? WHERE key = ?`)
  if (meta.get('remote')!.value !== remote) {
    const was = meta.get('remote')!.value
    if (was !== '') problems.push(`${file} was a copy of ${was}, not ${remote}: emptied`)
    db.transaction(() => {
      db.exec(`DELETE FROM docs; DELETE FROM outbox;`)
      setMeta.run('0', 'applied')
      setMeta.run('', 'current_at')
      setMeta.run(remote, 'remote')
    })()
  }
  return mirrorCopy(db, file, problems)
}

function openDb(file: string): Database.Database {
  const db = new Database(file)
  try {
    db.pragma('journal_mode = WAL')
    db.pragma('synchronous = NORMAL')
    limitPageCache(db)
    db.exec(SCHEMA)
    const check = db.pragma('quick_check', { simple: true }) as string
    if (check !== 'ok') throw new Error(`quick_check: ${check}`)
    return db
  } catch (err) {
    db.close()
    throw err
  }
}

function mirrorCopy(db: Database.Database, file: string, problems: string[]): MirrorCopy {
  const q = {
    applied: db.prepare<[], { value: string }>(`SELECT value FROM meta WHERE key = 'applied'`),
    setApplied: db.prepare<[string]>(`UPDATE meta SET value = ? WHERE key = 'applied'`),
    currentAt: db.prepare<[], { value: string }>(`SELECT value FROM meta WHERE key = 'current_at'`),
    setCurrentAt: db.prepare<[string]>(`UPDATE meta SET value = ? WHERE key = 'current_at'`),
    get: db.prepare<[string, string], Row>(`SELECT * FROM docs WHERE kind = ? AND id = ?`),
    list: db.prepare<[string], Row>(`SELECT * FROM docs WHERE kind = ? ORDER BY id`),
    kinds: db.prepare<[], { kind: string }>(`SELECT DISTINCT kind FROM docs ORDER BY kind`),
    upsert: db.prepare<[string, string, string, number, number, number]>(
      `INSERT INTO docs (kind, id, value, mod_revision, create_revision, pending) VALUES (?, ?, ?, ?, ?, ?)
       ON CONFLICT (kind, id) DO UPDATE SET value = excluded.value, mod_revision = excluded.mod_revision,
         create_revision = excluded.create_revision, pending = excluded.pending`,
    ),
    markPending: db.prepare<[string, string, string]>(
      `INSERT INTO docs (kind, id, value, mod_revision, create_revision, pending) VALUES (?, ?, ?, 0, 0, 1)
       ON CONFLICT (kind, id) DO UPDATE SET value = excluded.value, pending = 1`,
    ),
    remove: db.prepare<[string, string]>(`DELETE FROM docs WHERE kind = ? AND id = ?`),
    page: db.prepare<[string, string, number], Row>(`SELECT * FROM docs WHERE kind = ? AND id > ? ORDER BY id LIMIT ?`),
    removeSpan: db.prepare<[string, string, string]>(`DELETE FROM docs WHERE kind = ? AND id > ? AND id <= ? AND pending = 0`),
    removeFrom: db.prepare<[string, string]>(`DELETE FROM docs WHERE kind = ? AND id > ? AND pending = 0`),
    pending: db.prepare<[], { kind: string; id: string }>(`SELECT kind, id FROM docs WHERE pending = 1 ORDER BY kind, id`),
    enqueue: db.prepare<[string, string, number]>(`INSERT INTO outbox (call, ops, durable) VALUES (?, ?, ?)`),
    next: db.prepare<[], { seq: number; call: string; ops: string; durable: number }>(`SELECT * FROM outbox ORDER BY seq LIMIT 1`),
    unqueue: db.prepare<[number]>(`DELETE FROM outbox WHERE seq = ?`),
    count: db.prepare<[], { n: number }>(`SELECT count(*) AS n FROM outbox`),
    dropOldest: db.prepare<[number]>(`DELETE FROM outbox WHERE seq IN (SELECT seq FROM outbox ORDER BY seq LIMIT ?)`),
  }
  const entry = (r: Row): StoreEntry => ({ kind: r.kind, id: r.id, value: JSON.parse(r.value) as unknown, modRevision: r.mod_revision, createRevision: r.create_revision })
  const applied = (): number => Number(q.applied.get()!.value)

  const applyEvents = db.transaction((events: readonly StoreEvent[]) => {
    let top = applied()
    for (const e of events) {
      top = Math.max(top, e.revision)
      const row = q.get.get(e.kind, e.id)
      // Older than what the copy holds (a re-list already had it), or a local write waiting for the outbox flush.
      if (row !== undefined && (row.pending === 1 || row.mod_revision >= e.revision)) continue
      if (e.type === 'delete') q.remove.run(e.kind, e.id)
      else q.upsert.run(e.kind, e.id, JSON.stringify(e.value), e.revision, row?.create_revision ?? e.revision, 0)
    }
    q.setApplied.run(String(top))
  })

  // A listing arrives a page at a time (a kind of 100,000 records does not fit one etcd answer), each page its own
  // transaction: between pages the copy holds every document it held before, some of them already at the listing's
  // revision, so a reader never sees a kind half empty. `applied` moves only when the whole listing is in.
  const fillSpan = db.transaction((kind: string, after: string | undefined, through: string | undefined, entries: readonly StoreEntry[]) => {
    if (through === undefined) q.removeFrom.run(kind, after ?? '')
    else q.removeSpan.run(kind, after ?? '', through)
    for (const e of entries) {
      if (q.get.get(kind, e.id)?.pending === 1) continue
      q.upsert.run(kind, e.id, JSON.stringify(e.value), e.modRevision, e.createRevision, 0)
    }
  })

  const queue = db.transaction((call: OutboxEntry['call'], ops: readonly StoreOp[], opts: WriteOptions, maxOutbox: number): number => {
    for (const op of ops) {
      if (op.op === 'put') q.markPending.run(op.kind, op.id, JSON.stringify(op.value))
      else q.remove.run(op.kind, op.id)
    }
    q.enqueue.run(call, JSON.stringify(ops), opts.durable === true ? 1 : 0)
    const over = q.count.get()!.n - maxOutbox
    if (over > 0) q.dropOldest.run(over)
    return Math.max(0, over)
  })

  return {
    file,
    problems,
    applied,
    currentAt: () => q.currentAt.get()?.value || undefined,
    markCurrent: (at) => void q.setCurrentAt.run(at.toISOString()),
    get: (kind, id) => {
      const r = q.get.get(kind, id)
      return r === undefined ? undefined : entry(r)
    },
    list: (kind) => {
      // Row by row, as the embedded store lists (sqlite.ts): each row's text dies as soon as it is parsed.
      const out: StoreEntry[] = []
      for (const r of q.list.iterate(kind)) out.push(entry(r))
      return out
    },
    page: (kind, after, limit) => q.page.all(kind, after ?? '', limit).map(entry),
    kinds: () => q.kinds.all().map((r) => r.kind),
    applyEvents: (events) => applyEvents.immediate(events),
    fillSpan: (kind, after, through, entries) => fillSpan.immediate(kind, after, through, entries),
    listedAt: (revision) => void q.setApplied.run(String(revision)),
    settle(kind, id, e) {
      if (e === undefined) q.remove.run(kind, id)
      else q.upsert.run(kind, id, JSON.stringify(e.value), e.modRevision, e.createRevision, 0)
    },
    pending: () => q.pending.all(),
    queue(call, ops, opts, maxOutbox) {
      // The outbox holds acknowledged machine events: fsync it, as a durable write is.
      db.pragma('synchronous = FULL')
      try {
        return queue.immediate(call, ops, opts, maxOutbox)
      } finally {
        db.pragma('synchronous = NORMAL')
      }
    },
    nextQueued() {
      const r = q.next.get()
      if (r === undefined) return undefined
      return { seq: r.seq, call: r.call === 'create' ? 'create' : 'batch', ops: JSON.parse(r.ops) as StoreOp[], opts: r.durable === 1 ? { durable: true } : {} }
    },
    unqueue: (seq) => void q.unqueue.run(seq),
    queued: () => q.count.get()!.n,
    close: () => db.close(),
  }
}
