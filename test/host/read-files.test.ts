/**
 * src/host/read-files.ts (and native/readfiles.c under it): a batch of a folder's files read at once gives each file
 * the text, or the same error, a single readConfigFileSync gives it: missing, unreadable (a symlink loop), a folder
 * or FIFO in place of a file, over the size limit. With the addon and without (the fallback), in one batch larger
 * than a native batch, and the folder listing against readdir.
 */
import t from 'tap'
import { execFileSync } from 'node:child_process'
import { mkdirSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { loadNative } from '../../src/host/native.js'
import { ConfigFileError, readConfigFileSync } from '../../src/host/read-file.js'
import { fileBatchReader, listFolder } from '../../src/host/read-files.js'

const native = loadNative()
const readers = [
  { name: 'native', reader: fileBatchReader(native) },
  { name: 'fallback', reader: fileBatchReader({ reason: 'test: no addon' }) },
]

/** What one file reads as alone: its text, or its error's code and message. */
function alone(path: string, max: number): string | { code: string; message: string } {
  try {
    return readConfigFileSync(path, max)
  } catch (err) {
    return { code: (err as ConfigFileError).code, message: (err as Error).message }
  }
}
const shape = (r: string | ConfigFileError): string | { code: string; message: string } =>
  typeof r === 'string' ? r : { code: r.code, message: r.message }

t.test('the addon has the batch reader (the build under test is not silently the fallback)', async (t) => {
  t.equal(typeof native.addon?.readFilesAt, 'function', native.reason ?? '')
  t.equal(typeof native.addon?.listDir, 'function')
})

t.test('every kind of file in one batch reads as it does alone', async (t) => {
  const dir = t.testdir({
    'ok.json': '{"id":"a"}',
    'empty.json': '',
    'utf8.json': '"é€😀"',
    'limit.json': 'x'.repeat(100),
    'over.json': 'x'.repeat(101),
    'folder.json': {},
  })
  symlinkSync('loop.json', join(dir, 'loop.json')) // ELOOP: a file that exists and cannot be opened
  symlinkSync('nowhere', join(dir, 'dangling.json'))
  execFileSync('mkfifo', [join(dir, 'fifo.json')])
  const names = ['ok.json', 'missing.json', 'empty.json', 'utf8.json', 'limit.json', 'over.json', 'folder.json', 'loop.json', 'dangling.json', 'fifo.json', 'ok.json']
  const expected = names.map((n) => alone(join(dir, n), 100))
  t.same(expected.map((e) => (typeof e === 'string' ? 'text' : e.code)), ['text', 'ENOENT', 'text', 'text', 'text', 'ETOOBIG', 'ENOTREG', 'ELOOP', 'ENOENT', 'ENOTREG', 'text'])
  for (const { name, reader } of readers) {
    const got = await reader.read(dir, names, 100)
    t.same(got.map(shape), expected, name)
    t.ok(got.filter((r) => typeof r !== 'string').every((r) => r instanceof ConfigFileError), `${name}: errors are ConfigFileErrors`)
  }
})

t.test('a missing folder: every file is missing', async (t) => {
  const dir = join(t.testdir({}), 'gone')
  for (const { name, reader } of readers) {
    const got = await reader.read(dir, ['a.json', 'b.json'], 100)
    t.same(got.map((r) => (typeof r === 'string' ? r : r.code)), ['ENOENT', 'ENOENT'], name)
  }
})

t.test('a name with a NUL byte is refused as Node refuses it, the rest of its batch still read', async (t) => {
  const dir = t.testdir({ 'a.json': 'A' })
  for (const { name, reader } of readers) {
    const got = await reader.read(dir, ['a.json', 'b\0.json'], 100)
    t.equal(got[0], 'A', name)
    t.type(got[1], ConfigFileError, name)
  }
})

t.test('many files and large ones: contents land at their own offsets', async (t) => {
  const dir = t.testdir({})
  const names: string[] = []
  const texts: string[] = []
  for (let i = 0; i < 700; i++) {
    // Sizes across the addon's 64 KiB buffer steps, some growing it in one file.
    const text = `${i}:` + 'abcdefghij'.repeat(i % 7 === 0 ? 9000 : i % 50)
    names.push(`f${i}.json`)
    texts.push(text)
    writeFileSync(join(dir, `f${i}.json`), text)
  }
  for (const { name, reader } of readers) t.same(await reader.read(dir, names, 1 << 20), texts, name)
})

t.test('a bad call to the addon throws a TypeError; the reader never rejects', async (t) => {
  const addon = native.addon!
  t.throws(() => addon.readFilesAt!('/', 'x' as unknown as string[], 1), TypeError)
  t.throws(() => addon.readFilesAt!('/', [1 as unknown as string], 1), TypeError)
  t.throws(() => addon.readFilesAt!('/', [], -1), TypeError)
  const [data, results] = await addon.readFilesAt!('/', [], 1)
  t.equal(data.length, 0)
  t.equal(results.length, 0)
})

t.test('listFolder gives readdir\'s names; a missing folder or a file rejects as readdir does', async (t) => {
  const dir = t.testdir({ 'a.json': '', 'é.json': '', '.hidden': '', sub: {} })
  for (let i = 0; i < 3000; i++) writeFileSync(join(dir, `n${i}.json`), '')
  const list = (await listFolder(dir, native)).toString('utf8')
  t.same(list.split('\0').slice(0, -1).sort(), readdirSync(dir).sort())
  t.equal((await listFolder(dir, {})).toString('utf8').split('\0').slice(0, -1).sort().join('/'), readdirSync(dir).sort().join('/'), 'fallback')
  const empty = join(dir, 'sub')
  t.equal((await listFolder(empty, native)).length, 0)
  await t.rejects(listFolder(join(dir, 'gone'), native), { code: 'ENOENT' })
  await t.rejects(listFolder(join(dir, 'a.json'), native), { code: 'ENOTDIR' })
  mkdirSync(join(dir, 'sub', 'x'))
  t.equal((await listFolder(empty, native)).toString('utf8'), 'x\0')
})
