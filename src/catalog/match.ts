/**
 * Group matching: which group a machine with these labels belongs to.
 *
 * Rules (Matchbox's, made unambiguous):
 * - a group matches when every selector label is present with one of the accepted values (a list means any of);
 * - the matching group with the most selector labels wins ("specific beats general");
 * - two groups with the same label names whose values overlap on every label could both match one machine with the
 *   same count: a load-time error naming both;
 * - groups with different label names of the same count can still both match (e.g. {mac, os} and {mac, arch} for a
 *   machine that sends all three): the smallest id (JavaScript string order) wins; this order is documented;
 * - at most one default group (empty selector), used when nothing else matches;
 * - a selector uuid matches both byte orders of that UUID (see labels.ts).
 *
 * Cost: groups are bucketed at load by label-name set ("shape"); each shape is indexed on its most selective label
 * (most distinct values). A lookup probes one hash bucket per shape, so it costs the number of shapes (a handful),
 * not the number of groups.
 */
import { uuidForms, type Labels } from './labels.js'
import type { Group } from './model.js'

interface Entry {
  readonly group: Group
  /** Label name -> accepted values (uuid expanded to both byte orders). */
  readonly accepted: ReadonlyMap<string, ReadonlySet<string>>
}

interface Shape {
  readonly keys: readonly string[]
  readonly indexKey: string
  readonly buckets: ReadonlyMap<string, Entry[]>
}

/** Looks groups up by labels. Immutable once built. */
export interface Matcher {
  /** The winning group for these (normalized) labels, or undefined when none matches and there is no default. */
  match(labels: Labels): Group | undefined
  /** The default group (empty selector), if any. */
  readonly defaultGroup: Group | undefined
  /** Number of distinct selector shapes: the per-lookup cost. */
  readonly shapeCount: number
}

function acceptedValues(group: Group): Map<string, Set<string>> {
  const accepted = new Map<string, Set<string>>()
  for (const [key, values] of Object.entries(group.selector)) {
    accepted.set(key, new Set(key === 'uuid' ? values.flatMap(uuidForms) : values))
  }
  return accepted
}

function describe(group: Group): string {
  return `"${group.id}" (${group.source})`
}

/** First value present in both sets, for error messages. */
function firstCommon(a: ReadonlySet<string>, b: ReadonlySet<string>): string | undefined {
  for (const v of a) if (b.has(v)) return v
  return undefined
}

/** Build the index; `errors` lists every tie and duplicate default found (the matcher is still usable for tests). */
export function buildMatcher(groups: readonly Group[]): { matcher: Matcher; errors: string[] } {
  const errors: string[] = []
  const defaults = groups.filter((g) => Object.keys(g.selector).length === 0)
  if (defaults.length > 1) {
    errors.push(`more than one default group (empty selector): ${defaults.map(describe).join(', ')}; keep one`)
  }
  const defaultGroup = [...defaults].sort((a, b) => cmp(a.id, b.id))[0]

  const byShape = new Map<string, Entry[]>()
  for (const group of groups) {
    const keys = Object.keys(group.selector).sort()
    if (keys.length === 0) continue
    const sig = keys.join('\0')
    let list = byShape.get(sig)
    if (list === undefined) byShape.set(sig, (list = []))
    list.push({ group, accepted: acceptedValues(group) })
  }

  const shapes: Shape[] = []
  for (const entries of byShape.values()) {
    const keys = Object.keys(entries[0]!.group.selector).sort()
    const indexKey = mostSelective(keys, entries)
    const buckets = new Map<string, Entry[]>()
    for (const entry of entries) {
      // A Set, not bucket.includes(): thousands of groups sharing one index value made that quadratic.
      for (const value of new Set(entry.accepted.get(indexKey)!)) {
        let bucket = buckets.get(value)
        if (bucket === undefined) buckets.set(value, (bucket = []))
        bucket.push(entry)
      }
    }
    for (const bucket of buckets.values()) bucket.sort((a, b) => cmp(a.group.id, b.group.id))
    // No spread: a config with very many ties would overflow the argument stack ("unexpected failure", exit 1).
    for (const tie of findTies(keys, buckets)) errors.push(tie)
    shapes.push({ keys, indexKey, buckets })
  }
  // Most labels first; within one count, every shape is probed and the smallest id wins.
  const levels = new Map<number, Shape[]>()
  for (const shape of shapes) {
    const level = levels.get(shape.keys.length) ?? []
    level.push(shape)
    levels.set(shape.keys.length, level)
  }
  const ordered = [...levels.entries()].sort((a, b) => b[0] - a[0]).map(([, s]) => s)

  const matcher: Matcher = {
    defaultGroup,
    shapeCount: shapes.length,
    match(labels) {
      for (const level of ordered) {
        let best: Group | undefined
        for (const shape of level) {
          const probe = labels[shape.indexKey]
          if (probe === undefined) continue
          const bucket = shape.buckets.get(probe)
          if (bucket === undefined) continue
          for (const entry of bucket) {
            if (best !== undefined && cmp(entry.group.id, best.id) >= 0) break
            if (entryMatches(entry, shape.keys, labels)) {
              best = entry.group
              break
            }
          }
        }
        if (best !== undefined) return best
      }
      return defaultGroup
    },
  }
  return { matcher, errors }
}

