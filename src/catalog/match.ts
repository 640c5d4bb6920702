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
 * not the number of groups. The index takes single groups in and out (`add`, `remove`: an API write or one changed
 * Matchbox file), touching only that group's buckets; a shape first seen that way is indexed on mac, else uuid, else
 * its first label, since there is nothing yet to count. Answers never depend on which label a shape is indexed on.
 */
import { uuidForms, type Labels } from './labels.js'
import type { Group } from './model.js'

/** One label's accepted values: a list while short (lighter than a Set at one value per group), else a Set. */
type Accepted = readonly string[] | ReadonlySet<string>

interface Entry {
  readonly group: Group
  /** Accepted values per label, in the order of the shape's `keys` (uuid expanded to both byte orders). */
  readonly values: readonly Accepted[]
}

interface Shape {
  readonly keys: readonly string[]
  /** Position of the index label in `keys`. */
  readonly at: number
  /** Index label value -> the entries accepting it, sorted by group id. */
  readonly buckets: Map<string, Entry[]>
  /** Entries in this shape. */
  size: number
}

/** Looks groups up by labels. */
export interface Matcher {
  /** The winning group for these (normalized) labels, or undefined when none matches and there is no default. */
  match(labels: Labels): Group | undefined
  /** The default group (empty selector), if any. */
  readonly defaultGroup: Group | undefined
  /** Number of distinct selector shapes: the per-lookup cost. */
  readonly shapeCount: number
}

/** A Matcher that takes groups in and out one at a time. */
export interface MatchIndex extends Matcher {
  /**
   * Add a group (its id must not be in the index): the errors a full build would report for it (a tie with a group
   * already in, a second default group). The group is added either way; callers that refuse it remove it again.
   */
  add(group: Group): string[]
  /** Remove the group with this id; false when it is not in. */
  remove(id: string): boolean
  /** Number of groups in the index. */
  readonly size: number
}

const LIST_LIMIT = 8

function accepted(key: string, values: readonly string[]): Accepted {
  const all = key === 'uuid' ? [...new Set(values.flatMap(uuidForms))] : values
  return all.length > LIST_LIMIT ? new Set(all) : all
}

const has = (a: Accepted, v: string): boolean => (Array.isArray(a) ? (a as readonly string[]).includes(v) : (a as ReadonlySet<string>).has(v))

function entryOf(group: Group, keys: readonly string[]): Entry {
  return { group, values: keys.map((k) => accepted(k, group.selector[k]!)) }
}

function describe(group: Group): string {
  return `"${group.id}" (${group.source})`
}

/** First value present in both, for error messages. */
function firstCommon(a: Accepted, b: Accepted): string | undefined {
  for (const v of a) if (has(b, v)) return v
  return undefined
}

/** Plain code-unit order, locale-independent, so the documented tie-break never depends on the host. */
function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0
}

const signature = (keys: readonly string[]): string => keys.join('\0')

/** Build the index; `errors` lists every tie and duplicate default found (the index is still usable for tests). */
export function buildMatcher(groups: readonly Group[]): { matcher: MatchIndex; errors: string[] } {
  const errors: string[] = []
  const defaults = groups.filter((g) => Object.keys(g.selector).length === 0)
  if (defaults.length > 1) {
    errors.push(`more than one default group (empty selector): ${defaults.map(describe).join(', ')}; keep one`)
  }
  const byShape = new Map<string, { keys: string[]; entries: Entry[] }>()
  for (const group of groups) {
    const keys = Object.keys(group.selector).sort()
    if (keys.length === 0) continue
    const sig = signature(keys)
    let shape = byShape.get(sig)
    if (shape === undefined) byShape.set(sig, (shape = { keys, entries: [] }))
    shape.entries.push(entryOf(group, keys))
  }
  const shapes = new Map<string, Shape>()
  for (const [sig, { keys, entries }] of byShape) {
    const at = mostSelective(keys, entries)
    const buckets = new Map<string, Entry[]>()
    for (const entry of entries) {
      // A Set, not bucket.includes(): thousands of groups sharing one index value made that quadratic.
      for (const value of new Set(entry.values[at]!)) {
        let bucket = buckets.get(value)
        if (bucket === undefined) buckets.set(value, (bucket = []))
        bucket.push(entry)
      }
    }
    for (const bucket of buckets.values()) if (bucket.length > 1) bucket.sort((a, b) => cmp(a.group.id, b.group.id))
    // No spread: a config with very many ties would overflow the argument stack ("unexpected failure", exit 1).
    for (const tie of findTies(keys, buckets)) errors.push(tie)
    shapes.set(sig, { keys, at, buckets, size: entries.length })
  }
  return { matcher: matchIndex(shapes, defaults), errors }
}

