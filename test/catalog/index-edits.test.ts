/**
 * Issue 16: single-group changes update only their index entries. Property-style, over seeded random edits: after
 * every edit, the incrementally kept index (and store) answers every probe as a full rebuild from the same groups
 * does, and an edit the store refuses is refused with exactly the errors a full load reports.
 */
import t from 'tap'
import { buildMatcher } from '../../src/catalog/match.js'
import { groupFromConfig, type Group } from '../../src/catalog/model.js'
import { normalizeLabels, type Labels } from '../../src/catalog/labels.js'
import type { GroupInput } from '../../src/catalog/model-schema.js'
import { loadBootState, type BootSources } from '../../src/catalog/state.js'
import { createBootStore } from '../../src/catalog/boot-store.js'
import { seededRandom } from '../helpers/seeded-random.js'

// Small value pools, so groups overlap, shapes share buckets and ties happen.
const MACS = Array.from({ length: 6 }, (_, i) => `52:54:00:00:00:0${i}`)
const UUIDS = ['00112233-4455-6677-8899-aabbccddeeff', '33221100-5544-7766-8899-aabbccddeeff', 'a0a1a2a3-b0b1-c0c1-d0d1-e0e1e2e3e4e5']
const OS = ['installed', 'live']
const ARCH = ['x86_64', 'arm64']

function randomInput(rnd: () => number, id: string, profiles: readonly string[]): GroupInput {
  const pick = <T>(list: readonly T[]): T => list[Math.floor(rnd() * list.length)]!
  const selector: Record<string, string | string[]> = {}
  if (rnd() < 0.7) selector['mac'] = rnd() < 0.2 ? [pick(MACS), pick(MACS)] : pick(MACS)
  if (rnd() < 0.25) selector['uuid'] = pick(UUIDS)
  if (rnd() < 0.3) selector['os'] = pick(OS)
  if (rnd() < 0.3) selector['arch'] = rnd() < 0.3 ? [...ARCH] : pick(ARCH)
  return { id, profile: pick(profiles), selector }
}

function group(input: GroupInput): Group {
  const r = groupFromConfig(input, `config.yaml groups[${input.id}]`)
  if (!r.ok) throw new Error(r.errors.join('; '))
  return r.value
}

/** Every label combination a machine may present. */
function probes(): Labels[] {
  const out: Labels[] = []
  for (const mac of [undefined, ...MACS])
    for (const uuid of [undefined, ...UUIDS])
      for (const os of [undefined, ...OS])
        for (const arch of [undefined, ...ARCH]) out.push(normalizeLabels({ mac, uuid, os, arch }))
  return out
}

t.test('index add/remove answers every probe as a full rebuild of the same groups', async (t) => {
  const all = probes()
  for (const seed of [1, 2, 3, 4, 5]) {
    const rnd = seededRandom(seed)
    const { matcher: index } = buildMatcher([])
    const live = new Map<string, Group>()
    for (let step = 0; step < 150; step++) {
      const id = `g${Math.floor(rnd() * 25)}`
      if (live.has(id) && rnd() < 0.4) {
        t.equal(index.remove(id), true)
        live.delete(id)
      } else {
        const g = rnd() < 0.05 ? group({ id, profile: 'p' }) : group(randomInput(rnd, id, ['p']))
        if (live.has(id)) index.remove(id)
        index.add(g)
        live.set(id, g)
      }
      const full = buildMatcher([...live.values()]).matcher
      for (const labels of all) {
        if (index.match(labels)?.id !== full.match(labels)?.id) {
          t.fail(`seed ${seed} step ${step}: ${JSON.stringify(labels)} -> ${index.match(labels)?.id} incrementally, ${full.match(labels)?.id} rebuilt`)
          return
        }
      }
      t.equal(index.size, live.size)
      t.equal(index.shapeCount, full.shapeCount, 'shapes that empty are dropped')
    }
  }
  t.equal(buildMatcher([]).matcher.remove('nothing'), false)
})

t.test('store.editGroups: same answers and same refusals as a full load, over random edits', async (t) => {
  const profiles = { p: { boot: { kernel: '/assets/p' } }, q: { boot: { kernel: '/assets/q' } } }
  const all = probes()
  for (const seed of [11, 12, 13]) {
    const rnd = seededRandom(seed)
    let inputs: GroupInput[] = []
    const sources = (): BootSources => ({ profiles, groups: inputs })
    const store = await createBootStore({ ...sources(), watch: false })
    t.teardown(() => store.close())
    let refused = 0
    for (let step = 0; step < 60; step++) {
      const id = `g${Math.floor(rnd() * 12)}`
      const i = inputs.findIndex((g) => g.id === id)
      let next: GroupInput[]
      let change: { id: string; group?: Group }
      if (i >= 0 && rnd() < 0.3) {
        next = inputs.filter((g) => g.id !== id)
        change = { id }
      } else {
        // Now and then a group naming a profile that does not exist: refused by both.
        const input = randomInput(rnd, id, rnd() < 0.1 ? ['nope'] : ['p', 'q'])
        next = i >= 0 ? inputs.map((g) => (g.id === id ? input : g)) : [...inputs, input]
        // The source a full load gives this entry (config.yaml groups[<position>]).
        const r = groupFromConfig(input, `config.yaml groups[${next.indexOf(input)}]`)
        if (!r.ok) throw new Error(r.errors.join('; '))
        change = { id, group: r.value }
      }
      // Positions shift when a group is deleted, and config.yaml sources name positions: compare on a load whose
      // sources name ids instead, as Matchbox files and API entries do.
      const full = await loadBootState({ profiles, groups: next, entrySource: (_k, gid) => `entry ${gid}` })
      const withIdSource = change.group === undefined ? change : { id, group: { ...change.group, source: `entry ${id}` } }
      const edited = await store.editGroups([withIdSource], { profiles, groups: next })
      t.equal(edited.ok, full.ok, `seed ${seed} step ${step}: both accept or both refuse`)
      if (!full.ok) {
        refused++
        t.same(edited.ok ? [] : edited.errors, full.errors, `seed ${seed} step ${step}: the full load's errors`)
        continue
      }
      inputs = next
      const state = store.get()
      for (const labels of all) {
        const a = state.match(labels)
        const b = full.state.match(labels)
        if (a?.group.id !== b?.group.id || a?.profile.id !== b?.profile.id) {
          t.fail(`seed ${seed} step ${step}: ${JSON.stringify(labels)} -> ${a?.group.id} incrementally, ${b?.group.id} loaded`)
          return
        }
      }
      t.same(state.groups.map((g) => g.id), full.state.groups.map((g) => g.id), 'the sorted group list follows the edits')
      t.equal(state.groupCount, full.state.groupCount)
    }
    t.ok(refused > 0, `seed ${seed}: some edits were refused (ties, missing profile), so refusals were compared`)
    // A reload from the sources the edits left rebuilds the same catalog.
    const reloaded = await store.reload(sources())
    t.ok(reloaded.ok)
  }
})
