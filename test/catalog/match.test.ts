import t from 'tap'
import { buildMatcher } from '../../src/catalog/match.js'
import { groupFromConfig, type Group } from '../../src/catalog/model.js'
import { labelsFromQuery, normalizeLabels, normalizeMac, normalizeUuid, swapUuidByteOrder } from '../../src/catalog/labels.js'
import type { GroupInput } from '../../src/catalog/model-schema.js'

function groups(inputs: GroupInput[]): Group[] {
  return inputs.map((g, i) => {
    const r = groupFromConfig(g, `config.yaml groups[${i}]`)
    if (!r.ok) throw new Error(r.errors.join('; '))
    return r.value
  })
}

t.test('MAC forms normalize to lowercase colon form', async (t) => {
  for (const form of ['52:54:00:AB:cd:EF', '52-54-00-ab-cd-ef', '52-54-00-AB-CD-EF', '5254.00ab.cdef', '525400ABCDEF', ' 52:54:00:ab:cd:ef ']) {
    t.equal(normalizeMac(form), '52:54:00:ab:cd:ef', form)
  }
  for (const bad of ['52:54:00:ab:cd', '52:54-00:ab:cd:ef', '52:54:00:ab:cd:eg', '52.54.00.ab.cd.ef', 'zz:54:00:ab:cd:ef', '52:54:00:ab:cd:ef:01', '', '5254.00ab.cdef.0101']) {
    t.equal(normalizeMac(bad), undefined, `rejects ${JSON.stringify(bad)}`)
  }
})

t.test('UUID normalization and byte-order swap', async (t) => {
  t.equal(normalizeUuid('{4C4C4544-0042-3510-8052-B4C04F4B4E32}'), '4c4c4544-0042-3510-8052-b4c04f4b4e32')
  t.equal(normalizeUuid('4C4C454400423510 8052B4C04F4B4E32'.replace(' ', '')), '4c4c4544-0042-3510-8052-b4c04f4b4e32')
  t.equal(normalizeUuid('4c4c4544-00423510-8052-b4c04f4b4e32'), undefined, 'hyphens in wrong places')
  t.equal(normalizeUuid('not-a-uuid'), undefined)
  t.equal(swapUuidByteOrder('00112233-4455-6677-8899-aabbccddeeff'), '33221100-5544-7766-8899-aabbccddeeff')
  t.equal(swapUuidByteOrder(swapUuidByteOrder('00112233-4455-6677-8899-aabbccddeeff')), '00112233-4455-6677-8899-aabbccddeeff')
})

t.test('labels from a query string', async (t) => {
  const { labels, dropped } = labelsFromQuery({ MAC: '52-54-00-12-34-56', uuid: 'ABCDEF00-1111-2222-3333-444455556666', serial: '', os: ['installed', 'x'], bad: 5 })
  t.same(labels, { mac: '52:54:00:12:34:56', uuid: 'abcdef00-1111-2222-3333-444455556666', os: 'installed' })
  t.same(dropped, [])
  const second = labelsFromQuery({ mac: 'nonsense', arch: 'x86_64' })
  t.same(second.labels, { arch: 'x86_64' })
  t.same(second.dropped, ['mac=nonsense'])
  t.same(labelsFromQuery(null).labels, {})
})

