/**
 * RRQ name normalization and the served folder on its own: symlinks, cache keyed by mtime and size, streaming of large
 * files. (Prefixes and generated files are the boot layer's: test/boot/tftp-files.test.ts.)
 */
import t from 'tap'
import { mkdir, symlink, writeFile, utimes } from 'node:fs/promises'
import { join } from 'node:path'
import { normalizeRequestPath, TftpAccessError } from '../../src/tftp/files.js'
import { createTftpFolder, folderHandler } from '../../src/tftp/folder.js'
import { randomRoot } from './lib.js'
import { inotifyWatches } from '../helpers/inotify.js'
import { until } from '../helpers/change-seen.js'

const peer = { address: '127.0.0.1', port: 1234 }

t.test('normalizeRequestPath', async (t) => {
  t.equal(normalizeRequestPath('/pxelinux.0'), 'pxelinux.0')
  t.equal(normalizeRequestPath('///a//b/./c'), 'a/b/c')
  t.equal(normalizeRequestPath('boot\\x86\\wdsnbp.com'), 'boot/x86/wdsnbp.com')
  t.equal(normalizeRequestPath('a/../b'), 'b')
  t.equal(normalizeRequestPath('/'), '')
  t.equal(normalizeRequestPath(Buffer.from('caf\u00e9', 'utf8').toString('latin1')), 'caf\u00e9', 'UTF-8 bytes on the wire')
  for (const bad of ['../x', '..', 'a/../../x', '..\\x', '\\..\\x', 'a\0b', 'a/b/../../../c']) {
    t.throws(() => normalizeRequestPath(bad), TftpAccessError, JSON.stringify(bad))
  }
})

t.test('resolution, symlinks, no prefixes', async (t) => {
  const root = await randomRoot({ 'ipxe.efi': 1000, 'big.bin': 300 })
  const outside = await randomRoot({ 'secret': 10 })
  t.teardown(async () => {
    await root.cleanup()
    await outside.cleanup()
  })
  await mkdir(join(root.dir, '52-54-00-12-34-56'))
  await writeFile(join(root.dir, '52-54-00-12-34-56', 'ipxe.efi'), 'per-machine')
  await symlink(join(outside.dir, 'secret'), join(root.dir, 'out'))
  const handler = folderHandler(createTftpFolder({ root: root.dir, cacheMaxFileBytes: 256 }))
  const get = (filename: string) => handler({ filename, peer })
  t.match(await get('/ipxe.efi'), { name: 'ipxe.efi', size: 1000 })
  const own = await get('52-54-00-12-34-56/ipxe.efi')
  t.match(own, { name: '52-54-00-12-34-56/ipxe.efi', size: 11 })
  t.notOk(own && !Buffer.isBuffer(own) && own.tags, 'the folder attaches nothing: a MAC in the path means nothing here')
  t.equal(await get('52:54:00:12:34:99/ipxe.efi'), null, 'no prefix fallback in the plain folder')
  t.equal(await get('i386/ipxe.efi'), null)
  t.equal(await get('missing'), null)
  await t.rejects(get('out'), TftpAccessError)
  await t.rejects(get('a\0b'), TftpAccessError)
  const big = await get('big.bin')
  t.ok(big && !Buffer.isBuffer(big) && !Buffer.isBuffer(big.content) && big.content.size === 300, 'above the cache size: streamed from disk')
})

t.test('cache: one read shared, refreshed when mtime or size changes, bounded', async (t) => {
  const root = await randomRoot({ 'a.bin': 100, 'b.bin': 100, 'c.bin': 100, 'd.bin': 100 })
  t.teardown(root.cleanup)
  const handler = folderHandler(createTftpFolder({ root: root.dir, cacheMaxTotalBytes: 250 }))
  const content = async (filename: string) => {
    const f = await handler({ filename, peer })
    if (!f || Buffer.isBuffer(f) || !Buffer.isBuffer(f.content)) throw new Error('expected cached content')
    return f.content
  }
  const [x, y] = await Promise.all([content('a.bin'), content('a.bin')])
  t.equal(x, y, 'concurrent requests share one buffer')
  t.equal(await content('a.bin'), x, 'a later request hits the cache')
  const before = x.toString('latin1')
  await writeFile(join(root.dir, 'a.bin'), 'changed')
  // The folder remembers a resolution until an fs.watch event on its directory drops it (host/confine.ts): an answer
  // before that is the content before the change, never anything else.
  const seen = (want: string, stale: string) => until(t, () => content('a.bin'), (d) => d.toString('latin1') === want, (d) => [want, stale].includes(d.toString('latin1')), 2000, 'an answer before the change is seen is the content before it')
  t.equal((await seen('changed', before)).toString(), 'changed', 'a changed size is re-read')
  const sameSize = Buffer.from('CHANGED')
  await writeFile(join(root.dir, 'a.bin'), sameSize)
  const future = new Date(Date.now() + 5000)
  await utimes(join(root.dir, 'a.bin'), future, future)
  t.same(await seen('CHANGED', 'changed'), sameSize, 'a changed mtime is re-read')
  const b = await content('b.bin')
  await content('c.bin')
  await content('d.bin')
  t.not(await content('b.bin'), b, 'the least recently used file was evicted to stay under the bound')
})

t.test('close(): the remembered resolutions and their watches go; the folder still serves, resolving each request', async (t) => {
  const root = await randomRoot({ 'a.bin': 100 })
  t.teardown(root.cleanup)
  const before = inotifyWatches()
  const folder = createTftpFolder({ root: root.dir })
  t.match(await folder.open('a.bin'), { name: 'a.bin', size: 100 })
  t.ok(inotifyWatches() > before, 'a file served is remembered and its folder watched')
  folder.close()
  t.equal(inotifyWatches(), before, 'close() removed the watches')
  await writeFile(join(root.dir, 'a.bin'), 'after close')
  // No watch is left to report the change, so only a fresh resolution (a new stat) can see the new size at once.
  t.match(await folder.open('a.bin'), { name: 'a.bin', size: 11 }, 'the change is seen on the next request')
  t.equal(inotifyWatches(), before, 'and a closed folder sets no new watch')
})
