/**
 * The embedded backend: the Store contract (contract.ts), then what is SQLite's own: a corrupt database file set
 * aside and reported (as the corrupt JSON files were), bounded watch history, a database from a newer pxebox refused,
 * and commits that survive the process being killed.
 */
import t, { type Test } from 'tap'
import { spawn } from 'node:child_process'
import { mkdtemp, readdir, readFile, rm, stat, writeFile, open } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { pino } from 'pino'
import { Writable } from 'node:stream'
import { openSqliteStore, StoreCompactedError } from '../../src/store/index.js'
import { collect, storeContract } from './contract.js'
import { tsNodeArgs } from '../helpers/netns.js'

/** A logger that keeps the store's "opened" lines: whether each open ran quick_check. */
function openLog() {
  const checks: boolean[] = []
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString().split('\n').filter(Boolean)) {
        const o = JSON.parse(line) as { quick_check?: boolean }
        if (typeof o.quick_check === 'boolean') checks.push(o.quick_check)
      }
      done()
    },
  })
  return { logger: pino({ level: 'debug' }, stream), checks }
}

async function tempDir(t: Test): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'pxebox-store-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  return dir
}

t.test('contract', async (t) => {
  storeContract(t, async (t) => {
    const file = join(await tempDir(t), 'pxebox.db')
    return { open: () => openSqliteStore({ file }) }
  })
})

t.test('a file that is not a database is moved aside with the reason; the store starts empty and works', async (t) => {
  const dir = await tempDir(t)
  const file = join(dir, 'pxebox.db')
  await writeFile(file, 'this was machines.json once\n'.repeat(100))
  const s = await openSqliteStore({ file, now: () => new Date('2026-11-27T22:00:00Z') })
  t.teardown(() => s.close())
  t.equal(s.problems.length, 1)
  t.match(s.problems[0], /pxebox\.db is not a usable database \(SQLITE_NOTADB: .*\); moved to .*pxebox\.db\.corrupt-2026-11-27T22-00-00-000Z, starting with an empty store/)
  t.same(await s.list('machine'), [])
  await s.put('machine', 'm', { ok: true })
  const names = (await readdir(dir)).sort()
  t.ok(names.includes('pxebox.db.corrupt-2026-11-27T22-00-00-000Z'), 'the evidence is kept')
  t.match(await readFile(join(dir, 'pxebox.db.corrupt-2026-11-27T22-00-00-000Z'), 'utf8'), /^this was machines\.json once/)
})

