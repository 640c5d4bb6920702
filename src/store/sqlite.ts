/**
 * The embedded Store backend: one SQLite database (`<data_dir>/pxebox.db`) through better-sqlite3, in WAL mode.
 *
 * Why SQLite rather than whole-file rewrites: machines.json was rewritten whole on every flush, O(all machines) per
 * boot event batch; here a changed record is a row upsert or two, and a restart reads the rows back with one query.
 * Why better-sqlite3 12: Node 20 has no node:sqlite, and better-sqlite3 13 needs Node 22 (it crashed on Node 20 when
 * tried). It compiles its own SQLite with node-gyp at `npm ci`, with the same python3/make/g++ as native/.
 *
 * Durability: synchronous=NORMAL by default: a commit is in the WAL (the OS's page cache) before it resolves, so it
 * survives pxebox being killed at any moment; a power cut may lose the last commits. A write with `durable: true`
 * runs under synchronous=FULL, so the WAL is fsynced before it resolves (operator actions, install-once stamps).
 *
 * History for watch: every change is also a row of `changes` (revision, kind, id, value); the oldest are dropped
 * beyond `history` rows, and the revision below the oldest kept is `compacted` (a watch from before it fails as
 * etcd's does). One process owns the file; a second handle on it (tests, a tool) sees its commits through get/list
 * and create-if-absent holds across handles (each write is an IMMEDIATE transaction), but watches see only changes
 * made through their own handle.
 *
 * A file that is not a database, or whose pages do not pass SQLite's quick_check, is moved aside with its -wal and
 * -shm (`pxebox.db.corrupt-<time>`, never overwritten) and reported in `problems`; pxebox starts with an empty store
 * rather than not at all, as with the corrupt JSON files before. The quick_check is skipped for a file pxebox closed
 * cleanly and nothing wrote since (sqlite-clean.ts: it was most of a restart's CPU with 100,000 machine records).
 */
import { mkdirSync } from 'node:fs'
import { access, rename } from 'node:fs/promises'
import { dirname } from 'node:path'
import Database from 'better-sqlite3'
import { moveCorruptAside } from '../host/durable-file.js'
import { silentLogger, type Logger } from '../host/log.js'
import { takeCleanMark, writeCleanMark } from './sqlite-clean.js'
import { prepareLayout, SCHEMA_VERSION, setNewFilePageSize, type LayoutMove } from './sqlite-layout.js'
import { limitPageCache } from './sqlite-cache.js'
import { checkCurrent, checkKey, checkPage, StoreClosedError, StoreCompactedError, StoreConflictError, StoreError, type Store, type StoreEntry, type StoreEvent, type StoreOp, type StoreWatch, type WatchListener, type WatchOptions, type WriteOptions } from './store.js'

/** Options for openSqliteStore. */
export interface SqliteStoreOptions {
  /** The database file (the daemon: `<data_dir>/pxebox.db`); its folder is created. */
  readonly file: string
  /** Change rows kept for watches from a past revision. Default 10,000. */
  readonly history?: number
  readonly logger?: Logger
  /** Clock for the name of a corrupt file set aside. */
  readonly now?: () => Date
}

/** SQLite's answers for a file that is not (or no longer) a database. */
const CORRUPT_CODES = new Set(['SQLITE_NOTADB', 'SQLITE_CORRUPT', 'SQLITE_CORRUPT_INDEX', 'SQLITE_CORRUPT_SEQUENCE', 'SQLITE_CORRUPT_VTAB'])

class CorruptDatabase extends Error {}

interface Row {
  kind: string
  id: string
  value: string
  create_revision: number
  mod_revision: number
}

interface ChangeRow {
  revision: number
  kind: string
  id: string
  value: string | null
}

