/**
 * catalog/overlay-follow.ts over the embedded store (any Store follows the same way; the two-daemon etcd test is
 * test/catalog/shared.test.ts): a group another writer puts in the store is served, a delete removed, config.yaml's
 * own id is not replaced, a bad document is refused with its reason, and a watch from compacted history re-lists.
 */
import t from 'tap'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { openCatalog } from '../../src/catalog/catalog.js'
import { followOverlay } from '../../src/catalog/overlay-follow.js'
import type { BootStateOptions } from '../../src/catalog/state.js'
import { silentLogger } from '../../src/host/log.js'
import { openSqliteStore } from '../../src/store/index.js'

const base: BootStateOptions = {
  profiles: { live: { boot: { kernel: '/assets/k' } } },
  groups: [{ id: 'default', profile: 'live' }],
}

async function until(fn: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 200 && !fn(); i++) await new Promise((r) => setTimeout(r, 10))
  if (!fn()) throw new Error(`not within 2 s: ${what}`)
}

t.test('changes written by another writer are followed; config.yaml wins; compacted history re-lists', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'pxebox-follow-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const store = await openSqliteStore({ file: join(dir, 'pxebox.db'), history: 100 })
  t.teardown(() => store.close())
  const catalog = await openCatalog({ sources: base, store, logger: silentLogger, follow: true })
  t.teardown(() => catalog.close())
  const groups = () => catalog.store.get().groups.map((g) => g.id)

  await store.put('group', 'remote', { id: 'remote', profile: 'live', selector: { serial: 'S1' } })
  await until(() => groups().includes('remote'), 'the remote group is served')
  t.equal(catalog.overlay.has('group', 'remote'), true)
  await store.put('group', 'default', { id: 'default', profile: 'live', selector: { serial: 'S2' } })
  await store.put('profile', 'remote-p', { id: 'remote-p', boot: { kernel: '/assets/other' } })
  await until(() => catalog.store.get().profiles.has('remote-p'), 'the remote profile is served')
  t.same(catalog.store.get().group('default')?.selector, {}, "config.yaml's own default group is not replaced")
  await store.put('group', 'broken', { id: 'broken', profile: 'no-such-profile' })
  await store.put('group', 'misnamed', { id: 'other-id', profile: 'live' })
  await store.delete('group', 'remote')
  await until(() => !groups().includes('remote'), 'the deleted group is gone')
  t.same(groups().sort(), ['default'], 'neither a group naming a missing profile nor a misnamed one is served')

  // A follow that starts from history the store no longer has: it lists both kinds again and applies them.
  catalog.close()
  await store.delete('group', 'broken')
  const later = await openCatalog({ sources: base, store, logger: silentLogger })
  t.teardown(() => later.close())
  await store.put('profile', 'late-p', { id: 'late-p', boot: { kernel: '/assets/late' } })
  await store.put('group', 'late', { id: 'late', profile: 'late-p', selector: { serial: 'S3' } })
  for (let i = 0; i < 300; i++) await store.put('filler', `f${i}`, i)
  const follow = followOverlay(store, later.overlay, 1, silentLogger)
  t.teardown(() => follow.close())
  await until(() => later.store.get().groups.some((g) => g.id === 'late'), 'the re-list applied the profile and group written before')
  t.ok(follow.revision() >= 300, `applied up to the re-list's revision (${follow.revision()})`)
})
