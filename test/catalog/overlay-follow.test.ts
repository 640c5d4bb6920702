/**
 * catalog/overlay-follow.ts over the embedded store (any Store follows the same way; the two-daemon etcd test is
 * test/catalog/shared.test.ts): a group another writer puts in the store is served, a delete removed, config.yaml's
 * own id is not replaced, a bad document is refused with its reason, a watch from compacted history re-lists, and a
 * change that does not load yet (a profile before its file) is held until it does, or until a newer one replaces it.
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

t.test('a change that does not load yet is held until it does; a newer change of the entry replaces it', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'pxebox-follow-hold-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const store = await openSqliteStore({ file: join(dir, 'pxebox.db') })
  t.teardown(() => store.close())
  const catalog = await openCatalog({ sources: base, store, logger: silentLogger, follow: true })
  t.teardown(() => catalog.close())
  const profile = (id: string) => catalog.store.get().profiles.get(id)
  const ign = '{"ignition":{"version":"3.4.0"}}'

  // A group before its profile, the profile before its file (separate watches deliver them in any order).
  await store.put('group', 'hg', { id: 'hg', profile: 'hp', selector: { serial: 'H1' } })
  await store.put('profile', 'hp', { id: 'hp', boot: { kernel: '/assets/k' }, ignition: 'h.ign' })
  await store.put('profile', 'stale', { id: 'stale', boot: { kernel: '/assets/k' }, ignition: 'never.ign' })
  await new Promise((r) => setTimeout(r, 100))
  t.equal(profile('hp'), undefined, 'not served while its file is missing')
  // A newer version of "stale" that loads replaces the held one: the file arriving later must not bring it back.
  await store.put('profile', 'stale', { id: 'stale', boot: { kernel: '/assets/stale-2' } })
  await until(() => profile('stale') !== undefined, 'the newer stale profile is served')
  await store.put('ignition', 'h.ign', { name: 'h.ign', text: ign })
  await until(() => catalog.store.get().group('hg') !== undefined, 'the held profile, then the held group, load once the file arrives')
  t.equal(profile('hp')?.ignition, 'h.ign')
  await store.put('ignition', 'never.ign', { name: 'never.ign', text: ign })
  await until(() => catalog.overlay.has('ignition', 'never.ign'), 'the second file is followed')
  await new Promise((r) => setTimeout(r, 100))
  t.equal(profile('stale')?.ignition, undefined, 'the replaced held version was dropped, not applied after the newer one')
  t.equal(profile('stale')?.boot?.kernel, '/assets/stale-2')

  // A file a served profile takes cannot go while it does: the delete is held until the profile stops naming it.
  await store.delete('ignition', 'h.ign')
  await new Promise((r) => setTimeout(r, 100))
  t.equal(catalog.overlay.has('ignition', 'h.ign'), true, 'the file stays while profile hp takes it')
  t.equal(catalog.store.get().templates.size > 0, true)
  await store.put('profile', 'hp', { id: 'hp', boot: { kernel: '/assets/k' } })
  await until(() => !catalog.overlay.has('ignition', 'h.ign'), 'the held delete applies once nothing names the file')
})