/** Opens (creating if missing) the database at `opts.file`. Throws StoreError only when it cannot be opened at all. */
export async function openSqliteStore(opts: SqliteStoreOptions): Promise<Store> {
  const logger = (opts.logger ?? silentLogger).child({ component: 'store' })
  const file = opts.file
  const problems: string[] = []
  mkdirSync(dirname(file), { recursive: true })
  // Taken (and removed) before the file is opened: only a clean close of this run writes a new one.
  const clean = takeCleanMark(file)
  let db: Database.Database
  try {
    const opened = openChecked(file, !clean)
    db = opened.db
    const moved = opened.moved
    if (moved !== undefined) logger.info({ file, from_layout: moved.from, documents: moved.docs, ms: moved.ms }, 'store file moved to the current layout')
    logger.debug({ file, quick_check: !clean }, clean ? 'store opened; closed cleanly, quick_check skipped' : 'store opened and checked')
  } catch (err) {
    if (!(err instanceof CorruptDatabase)) throw new StoreError('PXEBOX_STORE_OPEN', `cannot open the store ${file}: ${(err as Error).message}`)
    const movedTo = await moveCorruptAside(file, opts.now?.() ?? new Date())
    // The WAL and index belong to the bad file: replaying them onto a new database would be wrong.
    for (const side of ['-wal', '-shm']) {
      const exists = await access(file + side).then(() => true, () => false)
      if (exists && movedTo !== undefined) await rename(file + side, movedTo + side).catch(() => undefined)
    }
    const problem = `${file} is not a usable database (${err.message}); ${movedTo === undefined ? 'it could not be moved aside' : `moved to ${movedTo}`}, starting with an empty store`
    problems.push(problem)
    logger.error({ file, moved_to: movedTo }, problem)
    try {
      db = openChecked(file, true).db
    } catch (again) {
      throw new StoreError('PXEBOX_STORE_OPEN', `cannot open the store ${file} after moving the corrupt one aside: ${(again as Error).message}`)
    }
  }
  return sqliteStore(db, file, problems, opts.history ?? 10_000, logger)
}

/**
 * Open, set the pragmas, create the tables and (with `check`) check the pages; CorruptDatabase when SQLite says it is
 * not a database.
 */
function openChecked(file: string, check: boolean): { db: Database.Database; moved: LayoutMove | undefined } {
  let db: Database.Database | undefined
  try {
    db = new Database(file)
    setNewFilePageSize(db)
    db.pragma('journal_mode = WAL')
    db.pragma('synchronous = NORMAL')
    limitPageCache(db)
    // A second handle (a tool, a test) waits for the writer instead of failing with SQLITE_BUSY.
    db.pragma('busy_timeout = 5000')
    const version = db.pragma('user_version', { simple: true }) as number
    if (version > SCHEMA_VERSION) throw new StoreError('PXEBOX_STORE_VERSION', `${file} was written by a newer pxebox (layout ${version}; this one knows ${SCHEMA_VERSION})`)
    // Checked before a move to the current layout reads every row of it.
    if (check) {
      const result = db.pragma('quick_check', { simple: true }) as string
      if (result !== 'ok') throw new CorruptDatabase(`quick_check: ${result}`)
    }
    return { db, moved: prepareLayout(db, version) }
  } catch (err) {
    db?.close()
    const code = (err as { code?: unknown }).code
    if (err instanceof CorruptDatabase) throw err
    if (typeof code === 'string' && CORRUPT_CODES.has(code)) throw new CorruptDatabase(`${code}: ${(err as Error).message}`)
    throw err
  }
}

interface Watcher {
  readonly kind: string | undefined
  readonly listener: WatchListener
  readonly queue: StoreEvent[]
  scheduled: boolean
  closed: boolean
}

