import t from 'tap'
import { cp, mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { openCatalog } from '../../src/catalog/catalog.js'
import type { BootStateOptions } from '../../src/catalog/state.js'
import { silentLogger } from '../../src/host/log.js'
import { storeIn } from '../helpers/store.js'

const base: BootStateOptions = {
  profiles: { live: { boot: { kernel: '/assets/k' } } },
  groups: [{ id: 'default', profile: 'live' }],
}

t.test('legacy overlay files are imported at start, bad ones are reported and skipped, never fatal', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'pxebox-overlay-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  await mkdir(join(dir, 'groups'), { recursive: true })
  await mkdir(join(dir, 'profiles'), { recursive: true })
  await writeFile(join(dir, 'profiles', 'rescue.json'), JSON.stringify({ id: 'rescue', boot: { kernel: '/assets/r' }, boot_once: true }))
  await writeFile(join(dir, 'groups', 'g1.json'), JSON.stringify({ id: 'g1', profile: 'rescue', selector: { serial: 'S1' } }))
  await writeFile(join(dir, 'groups', 'torn.json'), '{"id":')
  await writeFile(join(dir, 'groups', 'other.json'), JSON.stringify({ id: 'not-other', profile: 'live' }))
  await writeFile(join(dir, 'groups', 'typo.json'), JSON.stringify({ id: 'typo', profile: 'live', selectors: {} }))
  const { store, overlay, close } = await openCatalog({ sources: base, store: await storeIn(t, dir), legacyOverlayDir: dir, logger: silentLogger })
  t.teardown(close)
  t.equal(overlay.problems.length, 3)
  t.match(overlay.problems.join('\n'), /torn\.json/)
  t.match(overlay.problems.join('\n'), /other\.json: id "not-other" does not match the file name/)
  t.match(overlay.problems.join('\n'), /typo\.json/)
  t.equal(store.get().match({ serial: 'S1' })?.profile.id, 'rescue')
  t.equal(store.get().profiles.get('rescue')?.bootOnce, true)
  t.ok(overlay.has('group', 'g1'))
  t.notOk(overlay.has('group', 'default'))
  t.ok((await readdir(join(dir, 'groups'))).some((n) => n.startsWith('torn.json.corrupt-')), 'torn file moved aside')
  t.same((await readdir(join(dir, 'groups'))).filter((n) => !n.includes('corrupt')).sort(), ['g1.json.migrated', 'other.json', 'typo.json'], 'imported files kept as .migrated, refused ones left for the operator')
  t.same(await readdir(join(dir, 'profiles')), ['rescue.json.migrated'])
})

t.test('the boot/ folder of the previous release migrates; API writes then live in the store, across a restart', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'pxebox-overlay-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  await cp(new URL('../fixtures/data-dir-v1/boot', import.meta.url), join(dir, 'boot'), { recursive: true })
  const first = await openCatalog({ sources: base, store: await storeIn(t, dir), legacyOverlayDir: join(dir, 'boot'), logger: silentLogger })
  t.same(first.overlay.problems, [])
  t.equal(first.store.get().match({ mac: '52:54:00:00:0a:07' })?.group.id, 'node-7', 'a migrated group matches')
  t.same(first.store.get().groups.find((g) => g.id === 'node-7')?.metadata, { hostname: 'node-7' })
  t.equal(first.store.get().match({ serial: 'SN-1' })?.profile.id, 'worker')
  t.same((await first.overlay.putGroup({ id: 'node-8', profile: 'worker', selector: { mac: '52:54:00:00:0a:08' } })).ok, true)
  t.same((await first.overlay.remove('group', 'rack1.assigned')).ok, true)
  first.close()
  t.same((await readdir(join(dir, 'boot', 'groups'))).sort(), ['node-7.json.migrated', 'rack1.assigned.json.migrated'], 'no new file written; old ones kept')
  const again = await openCatalog({ sources: base, store: await storeIn(t, dir), legacyOverlayDir: join(dir, 'boot'), logger: silentLogger })
  t.teardown(again.close)
  t.same(again.store.get().groups.map((g) => g.id).sort(), ['default', 'node-7', 'node-8'], 'the API write and delete survived the restart')
  t.ok(again.overlay.has('group', 'node-8'))
})

t.test('an overlay that no longer loads with the config: start on the config alone', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'pxebox-overlay-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  await mkdir(join(dir, 'groups'), { recursive: true })
  // The API wrote a group naming a profile that a later config.yaml no longer has.
  await writeFile(join(dir, 'groups', 'g1.json'), JSON.stringify({ id: 'g1', profile: 'gone', selector: { serial: 'S1' } }))
  const { store, overlay, close } = await openCatalog({ sources: base, store: await storeIn(t, dir), legacyOverlayDir: dir, logger: silentLogger })
  t.teardown(close)
  t.same(store.get().groups.map((g) => g.id), ['default'])
  const bad = await overlay.putGroup({ id: '.hidden', profile: 'live' })
  t.same(bad.ok ? 0 : bad.status, 422, 'ids that would be dot-files are refused')
})

t.test('when API groups do not load at start, config.yaml starts alone but keeps the API-written files it names', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'pxebox-overlay-files-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const data = await storeIn(t, dir)
  await data.put('group', 'orphan', { id: 'orphan', profile: 'removed-from-config', selector: { serial: 'O1' } })
  await data.put('ignition', 'c.ign', { name: 'c.ign', text: '{"ignition":{"version":"3.4.0"}}' })
  const sources: BootStateOptions = { ...base, profiles: { ...base.profiles, c: { ignition: 'c.ign' } }, groups: [...base.groups, { id: 'cg', profile: 'c', selector: { serial: 'C1' } }] }
  const { store, close } = await openCatalog({ sources, store: data, logger: silentLogger })
  t.teardown(close)
  t.equal(store.get().group('orphan'), undefined, 'the API group that does not load is left out')
  t.equal(store.get().match({ serial: 'C1' })?.profile.id, 'c', "config.yaml's profile naming the API-written file is served")
  t.equal(store.get().templates.get('ignition:c'), '{"ignition":{"version":"3.4.0"}}')
})

t.test('a file write is refused for a name ignition_dir or the Matchbox folder has (the local file wins)', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'pxebox-overlay-local-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  for (const d of ['ign', 'mb/ignition', 'mb/groups', 'mb/profiles']) await mkdir(join(dir, d), { recursive: true })
  await writeFile(join(dir, 'ign', 'a.ign'), '{"ignition":{"version":"3.4.0"}}')
  await writeFile(join(dir, 'mb', 'ignition', 'b.ign'), '{"ignition":{"version":"3.4.0"}}')
  const { overlay, close } = await openCatalog({ sources: { ...base, ignitionDir: join(dir, 'ign'), matchboxDir: join(dir, 'mb') }, store: await storeIn(t, dir), logger: silentLogger })
  t.teardown(close)
  const text = '{"ignition":{"version":"3.4.0"}}'
  for (const name of ['a.ign', 'b.ign']) {
    const r = await overlay.putFile('ignition', name, text)
    t.match(r, { ok: false, status: 409 }, `${name}: refused`)
  }
  t.match(await overlay.putFile('ignition', 'c.ign', text), { ok: true }, 'a name neither has is written')
  t.equal(overlay.file('ignition', 'c.ign'), text)
})
