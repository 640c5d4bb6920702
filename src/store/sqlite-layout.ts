/**
 * The embedded store's database layout (`PRAGMA user_version`), and the move of an older file to it.
 *
 * Layout 2 (this one): `docs` is a WITHOUT ROWID table, so its rows sit in (kind, id) order in the b-tree itself and
 * one kind is one contiguous run of pages; the pages are 16 KiB. Layout 1 kept `docs` in a rowid table in insertion
 * order with a separate (kind, id) index, so the 100,000 `machine` rows a start reads sat between the
 * `machine-timeline` rows written with them and listing them touched most of the file, a b-tree descent per row
 * (bench/scale-machines.ts' 226 MB file: 390-430 ms of CPU to list the records, 250-270 ms now). The larger pages
 * keep a ~2 KB timeline document inside its leaf: a WITHOUT ROWID leaf holds at most ~1/16 of a page before the rest
 * of a row overflows to a page of its own, which with 4 KiB pages made the same data 518 MB; with 16 KiB it is
 * 174 MB.
 *
 * A layout 1 file is moved once at open: its rows copied into the new table in one transaction, then VACUUM (in
 * rollback-journal mode, which SQLite needs to change the page size; atomic either way) rewrites the file with the new
 * page size. A crash during either leaves the old layout or the new one, never half of one.
 */
import type Database from 'better-sqlite3'

/** The database layout this build writes (`PRAGMA user_version`). */
export const SCHEMA_VERSION = 2

/** Page size of a new or migrated file (see the file comment). */
export const PAGE_SIZE = 16384

const DOCS = `
  CREATE TABLE IF NOT EXISTS docs (
    kind TEXT NOT NULL, id TEXT NOT NULL, value TEXT NOT NULL,
    create_revision INTEGER NOT NULL, mod_revision INTEGER NOT NULL,
    PRIMARY KEY (kind, id)
  ) WITHOUT ROWID;
`

const SCHEMA = `
  CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
  INSERT OR IGNORE INTO meta (key, value) VALUES ('revision', 0), ('compacted', 0);
  ${DOCS}
  CREATE TABLE IF NOT EXISTS changes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, revision INTEGER NOT NULL, kind TEXT NOT NULL, id TEXT NOT NULL, value TEXT
  );
  CREATE INDEX IF NOT EXISTS changes_by_revision ON changes (revision);
`

/** What a move from an older layout did, for the log; undefined when the file was already in this one (or new). */
export interface LayoutMove {
  readonly from: number
  readonly docs: number
  readonly ms: number
}

/**
 * Before the file's first page is written: a new file gets PAGE_SIZE (SQLite ignores this for an existing one, and
 * in WAL mode), so call it before `journal_mode = WAL`.
 */
export function setNewFilePageSize(db: Database.Database): void {
  db.pragma(`page_size = ${PAGE_SIZE}`)
}

/**
 * Create the tables, or move a file of an older layout (`version`, its user_version) to this one. The caller has
 * checked that `version` is not newer than SCHEMA_VERSION; `db` is in WAL mode with no other handle in this process.
 */
export function prepareLayout(db: Database.Database, version: number): LayoutMove | undefined {
  const t0 = Date.now()
  let docs = 0
  const old = version === 1 && db.prepare(`SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'docs' AND sql NOT LIKE '%WITHOUT ROWID%'`).get() !== undefined
  if (old) {
    db.transaction(() => {
      db.exec(`ALTER TABLE docs RENAME TO docs_layout1`)
      db.exec(DOCS)
      docs = db.prepare(`INSERT INTO docs SELECT kind, id, value, create_revision, mod_revision FROM docs_layout1 ORDER BY kind, id`).run().changes
      db.exec(`DROP TABLE docs_layout1`)
      db.pragma(`user_version = ${SCHEMA_VERSION}`)
    }).immediate()
  }
  db.exec(SCHEMA)
  db.pragma(`user_version = ${SCHEMA_VERSION}`)
  if ((db.pragma('page_size', { simple: true }) as number) < PAGE_SIZE) {
    // SQLite changes an existing file's page size only by VACUUM, and not in WAL mode.
    db.pragma('journal_mode = DELETE')
    db.pragma(`page_size = ${PAGE_SIZE}`)
    db.exec('VACUUM')
    db.pragma('journal_mode = WAL')
  }
  return old ? { from: version, docs, ms: Date.now() - t0 } : undefined
}