/** The index over built shapes; `defaults` in any order. */
function matchIndex(shapes: Map<string, Shape>, defaultList: readonly Group[]): MatchIndex {
  const defaults = [...defaultList].sort((a, b) => cmp(a.id, b.id))
  const where = new Map<string, { shape: Shape; entry: Entry } | undefined>()
  for (const shape of shapes.values()) for (const bucket of shape.buckets.values()) for (const entry of bucket) where.set(entry.group.id, { shape, entry })
  for (const g of defaults) where.set(g.id, undefined)

  // Most labels first; within one count, every shape is probed and the smallest id wins.
  let ordered: Shape[][] = []
  const order = (): void => {
    const levels = new Map<number, Shape[]>()
    for (const shape of shapes.values()) {
      const level = levels.get(shape.keys.length) ?? []
      level.push(shape)
      levels.set(shape.keys.length, level)
    }
    ordered = [...levels.entries()].sort((a, b) => b[0] - a[0]).map(([, s]) => s)
  }
  order()

  return {
    get defaultGroup() {
      return defaults[0]
    },
    get shapeCount() {
      return shapes.size
    },
    get size() {
      return where.size
    },
    match(labels) {
      for (const level of ordered) {
        let best: Group | undefined
        for (const shape of level) {
          const probe = labels[shape.keys[shape.at]!]
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
      return defaults[0]
    },
    add(group) {
      if (where.has(group.id)) throw new Error(`group "${group.id}" is already in the index`)
      const keys = Object.keys(group.selector).sort()
      if (keys.length === 0) {
        defaults.splice(insertAt(defaults, group.id, (g) => g.id), 0, group)
        const errors = defaults.length > 1 ? [`more than one default group (empty selector): ${defaults.map(describe).join(', ')}; keep one`] : []
        where.set(group.id, undefined)
        return errors
      }
      const sig = signature(keys)
      let shape = shapes.get(sig)
      if (shape === undefined) {
        const preference = (k: string) => (k === 'mac' ? 0 : k === 'uuid' ? 1 : 2)
        const first = [...keys].sort((a, b) => preference(a) - preference(b) || cmp(a, b))[0]!
        shapes.set(sig, (shape = { keys, at: keys.indexOf(first), buckets: new Map(), size: 0 }))
        order()
      }
      const entry = entryOf(group, keys)
      const errors = tiesWith(shape, entry)
      for (const value of distinct(entry.values[shape.at]!)) {
        const bucket = shape.buckets.get(value)
        // A new bucket made whole, not spliced into: splice's answer (an array) per group added was garbage.
        if (bucket === undefined) shape.buckets.set(value, [entry])
        else bucket.splice(insertAt(bucket, group.id, (e) => e.group.id), 0, entry)
      }
      shape.size++
      where.set(group.id, { shape, entry })
      return errors
    },
    remove(id) {
      if (!where.has(id)) return false
      const at = where.get(id)
      where.delete(id)
      if (at === undefined) {
        defaults.splice(defaults.findIndex((g) => g.id === id), 1)
        return true
      }
      const { shape, entry } = at
      for (const value of distinct(entry.values[shape.at]!)) {
        const bucket = shape.buckets.get(value)!
        bucket.splice(insertAt(bucket, id, (e) => e.group.id), 1)
        if (bucket.length === 0) shape.buckets.delete(value)
      }
      if (--shape.size === 0) {
        shapes.delete(signature(shape.keys))
        order()
      }
      return true
    },
  }
}

/** Where `id` goes in a list sorted by id (binary search): the index of the first element not below it. */
function insertAt<T>(list: readonly T[], id: string, idOf: (t: T) => string): number {
  let lo = 0
  let hi = list.length
  while (lo < hi) {
    const mid = (lo + hi) >> 1
    if (cmp(idOf(list[mid]!), id) < 0) lo = mid + 1
    else hi = mid
  }
  return lo
}

function entryMatches(entry: Entry, keys: readonly string[], labels: Labels): boolean {
  for (let i = 0; i < keys.length; i++) {
    const value = labels[keys[i]!]
    if (value === undefined || !has(entry.values[i]!, value)) return false
  }
  return true
}

/** The label with most distinct values across the shape (ties: mac, uuid, then name order); its position in `keys`. */
function mostSelective(keys: readonly string[], entries: readonly Entry[]): number {
  const preference = (k: string) => (k === 'mac' ? 0 : k === 'uuid' ? 1 : 2)
  let best = 0
  let bestCount = -1
  for (const key of [...keys].sort((a, b) => preference(a) - preference(b) || cmp(a, b))) {
    const i = keys.indexOf(key)
    const distinct = new Set<string>()
    for (const e of entries) for (const v of e.values[i]!) distinct.add(v)
    if (distinct.size > bestCount) {
      best = i
      bestCount = distinct.size
    }
  }
  return best
}

/** The tie message for two entries of one shape, `a` the smaller id; undefined when some label has no common value. */
function tie(keys: readonly string[], a: Entry, b: Entry): string | undefined {
  const common: string[] = []
  for (let i = 0; i < keys.length; i++) {
    const v = firstCommon(a.values[i]!, b.values[i]!)
    if (v === undefined) return undefined
    common.push(`${keys[i]}=${v}`)
  }
  return (
    `groups ${describe(a.group)} and ${describe(b.group)} both match ${common.join(' ')} with the same ` +
    `number of selectors; make one more specific or remove the overlap`
  )
}

/** The values once each: a one-value selector (one MAC per group) as it is, without a Set per group added. */
function distinct(values: Accepted): Iterable<string> {
  return Array.isArray(values) && values.length > 1 ? new Set(values) : values
}

/** The ties a new entry makes with the entries already in its shape (it can only tie with those sharing a bucket). */
function tiesWith(shape: Shape, entry: Entry): string[] {
  const errors: string[] = []
  // Made on the first shared bucket: adding one group per MAC, most buckets are new (and a Set per group added was
  // a tenth of indexing 100,000 groups).
  let seen: Set<Entry> | undefined
  for (const value of entry.values[shape.at]!) {
    const bucket = shape.buckets.get(value)
    if (bucket === undefined) continue
    seen ??= new Set()
    for (const other of bucket) {
      if (seen.has(other)) continue
      seen.add(other)
      const [a, b] = cmp(other.group.id, entry.group.id) < 0 ? [other, entry] : [entry, other]
      const message = tie(shape.keys, a, b)
      if (message !== undefined) errors.push(message)
    }
  }
  return errors
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
        const message = tie(keys, a, b)
        if (message !== undefined) {
          reported.add(pair)
          errors.push(message)
        }
      }
    }
  }
  return errors
}