// The precedence table: each row is labels -> expected group id.
t.test('precedence table', async (t) => {
  const { matcher, errors } = buildMatcher(
    groups([
      { id: 'default', profile: 'p' },
      { id: 'x86', profile: 'p', selector: { arch: 'x86_64' } },
      { id: 'efi-x86', profile: 'p', selector: { arch: 'x86_64', platform: 'efi' } },
      { id: 'node1', profile: 'p', selector: { mac: '52:54:00:00:00:01' } },
      { id: 'node1-installed', profile: 'p', selector: { mac: '52:54:00:00:00:01', os: 'installed' } },
      { id: 'rack-a', profile: 'p', selector: { mac: ['52:54:00:00:00:0a', '52-54-00-00-00-0B', '5254.0000.000c'] } },
      { id: 'uuid-m', profile: 'p', selector: { uuid: '00112233-4455-6677-8899-AABBCCDDEEFF' } },
      { id: 'a-mac-arch', profile: 'p', selector: { mac: '52:54:00:00:00:02', arch: 'x86_64' } },
      { id: 'b-mac-os', profile: 'p', selector: { mac: '52:54:00:00:00:02', os: 'installed' } },
    ]),
  )
  t.same(errors, [])
  const table: [Record<string, string>, string | undefined][] = [
    [{}, 'default'],
    [{ arch: 'i386' }, 'default'],
    [{ arch: 'x86_64' }, 'x86'],
    [{ arch: 'x86_64', platform: 'pcbios' }, 'x86'],
    [{ arch: 'x86_64', platform: 'efi' }, 'efi-x86'],
    [{ mac: '52-54-00-00-00-01' }, 'node1'],
    [{ mac: '52:54:00:00:00:01', arch: 'x86_64', platform: 'efi' }, 'efi-x86'], // two selectors beat one
    [{ mac: '52:54:00:00:00:01', os: 'installed' }, 'node1-installed'],
    [{ mac: '52:54:00:00:00:01', os: 'installed', arch: 'x86_64', platform: 'efi' }, 'efi-x86'], // same count: id order
    [{ mac: '52:54:00:00:00:0b' }, 'rack-a'],
    [{ mac: '5254.0000.000C' }, 'rack-a'],
    [{ mac: '52:54:00:00:00:0d' }, 'default'],
    [{ uuid: '00112233-4455-6677-8899-aabbccddeeff' }, 'uuid-m'],
    [{ uuid: '33221100-5544-7766-8899-AABBCCDDEEFF' }, 'uuid-m'], // the other byte order
    [{ uuid: '33221100-4455-6677-8899-aabbccddeeff' }, 'default'], // only one field swapped: not the same machine
    [{ mac: '52:54:00:00:00:02', arch: 'x86_64', os: 'installed' }, 'a-mac-arch'], // same count, different keys: smallest id
    [{ mac: '52:54:00:00:00:02', os: 'installed' }, 'b-mac-os'],
  ]
  for (const [raw, expected] of table) {
    t.equal(matcher.match(normalizeLabels(raw))?.id, expected, JSON.stringify(raw))
  }
})

t.test('no default group: no match is undefined', async (t) => {
  const { matcher } = buildMatcher(groups([{ id: 'n', profile: 'p', selector: { mac: '52:54:00:00:00:01' } }]))
  t.equal(matcher.match(normalizeLabels({ mac: '52:54:00:00:00:02' })), undefined)
  t.equal(matcher.match({}), undefined)
})