t.test('a database with damaged pages fails quick_check and is set aside; a second corruption keeps the first', async (t) => {
  const dir = await tempDir(t)
  const file = join(dir, 'pxebox.db')
  const damage = async () => {
    const s = await openSqliteStore({ file })
    for (let i = 0; i < 300; i++) await s.put('machine', `m${i}`, { filler: 'x'.repeat(500), i })
    await s.close()
    // Overwrite pages past the header (page 1 holds the schema): the file still opens, its b-trees are broken.
    const fh = await open(file, 'r+')
    const { size } = await fh.stat()
    await fh.write(Buffer.alloc(8192, 0xa5), 0, 8192, Math.floor(size / 2 / 4096) * 4096)
    await fh.close()
  }
  await damage()
  const s = await openSqliteStore({ file, now: () => new Date('2026-11-27T22:00:00Z') })
  t.equal(s.problems.length, 1)
  t.match(s.problems[0], /not a usable database \((quick_check|SQLITE_CORRUPT)/)
  t.same(await s.list('machine'), [], 'starts empty')
  await s.close()
  await damage()
  const again = await openSqliteStore({ file, now: () => new Date('2026-11-27T22:00:00Z') })
  t.teardown(() => again.close())
  const aside = (await readdir(dir)).filter((n) => /^pxebox\.db\.corrupt-[^.]*$/.test(n)).sort()
  t.same(aside, ['pxebox.db.corrupt-2026-11-27T22-00-00-000Z', 'pxebox.db.corrupt-2026-11-27T22-00-00-000Z-1'], 'two files set aside, neither overwritten')
})

t.test('quick_check runs unless the file is as pxebox closed it cleanly', async (t) => {
  const dir = await tempDir(t)
  const file = join(dir, 'pxebox.db')
  const { logger, checks } = openLog()
  const first = await openSqliteStore({ file, logger })
  await first.put('machine', 'm1', { i: 1 })
  await first.close()
  t.ok((await stat(`${file}.clean`)).isFile(), 'a clean close leaves the mark')
  const second = await openSqliteStore({ file, logger })
  await t.rejects(stat(`${file}.clean`), { code: 'ENOENT' }, 'the mark goes at open: a crash of this run leaves none')
  t.same((await second.get('machine', 'm1'))?.value, { i: 1 })
  await second.put('machine', 'm2', { i: 2 })
  await second.close()
  // Written while pxebox was stopped, same size (the damage test below breaks pages the same way).
  const fh = await open(file, 'r+')
  const header = Buffer.alloc(16)
  await fh.read(header, 0, 16, 0)
  await fh.write(header, 0, 16, 0)
  await fh.close()
  const third = await openSqliteStore({ file, logger })
  await third.close()
  // A mark that does not parse, or names another file, is no mark.
  await writeFile(`${file}.clean`, '{"dev":"1","ino":"2","size":"3","mtimeNs":"4","ctimeNs":"5"}')
  const fourth = await openSqliteStore({ file, logger })
  await fourth.close()
  t.same(checks, [true, false, true, true], 'checked: first open, after a write while closed, with a stale mark; skipped after a clean close')
})

t.test('a layout 1 file (rowid docs, 4 KiB pages) moves to layout 2 at open with its documents, revisions and history', async (t) => {
  const dir = await tempDir(t)
  const file = join(dir, 'pxebox.db')
  // Layout 1 exactly as the pxebox before it wrote it.
  const old = new Database(file)
  old.pragma('journal_mode = WAL')
  old.exec(`
    CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
    INSERT INTO meta (key, value) VALUES ('revision', 0), ('compacted', 0);
    CREATE TABLE docs (
      kind TEXT NOT NULL, id TEXT NOT NULL, value TEXT NOT NULL,
      create_revision INTEGER NOT NULL, mod_revision INTEGER NOT NULL,
      PRIMARY KEY (kind, id)
    );
    CREATE TABLE changes (
      seq INTEGER PRIMARY KEY AUTOINCREMENT, revision INTEGER NOT NULL, kind TEXT NOT NULL, id TEXT NOT NULL, value TEXT
    );
    CREATE INDEX changes_by_revision ON changes (revision);
  `)
  old.pragma('user_version = 1')
  const put = old.prepare('INSERT INTO docs VALUES (?, ?, ?, ?, ?)')
  const change = old.prepare('INSERT INTO changes (revision, kind, id, value) VALUES (?, ?, ?, ?)')
  let revision = 0
  for (let i = 0; i < 200; i++) {
    // Interleaved as the machine store writes them: a record, then its timeline.
    for (const kind of ['machine', 'machine-timeline']) {
      const value = JSON.stringify({ i, kind, pad: 'x'.repeat(i * 10) })
      put.run(kind, `m${String(i).padStart(3, '0')}`, value, ++revision, revision)
      change.run(revision, kind, `m${String(i).padStart(3, '0')}`, value)
    }
  }
  old.prepare(`UPDATE meta SET value = ? WHERE key = 'revision'`).run(revision)
  t.equal(old.pragma('page_size', { simple: true }), 4096)
  old.close()

  const { logger } = openLog()
  const s = await openSqliteStore({ file, logger })
  t.same(s.problems, [])
  t.equal(await s.revision(), 400, 'the revision goes on')
  const records = await s.list('machine')
  t.equal(records.length, 200)
  t.same(records[7], { kind: 'machine', id: 'm007', value: { i: 7, kind: 'machine', pad: 'x'.repeat(70) }, modRevision: 15, createRevision: 15 })
  t.same((await s.get('machine-timeline', 'm199'))?.value, { i: 199, kind: 'machine-timeline', pad: 'x'.repeat(1990) })
  const history = collect(s, { fromRevision: 399 }, 2)
  t.same((await history.done).map((e) => [e.revision, e.kind, e.id]), [[399, 'machine', 'm199'], [400, 'machine-timeline', 'm199']], 'watch history kept')
  history.close()
  t.equal(await s.put('machine', 'm200', { i: 200 }), 401)
  await s.close()

  const db = new Database(file, { readonly: true })
  t.teardown(() => db.close())
  t.equal(db.pragma('user_version', { simple: true }), 2)
  t.equal(db.pragma('page_size', { simple: true }), 16384)
  t.match((db.prepare(`SELECT sql FROM sqlite_master WHERE name = 'docs'`).get() as { sql: string }).sql, /WITHOUT ROWID/)
  t.same(db.prepare(`SELECT name FROM sqlite_master WHERE name LIKE 'docs%' ORDER BY name`).all(), [{ name: 'docs' }], 'no table of the old layout left')
  const again = await openSqliteStore({ file })
  t.teardown(() => again.close())
  t.equal((await again.list('machine')).length, 201, 'reopened as layout 2')
})

t.test('a new file is layout 2 with 16 KiB pages', async (t) => {
  const file = join(await tempDir(t), 'pxebox.db')
  const s = await openSqliteStore({ file })
  await s.put('k', 'a', 1)
  await s.close()
  const db = new Database(file, { readonly: true })
  t.teardown(() => db.close())
  t.equal(db.pragma('user_version', { simple: true }), 2)
  t.equal(db.pragma('page_size', { simple: true }), 16384)
  t.match((db.prepare(`SELECT sql FROM sqlite_master WHERE name = 'docs'`).get() as { sql: string }).sql, /WITHOUT ROWID/)
})

t.test('a database written by a newer pxebox is refused, not emptied', async (t) => {
  const dir = await tempDir(t)
  const file = join(dir, 'pxebox.db')
  const db = new Database(file)
  db.pragma('user_version = 99')
  db.close()
  await t.rejects(openSqliteStore({ file }), { code: 'PXEBOX_STORE_OPEN', message: /written by a newer pxebox \(layout 99; this one knows 2\)/ })
  t.equal((await stat(file)).isFile(), true, 'left where it was')
})

t.test('watch history is bounded: a watch from a compacted revision fails with StoreCompactedError', async (t) => {
  const dir = await tempDir(t)
  const s = await openSqliteStore({ file: join(dir, 'pxebox.db'), history: 200 })
  t.teardown(() => s.close())
  const first = await s.put('k', 'a', 0)
  for (let i = 1; i < 1000; i++) await s.put('k', `id${i % 50}`, i)
  const err = await new Promise<Error>((resolve) => s.watch({ fromRevision: first }, () => undefined, resolve))
  t.type(err, StoreCompactedError)
  t.match(err.message, /compacted; a watch from revision 1 cannot be served/)
  const recent = (await s.revision()) - 100
  const c = collect(s, { fromRevision: recent }, 101)
  t.teardown(() => c.close())
  t.equal((await c.done)[0]!.revision, recent, 'recent history is served')
})

t.test('commits survive the process being killed (kill -9 after the write resolved)', async (t) => {
  const dir = await tempDir(t)
  const file = join(dir, 'pxebox.db')
  const url = new URL('../../src/store/sqlite.ts', import.meta.url).href
  // The child writes, says how far it got after each resolved write, and is killed mid-stream.
  const script = `
    const { openSqliteStore } = await import(${JSON.stringify(url)})
    const s = await openSqliteStore({ file: ${JSON.stringify(file)} })
    for (let i = 0; ; i++) { await s.put('machine', 'm' + i, { i }); process.stdout.write(i + '\\n') }
  `
  const child = spawn(process.execPath, [...tsNodeArgs(), '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] })
  let out = ''
  await new Promise<void>((resolve) => {
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString()
      if (out.split('\n').length > 500 && !child.killed) {
        child.kill('SIGKILL')
        resolve()
      }
    })
    child.on('exit', () => resolve())
  })
  await new Promise((r) => child.on('exit', r))
  const acknowledged = out.split('\n').filter((l) => l !== '').map(Number)
  const last = acknowledged[acknowledged.length - 1]!
  t.ok(last >= 499, `child acknowledged ${last + 1} writes before it was killed`)
  const { logger, checks } = openLog()
  const s = await openSqliteStore({ file, logger })
  t.teardown(() => s.close())
  t.same(s.problems, [])
  t.same(checks, [true], 'after a kill the file is checked')
  const ids = new Set((await s.list('machine')).map((e) => e.id))
  const lost = acknowledged.filter((i) => !ids.has(`m${i}`))
  t.same(lost, [], 'every write that resolved before the kill is there')
})
