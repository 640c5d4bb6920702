/**
 * host/confine.ts on its own: the shared traversal corpus (the same one the TFTP and HTTP wire tests send), the
 * lexical checks, and the root's real path resolved again at most once per recheck period.
 */
import t from 'tap'
import { mkdir, readFile, rename, symlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { ConfinementError, confinedRelativePath, createConfinedRoot } from '../../src/host/confine.js'
import { buildTraversalTree, INSIDE, TRAVERSAL_CORPUS } from '../helpers/traversal-corpus.js'

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
