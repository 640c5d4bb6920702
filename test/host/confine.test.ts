/**
 * host/confine.ts on its own: the shared traversal corpus (the same one the TFTP and HTTP wire tests send), the
 * lexical checks, and the root's real path resolved again at most once per recheck period.
 */
import t from 'tap'
import { mkdir, readFile, realpath, rename, rm, symlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { ConfinementError, confinedRelativePath, createConfinedRoot } from '../../src/host/confine.js'
import { buildTraversalTree, INSIDE, TRAVERSAL_CORPUS } from '../helpers/traversal-corpus.js'
import { inotifyWatches } from '../helpers/inotify.js'
import { until } from '../helpers/change-seen.js'

t.test('the traversal corpus', async (t) => {
  const root = await buildTraversalTree(t.testdir())
  const confined = createConfinedRoot(root)
  for (const c of TRAVERSAL_CORPUS) {
    const label = `${JSON.stringify(c.path)} (${c.why})`
    if (c.outcome === 'refused') {
      await t.rejects(confined.resolve(c.path), ConfinementError, `${label}: refused`)
    } else if (c.outcome === 'not-found') {
      t.equal(await confined.resolve(c.path), undefined, `${label}: not found`)
    } else {
      const file = await confined.resolve(c.path)
      t.ok(file?.stats.isFile(), `${label}: found`)
      if (file) t.equal(await readFile(file.path, 'utf8'), INSIDE, `${label}: the file inside`)
    }
  }
})

t.test('lexical checks', async (t) => {
  t.equal(confinedRelativePath('a//b/./c/'), 'a/b/c')
  t.equal(confinedRelativePath('a/../b'), 'b', 'a .. that stays inside is fine')
  t.equal(confinedRelativePath('.'), '')
  for (const bad of ['..', '../x', 'a/../../x', '/etc/passwd', 'a\0b']) {
    t.throws(() => confinedRelativePath(bad), ConfinementError, JSON.stringify(bad))
  }
})

t.test('the root is resolved again once per recheck period, and a failed resolution is not kept', async (t) => {
  const dir = t.testdir()
  await mkdir(join(dir, 'v1'))
  await mkdir(join(dir, 'v2'))
  await writeFile(join(dir, 'v1', 'f'), 'one')
  await writeFile(join(dir, 'v2', 'f'), 'two')
  await symlink('v1', join(dir, 'current'))
  let clock = 0
  const confined = createConfinedRoot(join(dir, 'current'), { recheckMs: 1000, now: () => clock })
  const read = async () => {
    const f = await confined.resolve('f')
    return f ? readFile(f.path, 'utf8') : undefined
  }
  t.equal(await read(), 'one')
  // ln -sfn v2 current, atomically.
  await symlink('v2', join(dir, 'current.new'))
  await rename(join(dir, 'current.new'), join(dir, 'current'))
  clock = 999
  t.equal(await read(), 'one', 'within the period the resolved root is reused')
  clock = 1000
  t.equal(await read(), 'two', 'after it the new tree is served')
  await rename(join(dir, 'current'), join(dir, 'gone'))
  clock = 2000
  t.equal(await confined.resolve('f'), undefined, 'a missing root is a not-found, like a missing file')
  await rename(join(dir, 'gone'), join(dir, 'current'))
  clock = 2001
  t.equal(await read(), 'two', 'a root that reappears is found on the next request')
})

/** An outcome as a value: the file's content and real path, 'refused', or 'not-found'. */
async function outcome(confined: ReturnType<typeof createConfinedRoot>, rel: string): Promise<string> {
  try {
    const f = await confined.resolve(rel)
    return f === undefined ? 'not-found' : `${await readFile(f.path, 'utf8')}@${f.path}`
  } catch (err) {
    if (err instanceof ConfinementError) return 'refused'
    throw err
  }
}

t.test('with cacheFiles: the traversal corpus gives the same outcomes twice over, and a hit is the remembered file', async (t) => {
  const root = await buildTraversalTree(t.testdir())
  const confined = createConfinedRoot(root, { cacheFiles: 16 })
  t.teardown(() => confined.close())
  for (const round of ['filling', 'from the cache']) {
    for (const c of TRAVERSAL_CORPUS) {
      const label = `${round}: ${JSON.stringify(c.path)} (${c.why})`
      if (c.outcome === 'refused') await t.rejects(confined.resolve(c.path), ConfinementError, `${label}: refused`)
      else if (c.outcome === 'not-found') t.equal(await confined.resolve(c.path), undefined, `${label}: not found`)
      else t.equal(await readFile((await confined.resolve(c.path))!.path, 'utf8'), INSIDE, `${label}: the file inside`)
    }
  }
  const a = await confined.resolve('inside.bin')
  const b = await confined.resolve('inside.bin')
  t.equal(a, b, 'the second lookup returns the cached answer (no realpath or stat of its own)')
})

t.test('with cacheFiles: lookups of one path made at once share one resolution, refusals included', async (t) => {
  const root = await buildTraversalTree(t.testdir())
  const confined = createConfinedRoot(root, { cacheFiles: 16 })
  t.teardown(() => confined.close())
  // Neither is cached when both start: without sharing, each would realpath and stat on its own (another Stats object).
  const [a, b] = await Promise.all([confined.resolve('inside.bin'), confined.resolve('./inside.bin')])
  t.ok(a !== undefined && a === b, 'both get the one answer the shared lookup found')
  t.equal(await readFile(a!.path, 'utf8'), INSIDE)
  // A symlink leading out: refused by the realpath the two share, not by the lexical check each makes first.
  const both = await Promise.allSettled([confined.resolve('escape.txt'), confined.resolve('escape.txt')])
  t.ok(both.every((r) => r.status === 'rejected' && r.reason instanceof ConfinementError), 'a link leading out is refused for both')
  const [x, y] = await Promise.all([confined.resolve('no-such-file'), confined.resolve('no-such-file')])
  t.ok(x === undefined && y === undefined, 'a missing file is not found for both')
  const c = await confined.resolve('inside.bin')
  t.equal(c, a, 'once settled, the answer is the remembered one')
})

t.test('with cacheFiles: a file replaced or a symlink swapped after the cache filled is served fresh and still confined', async (t) => {
  const dir = t.testdir()
  const root = await buildTraversalTree(dir)
  const real = await realpath(root)
  const secretReal = await realpath(join(dir, 'outside', 'secret.txt'))
  await mkdir(join(root, 'v1'))
  await mkdir(join(root, 'v2'))
  await writeFile(join(root, 'v1', 'kernel'), 'kernel one')
  await writeFile(join(root, 'v2', 'kernel'), 'kernel two')
  await symlink('v1', join(root, 'current'))
  await writeFile(join(root, 'sub', 'initrd'), 'initrd one')
  const confined = createConfinedRoot(root, { cacheFiles: 16 })
  t.teardown(() => confined.close())
  const notOutside = (v: string) => !v.includes(secretReal) && !v.includes('top secret')

  // Fill the cache.
  t.equal(await outcome(confined, 'current/kernel'), `kernel one@${join(real, 'v1', 'kernel')}`)
  t.equal(await outcome(confined, 'sub/initrd'), `initrd one@${join(real, 'sub', 'initrd')}`)
  t.equal(await outcome(confined, 'inside-link.bin'), `${INSIDE}@${join(real, 'inside.bin')}`)

  // A file replaced atomically (a new inode renamed over the old one, as package managers and cp --remove do).
  await writeFile(join(root, 'sub', 'initrd.new'), 'initrd two, longer')
  await rename(join(root, 'sub', 'initrd.new'), join(root, 'sub', 'initrd'))
  const initrd = await until(t, () => confined.resolve('sub/initrd'), (f) => f?.stats.size === 18, (f) => f !== undefined && f.path.startsWith(real))
  t.equal(initrd?.stats.size, 18, 'the new file\'s size is served')
  t.equal(await readFile(initrd!.path, 'utf8'), 'initrd two, longer')

  // A file rewritten in place (same inode: new size and mtime).
  await writeFile(join(root, 'sub', 'initrd'), 'three')
  const rewritten = await until(t, () => confined.resolve('sub/initrd'), (f) => f?.stats.size === 5, (f) => f !== undefined && f.path.startsWith(real))
  t.equal(rewritten?.stats.size, 5, 'a rewrite in place is seen')

  // A directory symlink swapped to another tree inside the root (ln -sfn v2 current).
  await symlink('v2', join(root, 'current.new'))
  await rename(join(root, 'current.new'), join(root, 'current'))
  t.equal(
    await until(t, () => outcome(confined, 'current/kernel'), (v) => v.startsWith('kernel two'), notOutside),
    `kernel two@${join(real, 'v2', 'kernel')}`,
    'the swapped directory link is followed to the new tree',
  )

  // The same link swapped to point out of the root: refused from then on, never the file outside.
  await symlink(join(dir, 'outside'), join(root, 'current.new'))
  await rename(join(root, 'current.new'), join(root, 'current'))
  await writeFile(join(dir, 'outside', 'kernel'), 'top secret kernel')
  t.equal(await until(t, () => outcome(confined, 'current/kernel'), (v) => v === 'refused', notOutside), 'refused', 'a link swapped to lead out is refused')

  // A file symlink swapped to lead out, and a plain folder replaced by a symlink leading out.
  await symlink(join(dir, 'outside', 'secret.txt'), join(root, 'inside-link.new'))
  await rename(join(root, 'inside-link.new'), join(root, 'inside-link.bin'))
  t.equal(await until(t, () => outcome(confined, 'inside-link.bin'), (v) => v === 'refused', notOutside), 'refused', 'a file link swapped to lead out is refused')
  t.equal(await outcome(confined, 'sub/initrd'), `three@${join(real, 'sub', 'initrd')}`, 'filled again')
  await rename(join(root, 'sub'), join(root, 'sub.old'))
  await writeFile(join(dir, 'outside', 'initrd'), 'top secret initrd')
  await symlink(join(dir, 'outside'), join(root, 'sub'))
  t.equal(await until(t, () => outcome(confined, 'sub/initrd'), (v) => v === 'refused', notOutside), 'refused', 'a folder replaced by a link leading out is refused')

  // A deleted file is gone.
  await rm(join(root, 'v2', 'kernel'))
  await symlink('v2', join(root, 'current.new'))
  await rename(join(root, 'current.new'), join(root, 'current'))
  t.equal(await until(t, () => outcome(confined, 'current/kernel'), (v) => v === 'not-found', notOutside), 'not-found', 'a deleted file is not found')
})

t.test('with cacheFiles: close() releases the watches, and the cache stays within its bound', async (t) => {
  const root = t.testdir(Object.fromEntries(Array.from({ length: 10 }, (_, i) => [`f${i}`, String(i)])))
  const before = inotifyWatches()
  const confined = createConfinedRoot(root, { cacheFiles: 4 })
  const first = []
  for (let i = 0; i < 10; i++) first.push(await confined.resolve(`f${i}`))
  t.equal(await confined.resolve('f9'), first[9], 'a recent file is a hit')
  t.not(await confined.resolve('f0'), first[0], 'the least recently used files were dropped: f0 is resolved again')
  t.ok(inotifyWatches() > before, 'the remembered files are watched')
  confined.close()
  t.equal(inotifyWatches(), before, 'close() removed every watch it had set')
  await writeFile(join(root, 'f9'), 'changed')
  t.equal((await confined.resolve('f9'))?.stats.size, 7, 'after close() every lookup resolves afresh')
})

t.test('open(): the descriptor is the file confined, even when its path changed after the cache filled', async (t) => {
  const dir = t.testdir({ outside: { kernel: 'top secret kernel' }, root: { sub: { kernel: 'kernel one' } } })
  const root = join(dir, 'root')
  const confined = createConfinedRoot(root, { cacheFiles: 16 })
  t.teardown(() => confined.close())
  const read = async () => {
    const opened = await confined.open('sub/kernel')
    if (opened === undefined) return 'not-found'
    try {
      const text = await opened.handle.readFile('utf8')
      t.equal(opened.file.stats.size, Buffer.byteLength(text), 'the size answered is the size of the bytes read')
      return text
    } finally {
      await opened.handle.close()
    }
  }
  t.equal(await read(), 'kernel one')
  t.equal(await read(), 'kernel one', 'from the cache')
  // No pause after either change: whether or not a watch has reported it yet, the remembered real path now names
  // another file, and the descriptor's inode says so.
  await writeFile(join(root, 'sub', 'kernel.new'), 'kernel two!')
  await rename(join(root, 'sub', 'kernel.new'), join(root, 'sub', 'kernel'))
  t.equal(await read(), 'kernel two!', 'a file replaced: the new file, at once')
  await rename(join(root, 'sub'), join(root, 'sub.old'))
  await symlink(join(dir, 'outside'), join(root, 'sub'))
  await t.rejects(read(), ConfinementError, 'the folder replaced by a link leading out: refused at once, nothing read from outside')
  await rm(join(root, 'sub'))
  t.equal(await read(), 'not-found', 'a removed folder: not found')
})
