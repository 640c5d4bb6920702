/**
 * Issue 16: the load checks each group against its templates without a trial render per group (a render runs once
 * per template and data shape), and still reports what the per-group check reported, with the same text: each group
 * missing a key, and each group whose trial render fails. The reference is the per-group check the loader ran
 * before (checkIgnitionForGroup for every group, lintTemplate for generic files), computed here group by group.
 */
import t from 'tap'
import { join } from 'node:path'
import { loadBootState } from '../../src/catalog/state.js'
import { checkIgnitionForGroup, formatIgnitionError, lintTemplate, parseTemplate, prepareIgnitionSource } from '../../src/ignition/index.js'
import type { GroupInput } from '../../src/catalog/model-schema.js'

const BUTANE = [
  'variant: fcos',
  'version: 1.5.0',
  'storage:',
  '  files:',
  '    - path: /etc/hostname',
  '      mode: {{ .mode }}',
  '      contents:',
  '        inline: {{ .hostname }}',
  '{{ if .motd }}',
  '    - path: /etc/motd',
  '      contents:',
  '        inline: {{ .motd }}',
  '{{ end }}',
  '',
].join('\n')
const GENERIC = 'HOST={{ .hostname }}\nROLE={{ .role }}\n'

/** 300 groups in five kinds: good, lacking a key, a mode of the wrong type (its render fails), with/without motd. */
function groupInputs(): GroupInput[] {
  const out: GroupInput[] = []
  for (let i = 0; i < 300; i++) {
    const mac = `52:54:00:00:${String(Math.floor(i / 256)).padStart(2, '0')}:${(i % 256).toString(16).padStart(2, '0')}`
    const metadata: Record<string, unknown> = { hostname: `n${i}`, mode: 420, role: 'worker' }
    if (i % 5 === 1) delete metadata['hostname']
    if (i % 5 === 2) metadata['mode'] = 'rw'
    if (i % 5 === 3) metadata['motd'] = `hello ${i}`
    if (i % 7 === 0) delete metadata['role']
    out.push({ id: `g${String(i).padStart(3, '0')}`, profile: 'p', selector: { mac }, metadata })
  }
  return out
}

t.test('missing keys and failed trial renders: one warning per group, the per-group check\'s text', async (t) => {
  const dir = t.testdir({ 'node.bu': BUTANE, 'env.txt': GENERIC })
  const groups = groupInputs()
  const r = await loadBootState({ profiles: { p: { ignition: 'node.bu', generic: 'env.txt' } }, groups, ignitionDir: dir, genericDir: dir })
  if (!r.ok) throw new Error(r.errors.join('\n'))

  // The reference: every group checked alone, in the loader's order (groups by id) and format.
  const prepared = await prepareIgnitionSource({ file: join(dir, 'node.bu'), text: BUTANE })
  const parsed = parseTemplate(GENERIC)
  if (!prepared.ok || !parsed.ok) throw new Error('fixture templates do not parse')
  const expected: string[] = []
  for (const [i, g] of groups.entries()) {
    const source = `config.yaml groups[${i}]`
    const selector = { mac: (g.selector as { mac: string }).mac }
    const metadata = g.metadata ?? {}
    for (const e of await checkIgnitionForGroup(prepared.prepared, { metadata, selector, id: g.id })) expected.push(`${formatIgnitionError(e)} (${source}, profile "p")`)
    for (const m of lintTemplate(parsed.template, metadata, selector)) {
      expected.push(`${join(dir, 'env.txt')}:${m.line}:${m.col}: template references ${m.key}, which group "${g.id}" metadata and selector do not provide (${source}, profile "p")`)
    }
  }
  t.ok(expected.some((w) => /template references \.hostname/.test(w)), 'the fixture has missing keys')
  t.ok(expected.some((w) => /rendered for group "g002": expected an integer, got "rw"/.test(w)), 'and failed renders')
  t.same(r.warnings, expected)
  t.equal(r.warnings.filter((w) => /rendered for group/.test(w)).length, 60, 'each of the 60 groups whose mode is "rw" is named')
})

t.test('a data shape that checked clean is skipped, and missing keys are still found as the per-group lint finds them', async (t) => {
  // Nested keys, null values, a value of the wrong kind, references guarded by `if`, request references, and
  // metadata named `request` (the template's `.request` is the machine's, never the group's).
  const text = '{{ .net.ip }} {{ if .extra }}{{ .extra.name }}{{ end }} {{ .request.query.mac }} {{ .request.raw_query }} {{ .opt }}\n'
  const kinds: Record<string, unknown>[] = [
    { net: { ip: '10.0.0.1' }, opt: 1 },
    { net: { ip: null }, opt: 1 },
    { net: 'flat', opt: 1 },
    { net: { ip: '10.0.0.2' }, extra: {}, opt: 0 },
    { net: { ip: '10.0.0.3' }, extra: { other: 1 }, request: { query: { mac: 'x' } } },
    { net: { ip: '10.0.0.4' }, opt: null },
    { net: { ip: '10.0.0.5' }, extra: { name: 'n' }, opt: 'o' },
  ]
  const groups: GroupInput[] = []
  for (let i = 0; i < 70; i++) {
    const mac = `52:54:00:00:01:${i.toString(16).padStart(2, '0')}`
    groups.push({ id: `h${String(i).padStart(2, '0')}`, profile: 'p', selector: { mac }, metadata: structuredClone(kinds[i % kinds.length]!) })
  }
  const dir = t.testdir({ 'env.txt': text })
  const r = await loadBootState({ profiles: { p: { generic: 'env.txt' } }, groups, genericDir: dir })
  if (!r.ok) throw new Error(r.errors.join('\n'))
  const parsed = parseTemplate(text)
  if (!parsed.ok) throw new Error('fixture template does not parse')
  const expected: string[] = []
  for (const [i, g] of groups.entries()) {
    for (const m of lintTemplate(parsed.template, g.metadata ?? {}, { mac: (g.selector as { mac: string }).mac })) {
      expected.push(`${join(dir, 'env.txt')}:${m.line}:${m.col}: template references ${m.key}, which group "${g.id}" metadata and selector do not provide (config.yaml groups[${i}], profile "p")`)
    }
  }
  t.equal(expected.length, 40, 'kinds 1, 2, 4 and 5 each miss one key (.net.ip or .opt; .extra.name is guarded): 4 x 10 groups')
  t.same(r.warnings, expected)
})
