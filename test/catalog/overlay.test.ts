import t from 'tap'
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { openCatalog } from '../../src/catalog/catalog.js'
import type { BootStateOptions } from '../../src/catalog/state.js'
import { silentLogger } from '../../src/host/log.js'

const base: BootStateOptions = {
  profiles: { live: { boot: { kernel: '/assets/k' } } },
  groups: [{ id: 'default', profile: 'live' }],
}

t.test('overlay files load at start, bad ones are reported and skipped, never fatal', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'pxebox-overlay-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  await mkdir(join(dir, 'groups'), { recursive: true })
  await mkdir(join(dir, 'profiles'), { recursive: true })
  await writeFile(join(dir, 'profiles', 'rescue.json'), JSON.stringify({ id: 'rescue', boot: { kernel: '/assets/r' }, boot_once: true }))
  await writeFile(join(dir, 'groups', 'g1.json'), JSON.stringify({ id: 'g1', profile: 'rescue', selector: { serial: 'S1' } }))
  await writeFile(join(dir, 'groups', 'torn.json'), '{"id":')
  await writeFile(join(dir, 'groups', 'other.json'), JSON.stringify({ id: 'not-other', profile: 'live' }))
  await writeFile(join(dir, 'groups', 'typo.json'), JSON.stringify({ id: 'typo', profile: 'live', selectors: {} }))
  const { store, overlay, close } = await openCatalog({ sources: base, overlayDir: dir, logger: silentLogger })
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
})

t.test('an overlay that no longer loads with the config: start on the config alone', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'pxebox-overlay-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  await mkdir(join(dir, 'groups'), { recursive: true })
  // The API wrote a group naming a profile that a later config.yaml no longer has.
  await writeFile(join(dir, 'groups', 'g1.json'), JSON.stringify({ id: 'g1', profile: 'gone', selector: { serial: 'S1' } }))
  const { store, overlay, close } = await openCatalog({ sources: base, overlayDir: dir, logger: silentLogger })
  t.teardown(close)
  t.same(store.get().groups.map((g) => g.id), ['default'])
  const bad = await overlay.putGroup({ id: '.hidden', profile: 'live' })
  t.same(bad.ok ? 0 : bad.status, 422, 'ids that would be dot-files are refused')
})
