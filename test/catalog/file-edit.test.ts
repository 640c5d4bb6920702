/**
 * An API-written file's edit (BootStore.editFile, catalog/file-editor.ts): the file alone is prepared and only the
 * groups whose profile takes it from the store are checked; the index is not rebuilt. Its answers match a full load
 * over the same sources: the served Ignition, the warnings of groups missing a key, the refusal of a bad file. A
 * profile that reads a file of the same name from its own directory keeps it.
 */
import t from 'tap'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { loadBootState, templateKey, type BootSources } from '../../src/catalog/state.js'
import { createBootStore } from '../../src/catalog/boot-store.js'

const bu = (line: string) => `variant: fcos\nversion: 1.5.0\nstorage:\n  files:\n    - path: /etc/motd\n      contents:\n        inline: ${line}\n`

t.test('a shared file edit swaps only what uses it, with a full load’s warnings and errors', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'pxebox-file-edit-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  // The local directory has its own site.bu; profile "local" reads it, "api" takes the shared one (only config
  // profiles read ignition_dir, and both are config profiles here: "api" names a file the directory lacks).
  await writeFile(join(dir, 'site.bu'), bu('local'))
  const shared = new Map([['api.bu', bu('one')]])
  const source = (kind: string, name: string) => `API (test) ${kind}/${name}`
  const sources = (files: Map<string, string>): BootSources => ({
    profiles: { api: { ignition: 'api.bu' }, local: { ignition: 'site.bu' } },
    groups: [
      ...Array.from({ length: 300 }, (_, i) => ({ id: `a${i}`, profile: 'api', selector: { mac: `52:54:00:00:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}` }, ...(i % 100 === 0 ? {} : { metadata: { role: 'w' } }) })),
      { id: 'l1', profile: 'local', selector: { mac: '52:54:00:11:00:01' } },
    ],
    ignitionDir: dir,
    sharedFiles: { ignition: files, generic: new Map(), source },
  })
  const store = await createBootStore({ ...sources(shared), watch: false })
  t.teardown(() => store.close())
  const before = store.get()
  const apiKey = templateKey('ignition', before.profiles.get('api')!)
  const localKey = templateKey('ignition', before.profiles.get('local')!)

  // A template whose key only some groups provide: the warnings must be a full load's, for exactly those groups.
  const text = bu('{{ .role }}')
  let committed = 0
  const next = new Map([['api.bu', text]])
  const edited = await store.editFile('ignition', 'api.bu', text, sources(next), async () => void committed++)
  const full = await loadBootState(sources(next))
  t.ok(edited.ok && full.ok, 'both load')
  if (!edited.ok || !full.ok) return
  t.equal(committed, 1, 'the caller’s write ran')
  t.same(edited.warnings.sort(), full.warnings.sort(), 'the warnings of a full load')
  t.equal(edited.warnings.length, 3, 'the three groups without the key')
  const after = store.get()
  t.equal(after.matcher, before.matcher, 'the index is the same object: not rebuilt')
  t.equal(after.templates.get(apiKey), text)
  t.equal(after.templates.get(localKey), bu('local'), 'the profile reading its own directory keeps its file')
  t.equal(after.ignition.get(localKey), before.ignition.get(localKey))
  t.not(after.ignition.get(apiKey), before.ignition.get(apiKey))
  t.same(after.ignition.get(apiKey), full.state.ignition.get(apiKey), 'prepared as a full load prepares it')

  // A group edit after the file edit checks against the new file (the editor was rebuilt over it).
  const g = await store.editGroups([{ id: 'a1', group: { ...after.group('a1')!, metadata: {} } }])
  t.match(g.warnings.join('\n'), /role/, 'a later group edit is checked against the new file')

  const bad = await store.editFile('ignition', 'api.bu', 'variant: fcos\nversion: 1.5.0\nstorage:\n  files:\n    - path: relative\n', undefined, async () => void committed++)
  t.notOk(bad.ok)
  if (!bad.ok) t.match(bad.errors.join('\n'), /API \(test\) ignition\/api\.bu.*relative.*\(ignition of config\.yaml profiles\.api\)/)
  t.equal(committed, 1, 'a refused file is not written')
  t.equal(store.get().templates.get(apiKey), text, 'and not served')

  const gone = await store.editFile('ignition', 'api.bu', undefined)
  t.notOk(gone.ok, 'a file a served profile takes cannot be deleted')
  const unused = await store.editFile('ignition', 'site.bu', bu('x'))
  t.ok(unused.ok, 'a shared file no profile takes from the store changes nothing served')
  t.equal(store.get().templates.get(localKey), bu('local'))
})