t.test('ties are load errors', async (t) => {
  const cases: [string, GroupInput[], RegExp | undefined][] = [
    ['same mac twice', [{ id: 'a', profile: 'p', selector: { mac: '52:54:00:00:00:01' } }, { id: 'b', profile: 'p', selector: { mac: '52-54-00-00-00-01' } }], /groups "a" \(config.yaml groups\[0\]\) and "b" \(config.yaml groups\[1\]\) both match mac=52:54:00:00:00:01/],
    ['list overlaps scalar', [{ id: 'a', profile: 'p', selector: { mac: ['52:54:00:00:00:01', '52:54:00:00:00:02'] } }, { id: 'b', profile: 'p', selector: { mac: '52:54:00:00:00:02' } }], /both match mac=52:54:00:00:00:02/],
    ['uuid in the other byte order', [{ id: 'a', profile: 'p', selector: { uuid: '00112233-4455-6677-8899-aabbccddeeff' } }, { id: 'b', profile: 'p', selector: { uuid: '33221100-5544-7766-8899-aabbccddeeff' } }], /both match uuid=/],
    ['two keys overlapping on both', [{ id: 'a', profile: 'p', selector: { arch: ['x86_64', 'i386'], os: 'installed' } }, { id: 'b', profile: 'p', selector: { arch: 'i386', os: ['installed', 'live'] } }], /both match arch=i386 os=installed/],
    ['two defaults', [{ id: 'a', profile: 'p' }, { id: 'b', profile: 'p', selector: {} }], /more than one default group/],
    ['same keys, disjoint on one key', [{ id: 'a', profile: 'p', selector: { arch: 'x86_64', os: 'installed' } }, { id: 'b', profile: 'p', selector: { arch: 'x86_64', os: 'live' } }], undefined],
    ['different key sets', [{ id: 'a', profile: 'p', selector: { mac: '52:54:00:00:00:01' } }, { id: 'b', profile: 'p', selector: { mac: '52:54:00:00:00:01', os: 'installed' } }], undefined],
  ]
  for (const [name, input, expected] of cases) {
    const { errors } = buildMatcher(groups(input))
    if (expected === undefined) t.same(errors, [], name)
    else {
      t.equal(errors.length, 1, `${name}: one error`)
      t.match(errors[0], expected, name)
    }
  }
})

t.test('bad selector values are rejected with the value named', async (t) => {
  const r = groupFromConfig({ id: 'x', profile: 'p', selector: { mac: 'nope', uuid: 'also-nope', MAC2: 'a', mac2: 'b' } }, 'config.yaml groups[0]')
  t.notOk(r.ok)
  if (!r.ok) {
    t.match(r.errors.join('\n'), /config.yaml groups\[0\]: selector mac "nope" is not a MAC address/)
    t.match(r.errors.join('\n'), /selector uuid "also-nope" is not a UUID/)
    t.match(r.errors.join('\n'), /selector names "mac2" twice/)
  }
})

t.test('index: 10,000 groups, lookups correct and not scanning', async (t) => {
  const inputs: GroupInput[] = [{ id: 'default', profile: 'p' }]
  for (let i = 0; i < 10_000; i++) {
    const mac = `52:54:01:${((i >> 16) & 255).toString(16).padStart(2, '0')}:${((i >> 8) & 255).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`
    inputs.push({ id: `m${i}`, profile: 'p', selector: { mac } })
    if (i % 10 === 0) inputs.push({ id: `m${i}-installed`, profile: 'p', selector: { mac, os: 'installed' } })
  }
  const { matcher, errors } = buildMatcher(groups(inputs))
  t.same(errors, [])
  t.equal(matcher.shapeCount, 2, 'two shapes: {mac} and {mac, os}')
  t.equal(matcher.match(normalizeLabels({ mac: '52:54:01:00:27:0f' }))?.id, 'm9999')
  t.equal(matcher.match(normalizeLabels({ mac: '52:54:01:00:27:06', os: 'installed' }))?.id, 'm9990-installed')
  t.equal(matcher.match(normalizeLabels({ mac: '52:54:01:00:27:07', os: 'installed' }))?.id, 'm9991')
  t.equal(matcher.match(normalizeLabels({ mac: '52:54:02:00:00:00' }))?.id, 'default')
})

t.test('many tied groups: a bounded list of ties, found without a quadratic bucket build', async (t) => {
  // 20,000 groups with one selector: each bucket.includes() made the build quadratic, and the ties were spread into
  // push(), which overflows the argument stack for a large enough list.
  const groups: Group[] = []
  for (let i = 0; i < 20_000; i++) {
    const g = groupFromConfig({ id: `g${String(i).padStart(5, '0')}`, profile: 'p', selector: { os: 'flatcar' } } as GroupInput, 'test')
    if (!g.ok) throw new Error(g.errors.join('; '))
    groups.push(g.value)
  }
  const { errors } = buildMatcher(groups)
  t.equal(errors.length, 51, '50 ties and one line saying there are more')
  t.match(errors[50], /more groups tie on selectors os/)
})