function sqliteStore(db: Database.Database, file: string, problems: string[], history: number, logger: Logger): Store {
  const q = {
    revision: db.prepare<[], { value: number }>(`SELECT value FROM meta WHERE key = 'revision'`),
    compacted: db.prepare<[], { value: number }>(`SELECT value FROM meta WHERE key = 'compacted'`),
    setMeta: db.prepare<[number, string]>(`UPDATE meta SET value = ? WHERE key = ?`),
    get: db.prepare<[string, string], Row>(`SELECT * FROM docs WHERE kind = ? AND id = ?`),
    exists: db.prepare<[string, string], { one: number }>(`SELECT 1 AS one FROM docs WHERE kind = ? AND id = ?`),
    modRevision: db.prepare<[string, string], { mod_revision: number }>(`SELECT mod_revision FROM docs WHERE kind = ? AND id = ?`),
    list: db.prepare<[string], Row>(`SELECT * FROM docs WHERE kind = ? ORDER BY id`),
    // BINARY collation: ids compare bytewise, as etcd's keys do, so a page ends where etcd's would.
    page: db.prepare<[string, string, number], Row>(`SELECT * FROM docs WHERE kind = ? AND id > ? ORDER BY id LIMIT ?`),
    upsert: db.prepare<[string, string, string, number, number]>(
      `INSERT INTO docs (kind, id, value, create_revision, mod_revision) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (kind, id) DO UPDATE SET value = excluded.value, mod_revision = excluded.mod_revision`,
    ),
    remove: db.prepare<[string, string]>(`DELETE FROM docs WHERE kind = ? AND id = ?`),
    change: db.prepare<[number, string, string, string | null]>(`INSERT INTO changes (revision, kind, id, value) VALUES (?, ?, ?, ?)`),
    since: db.prepare<[number], ChangeRow>(`SELECT revision, kind, id, value FROM changes WHERE revision >= ? ORDER BY seq`),
    lastSeq: db.prepare<[], { seq: number | null }>(`SELECT max(seq) AS seq FROM changes`),
    revisionAt: db.prepare<[number], { revision: number }>(`SELECT revision FROM changes WHERE seq >= ? ORDER BY seq LIMIT 1`),
    trim: db.prepare<[number]>(`DELETE FROM changes WHERE revision < ?`),
  }
  const watchers = new Set<Watcher>()
  let closed = false
  let sinceTrim = 0

  /** The ops under one new revision, inside one IMMEDIATE transaction; the events, or none when nothing changed. */
  const apply = db.transaction((ops: readonly StoreOp[], onlyIfAbsent: boolean): { revision: number; events: StoreEvent[] } | undefined => {
    const current = q.revision.get()!.value
    if (onlyIfAbsent && q.exists.get(ops[0]!.kind, ops[0]!.id) !== undefined) return undefined
    // Guards first, inside the IMMEDIATE transaction: no other writer can commit between the check and the writes.
    for (const op of ops) {
      if (op.ifRevision === undefined) continue
      const actual = q.modRevision.get(op.kind, op.id)?.mod_revision ?? 0
      if (actual !== op.ifRevision) throw new StoreConflictError(op.kind, op.id, op.ifRevision, actual)
    }
    const revision = current + 1
    const events: StoreEvent[] = []
    for (const op of ops) {
      if (op.op === 'put') {
        const text = JSON.stringify(op.value)
        if (text === undefined) throw new StoreError('PXEBOX_STORE_VALUE', `store value for ${op.kind}/${op.id} is not JSON data`)
        q.upsert.run(op.kind, op.id, text, revision, revision)
        q.change.run(revision, op.kind, op.id, text)
        // Parsed for watchers only: with none (the daemon today) a large document is not parsed back on the loop.
        const value = watchers.size === 0 ? undefined : (JSON.parse(text) as unknown)
        events.push({ type: 'put', kind: op.kind, id: op.id, value, revision })
      } else if (q.remove.run(op.kind, op.id).changes > 0) {
        q.change.run(revision, op.kind, op.id, null)
        events.push({ type: 'delete', kind: op.kind, id: op.id, revision })
      }
    }
    if (events.length === 0) return { revision: current, events }
    q.setMeta.run(revision, 'revision')
    return { revision, events }
  })

  const trimHistory = (): void => {
    const last = q.lastSeq.get()!.seq ?? 0
    const keepFrom = q.revisionAt.get(last - history + 1)?.revision
    if (keepFrom === undefined || keepFrom <= q.compacted.get()!.value + 1) return
    db.transaction(() => {
      q.trim.run(keepFrom)
      q.setMeta.run(keepFrom - 1, 'compacted')
    }).immediate()
  }

  const deliver = (w: Watcher): void => {
    if (w.scheduled || w.closed) return
    w.scheduled = true
    queueMicrotask(() => {
      w.scheduled = false
      while (!w.closed && w.queue.length > 0) {
        const event = w.queue.shift()!
        try {
          w.listener(event)
        } catch (err) {
          logger.warn({ err, kind: event.kind, id: event.id }, 'store watch listener failed')
        }
      }
    })
  }

  const write = (ops: readonly StoreOp[], opts: WriteOptions | undefined, onlyIfAbsent = false): number | undefined => {
    if (closed) throw new StoreClosedError(file)
    for (const op of ops) {
      checkKey(op.kind, op.id)
      if (op.ifRevision !== undefined && !(Number.isSafeInteger(op.ifRevision) && op.ifRevision >= 0)) {
        throw new StoreError('PXEBOX_STORE_REVISION', `ifRevision ${op.ifRevision} for ${op.kind}/${op.id} is not a revision (an integer >= 0)`)
      }
    }
    if (opts?.durable === true) db.pragma('synchronous = FULL')
    let result: ReturnType<typeof apply>
    try {
      result = apply.immediate(ops, onlyIfAbsent)
    } finally {
      if (opts?.durable === true) db.pragma('synchronous = NORMAL')
    }
    if (result === undefined) return undefined
    for (const w of watchers) {
      for (const e of result.events) if (w.kind === undefined || w.kind === e.kind) w.queue.push(e)
      deliver(w)
    }
    sinceTrim += result.events.length
    if (sinceTrim > Math.max(100, history / 10)) {
      sinceTrim = 0
      trimHistory()
    }
    return result.events.length > 0 ? result.revision : undefined
  }

  const entry = (r: Row): StoreEntry => ({ kind: r.kind, id: r.id, value: JSON.parse(r.value) as unknown, modRevision: r.mod_revision, createRevision: r.create_revision })
  const open = (): void => {
    if (closed) throw new StoreClosedError(file)
  }

  return {
    backend: 'sqlite',
    location: file,
    problems,
    maxBatchOps: Infinity,
    async get(kind, id) {
      open()
      const r = q.get.get(kind, id)
      return r === undefined ? undefined : entry(r)
    },
    async list(kind) {
      open()
      // Row by row rather than all rows first: each row's text dies as soon as it is parsed, so the young-generation
      // collector does not copy 100,000 of them (a restart with 100,000 machine records spent most of its CPU there).
      const out: StoreEntry[] = []
      for (const r of q.list.iterate(kind)) out.push(entry(r))
      return out
    },
    async page(kind, popts) {
      open()
      checkPage(kind, popts)
      // Read and revision in one transaction: another handle's commit cannot fall between them.
      return db.transaction(() => {
        const revision = q.revision.get()!.value
        checkCurrent(kind, popts.revision, revision)
        const rows = q.page.all(kind, popts.after ?? '', popts.limit + 1)
        const more = rows.length > popts.limit
        const entries = rows.slice(0, popts.limit).map(entry)
        return more ? { entries, next: entries[entries.length - 1]!.id, revision } : { entries, revision }
      }).deferred()
    },
    async put(kind, id, value, opts) {
      return write([{ op: 'put', kind, id, value }], opts)!
    },
    async create(kind, id, value, opts) {
      return write([{ op: 'put', kind, id, value }], opts, true)
    },
    async delete(kind, id, opts) {
      return write([{ op: 'delete', kind, id }], opts)
    },
    async batch(ops, opts) {
      open()
      if (ops.length === 0) return q.revision.get()!.value
      return write(ops, opts) ?? q.revision.get()!.value
    },
    async revision() {
      open()
      return q.revision.get()!.value
    },
    watch(opts: WatchOptions, listener: WatchListener, onError?: (err: Error) => void): StoreWatch {
      const w: Watcher = { kind: opts.kind, listener, queue: [], scheduled: false, closed: false }
      const fail = (err: Error) => queueMicrotask(() => (onError ? onError(err) : logger.warn({ err }, 'store watch ended')))
      if (closed) {
        fail(new StoreClosedError(file))
        return { close: () => undefined }
      }
      if (opts.fromRevision !== undefined) {
        const compacted = q.compacted.get()!.value
        if (opts.fromRevision <= compacted) {
          fail(new StoreCompactedError(opts.fromRevision, compacted))
          return { close: () => undefined }
        }
        // History and registration in one synchronous step: no commit can fall between them.
        for (const c of q.since.all(opts.fromRevision)) {
          if (w.kind !== undefined && c.kind !== w.kind) continue
          w.queue.push(c.value === null ? { type: 'delete', kind: c.kind, id: c.id, revision: c.revision } : { type: 'put', kind: c.kind, id: c.id, value: JSON.parse(c.value) as unknown, revision: c.revision })
        }
      }
      watchers.add(w)
      deliver(w)
      return {
        close() {
          w.closed = true
          watchers.delete(w)
        },
      }
    },
    async close() {
      if (closed) return
      closed = true
      for (const w of watchers) w.closed = true
      watchers.clear()
      db.close()
      writeCleanMark(file)
    },
  }
}