function entryMatches(entry: Entry, keys: readonly string[], labels: Labels): boolean {
  for (const key of keys) {
    const value = labels[key]
    if (value === undefined || !entry.accepted.get(key)!.has(value)) return false
  }
  return true
}

/** Plain code-unit order, locale-independent, so the documented tie-break never depends on the host. */
function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0
}

/** The label with most distinct values across the shape (ties: mac, uuid, then name order). */
function mostSelective(keys: readonly string[], entries: readonly Entry[]): string {
  const preference = (k: string) => (k === 'mac' ? 0 : k === 'uuid' ? 1 : 2)
  let best = keys[0]!
  let bestCount = -1
  for (const key of [...keys].sort((a, b) => preference(a) - preference(b) || cmp(a, b))) {
    const distinct = new Set<string>()
    for (const e of entries) for (const v of e.accepted.get(key)!) distinct.add(v)
    if (distinct.size > bestCount) {
      best = key
      bestCount = distinct.size
    }
  }
  return best
}

/**
 * Two groups of one shape tie when their accepted values overlap on every label. They can only overlap on the
 * index label if they share a bucket, so comparing within buckets finds every tie.
 */
/** Ties listed per selector shape; past this the config is plainly broken and listing more only costs time. */
const MAX_TIES_LISTED = 50

function findTies(keys: readonly string[], buckets: ReadonlyMap<string, Entry[]>): string[] {
  const errors: string[] = []
  const reported = new Set<string>()
  for (const bucket of buckets.values()) {
    for (let i = 0; i < bucket.length; i++) {
      for (let j = i + 1; j < bucket.length; j++) {
        if (errors.length >= MAX_TIES_LISTED) {
          errors.push(`more groups tie on selectors ${keys.join(', ')}; the first ${MAX_TIES_LISTED} ties are listed above`)
          return errors
        }
        const a = bucket[i]!
        const b = bucket[j]!
        const pair = `${a.group.id}\0${b.group.id}`
        if (reported.has(pair)) continue
        const common: string[] = []
        for (const key of keys) {
          const v = firstCommon(a.accepted.get(key)!, b.accepted.get(key)!)
          if (v === undefined) break
          common.push(`${key}=${v}`)
        }
        if (common.length === keys.length) {
          reported.add(pair)
          errors.push(
            `groups ${describe(a.group)} and ${describe(b.group)} both match ${common.join(' ')} with the same ` +
              `number of selectors; make one more specific or remove the overlap`,
          )
        }
      }
    }
  }
  return errors
}
