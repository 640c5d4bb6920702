/**
 * Changing single groups of a loaded catalog (issue 16): an API group write or one changed Matchbox group file is
 * checked against the loaded state with the errors and warnings a full load would give it, and only its index
 * entries change. Also the index build of a full load, in slices.
 */
import type { Group, Profile } from './model.js'
import { groupFromMatchbox } from './model.js'
import { buildMatcher, type MatchIndex } from './match.js'
import { matchboxValidators, readMatchboxFile } from './matchbox-dir.js'
import type { TemplateChecker } from './templates.js'
import type { Slicer } from './slices.js'

/** A group change: `group` replaces (or adds) the group `id`; without it the group is deleted. */
export interface GroupChange {
  readonly id: string
  readonly group?: Group
}

/** Changes single groups of one loaded state. */
export interface GroupEditor {
  /** The errors and warnings a full load would report for the changed groups. The state is left as it was. */
  check(changes: readonly GroupChange[]): Promise<{ errors: string[]; warnings: string[] }>
  /** Apply checked changes (synchronous: no request sees half of them). */
  apply(changes: readonly GroupChange[]): void
  /** The group a Matchbox file defines, by its path. */
  bySource(path: string): Group | undefined
}

/** The match index of a full load, built in slices: a first part at once, then the rest added group by group. */
export async function buildMatcherSliced(list: readonly Group[], slicer: Slicer): Promise<{ matcher: MatchIndex; errors: string[] }> {
  // buildMatcher over 100,000 groups takes ~150 ms on the 2-core build machine: too long for one slice. Adding to an
  // index costs what building it does and reports the same ties, each once (capped as buildMatcher caps them).
  const PART = 2000
  if (list.length <= PART) return buildMatcher(list)
  const first = buildMatcher(list.slice(0, PART))
  const errors = first.errors
  let ties = 0
  for (let i = PART; i < list.length; i++) {
    if (i % 256 === 0) {
      const y = slicer.slice()
      if (y) await y
    }
    for (const e of first.matcher.add(list[i]!)) {
      if (ties++ < MAX_TIES_AFTER_FIRST_PART) errors.push(e)
      else if (ties === MAX_TIES_AFTER_FIRST_PART + 1) errors.push(`more groups tie; the first ${MAX_TIES_AFTER_FIRST_PART} further ties are listed above`)
    }
  }
  return { matcher: first.matcher, errors }
}

/** Past this many ties the config is plainly broken and listing more only costs time (as in match.ts). */
const MAX_TIES_AFTER_FIRST_PART = 50

/** The editor of one loaded state; `invalidate` drops the state's sorted group list. */
export function groupEditor(
  groups: Map<string, Group>,
  index: MatchIndex,
  checker: TemplateChecker,
  profiles: ReadonlyMap<string, Profile>,
  groupErrors: (g: Group) => readonly string[],
  invalidate: () => void,
): GroupEditor {
  // Swap each changed group in (or out); returns the undo. Synchronous, so no request sees a trial.
  const swap = (changes: readonly GroupChange[], onAdd: (g: Group) => void): (() => void) => {
    const old = changes.map((c) => groups.get(c.id))
    for (const c of changes) if (index.remove(c.id)) groups.delete(c.id)
    for (const c of changes) {
      if (c.group === undefined) continue
      groups.set(c.group.id, c.group)
      onAdd(c.group)
    }
    return () => {
      for (const c of changes) if (c.group !== undefined && index.remove(c.group.id)) groups.delete(c.group.id)
      for (const g of old) {
        if (g === undefined) continue
        groups.set(g.id, g)
        index.add(g)
      }
    }
  }
  return {
    async check(changes) {
      const errors: string[] = []
      const warnings: string[] = []
      // In a full load's order: duplicates, each group's own errors, then ties; a duplicate is never indexed.
      for (const c of changes) {
        const g = c.group
        if (g === undefined) continue
        if (g.id !== c.id) errors.push(`group "${g.id}" given as a change of group "${c.id}"`)
        const prior = groups.get(g.id)
        if (prior !== undefined && prior.source !== g.source && !changes.some((o) => o.id === g.id && o.group === undefined)) {
          // In a full load's order: config.yaml, then API-written entries, then Matchbox files.
          const [a, b] = g.source.startsWith('API (') ? [g, prior] : [prior, g]
          errors.push(`group "${g.id}" is defined twice: ${a.source} and ${b.source}`)
        }
      }
      if (errors.length > 0) return { errors, warnings }
      for (const c of changes) if (c.group !== undefined) errors.push(...groupErrors(c.group))
      const undo = swap(changes, (g) => errors.push(...index.add(g)))
      undo()
      if (errors.length > 0) return { errors, warnings }
      for (const c of changes) {
        const p = c.group === undefined ? undefined : profiles.get(c.group.profile)
        if (p !== undefined) warnings.push(...(await checker.check(c.group!, p)))
      }
      return { errors, warnings }
    },
    apply(changes) {
      swap(changes, (g) => index.add(g))
      invalidate()
    },
    bySource(path) {
      for (const g of groups.values()) if (g.source === path) return g
      return undefined
    },
  }
}

/**
 * The changes a set of changed Matchbox group files make: each file read alone (a file that is gone deletes the
 * group it defined; a file whose id changed deletes the old id). A file that does not read or parse is an error
 * with the load's message, and its previous group keeps serving, as a failed full load keeps the previous state.
 */
export function groupFileChanges(paths: readonly string[], editor: Pick<GroupEditor, 'bySource'>): { changes: GroupChange[]; errors: string[] } {
  const validate = matchboxValidators().group
  const changes: GroupChange[] = []
  const errors: string[] = []
  for (const path of paths) {
    const before = editor.bySource(path)
    const read = readMatchboxFile(path, validate)
    if (!read.ok) {
      if (!read.missing) errors.push(...read.errors)
      else if (before !== undefined) changes.push({ id: before.id })
      continue
    }
    const group = groupFromMatchbox(read.file.data, path)
    if (!group.ok) {
      errors.push(...group.errors)
      continue
    }
    if (before !== undefined && before.id !== group.value.id) changes.push({ id: before.id })
    changes.push({ id: group.value.id, group: group.value })
  }
  return { changes, errors }
}
