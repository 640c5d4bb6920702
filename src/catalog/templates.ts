/**
 * Load-time preparation of the files profiles name: every Ignition file is parsed and validated (Ignition 3.0-3.4),
 * Butane translated once when it has no template actions, templates parsed; then each group is checked against the
 * templates its profile uses (missing keys, and a trial render that must translate and validate). A broken file is a
 * load error with file:line:col, so the daemon refuses to start on it and a reload keeps the last good state; a
 * template that only fails for one group is a warning, since only that group's machines are affected (they get a
 * 404 naming the key, as Matchbox answers when it cannot render).
 *
 * Cost (issue 16): the trial render (Butane translation and validation, ~1 ms) ran once per group, 11 s of a
 * 10,000-group load. Now each group costs one walk of the template's references (its data shape: which references a
 * group provides, with which JSON type, and which `if` conditions hold), and the missing-key check and the trial
 * render run once per template and data shape that checks clean; a group of a shape with missing keys or a failed
 * render is checked alone, so its warnings name it with the same text as before. Groups of one shape render the same
 * document with other scalar values; a value that breaks only its own render (a relative path written into a
 * `path:`) is caught at request time (a 500 naming the file, never a broken config), as request labels always were.
 */
import {
  checkIgnitionForGroup,
  formatIgnitionError,
  lintPreparedIgnition,
  lintTemplate,
  parseTemplate,
  prepareIgnitionSource,
  templateReferences,
  type IgnitionError,
  type ParsedTemplate,
  type PreparedIgnition,
} from '../ignition/index.js'
import { unsliced, type Slicer } from './slices.js'
import type { Labels } from './labels.js'
import type { Group, Profile } from './model.js'

/** A profile's file as read at load. */
export interface TemplateFile {
  readonly path: string
  readonly text: string
}

/** Key under which a profile's file is kept in BootState.templates/ignition/generic. */
export function templateKey(kind: 'ignition' | 'generic', profile: Profile): string {
  return `${kind}:${profile.id}`
}

/** What prepareTemplates found. */
export interface PreparedTemplates {
  readonly ignition: ReadonlyMap<string, PreparedIgnition>
  readonly generic: ReadonlyMap<string, ParsedTemplate>
  readonly errors: string[]
  readonly warnings: string[]
  /** Checks a group that changes later against these same files. */
  readonly checker: TemplateChecker
}

/**
 * A group's selector as template data, as Matchbox's collectVariables: one value as a string; for a list selector
 * (pxebox extension) the value this machine sent (a matched machine always sent one), or at load its first value.
 */
export function templateSelector(group: Group, labels?: Labels): Record<string, string> {
  const out: Record<string, string> = {}
  // for...in, not Object.entries: no pair arrays per group (a 100,000-group load checks every group).
  for (const key in group.selector) out[key] = labels?.[key] ?? group.selector[key]![0] ?? ''
  return out
}

/** Checks one group against its profile's prepared templates; remembers which data shapes rendered. */
export interface TemplateChecker {
  /**
   * The warnings this group gets (missing keys, failed trial render), as the full load words them. An array at once
   * when no trial render is needed (a shape already checked clean: nearly every group of a large catalog), else a
   * promise: a promise per group was a tenth of a 100,000-group load's garbage.
   */
  check(group: Group, profile: Profile): readonly string[] | Promise<readonly string[]>
}

/** What a load prepared, for checking groups against it (at load and when one group changes later). */
export interface PreparedFiles {
  readonly ignition: ReadonlyMap<string, PreparedIgnition>
  readonly generic: ReadonlyMap<string, ParsedTemplate>
  readonly files: ReadonlyMap<string, TemplateFile>
}

/**
 * A checker over one load's prepared files. Its caches are only valid for those files.
 *
 * Per group it computes one data shape per template (dataShape: a walk of the template's references, no rendering,
 * no copy of the template's context) and looks it up. The shape also decides the missing-key check: a reference
 * outside `.request` is missing exactly when its shape letter is `u` (dataShape walks the data by lintTemplate's
 * rules), and `.request` references do not depend on the group. So a shape that once checked clean (no missing key,
 * trial render passed) is clean for every group of it, and only groups of other shapes are linted and rendered one by
 * one, which keeps each warning's text naming its own group.
 */
export function templateChecker(prepared: PreparedFiles): TemplateChecker {
  // Per template (prepared Ignition, or parsed generic file): its references, and the shapes that checked clean.
  const clean = new Map<PreparedIgnition | ParsedTemplate, { refs: ReturnType<typeof templateReferences>; shapes: Set<string> }>()
  const factsOf = (key: PreparedIgnition | ParsedTemplate, template: ParsedTemplate) => {
    let facts = clean.get(key)
    if (facts === undefined) clean.set(key, (facts = { refs: templateReferences(template), shapes: new Set() }))
    return facts
  }
  // Each profile's prepared files, looked up once: three templateKey strings per group checked were garbage.
  const byProfile = new Map<Profile, ProfileFiles>()
  const filesOf = (p: Profile): ProfileFiles => {
    let f = byProfile.get(p)
    if (f === undefined) {
      f = { ignition: prepared.ignition.get(templateKey('ignition', p)), generic: prepared.generic.get(templateKey('generic', p)), genericFile: prepared.files.get(templateKey('generic', p)) }
      byProfile.set(p, f)
    }
    return f
  }
  const checkGeneric = (g: Group, p: Profile, data: GroupData, files: ProfileFiles): readonly string[] => {
    const gen = files.generic
    const genFile = files.genericFile
    if (gen === undefined || genFile === undefined) return NO_WARNINGS
    const facts = factsOf(gen, gen)
    const shape = dataShape(facts.refs, data)
    if (facts.shapes.has(shape)) return NO_WARNINGS
    const missing = lintTemplate(gen, g.metadata, data.selector)
    if (missing.length === 0) facts.shapes.add(shape)
    return missing.map(
      (m) => `${genFile.path}:${m.line}:${m.col}: template references ${m.key}, which group "${g.id}" metadata and selector do not provide (${g.source}, profile "${p.id}")`,
    )
  }
  return {
    check(g, p) {
      const data: GroupData = { metadata: g.metadata, selector: templateSelector(g), id: g.id }
      const files = filesOf(p)
      const ign = files.ignition
      if (ign !== undefined && (ign.kind === 'template-ign' || ign.kind === 'template-butane')) {
        const facts = factsOf(ign, ign.template)
        const shape = dataShape(facts.refs, data)
        if (!facts.shapes.has(shape)) {
          // Missing keys first, as the per-group check reports them; a trial render only when none is missing.
          const missing = lintPreparedIgnition(ign, data)
          const note = (problems: readonly IgnitionError[]): string[] => {
            if (problems.length === 0) facts.shapes.add(shape)
            return problems.map((e) => `${formatIgnitionError(e)} (${g.source}, profile "${p.id}")`)
          }
          if (missing.length > 0) return [...note(missing), ...checkGeneric(g, p, data, files)]
          return checkIgnitionForGroup(ign, data).then((problems) => [...note(problems), ...checkGeneric(g, p, data, files)])
        }
      }
      return checkGeneric(g, p, data, files)
    },
  }
}

/** The answer of nearly every group's check, shared rather than an empty array per group. */
const NO_WARNINGS: readonly string[] = Object.freeze([])

type ProfileFiles = { readonly ignition: PreparedIgnition | undefined; readonly generic: ParsedTemplate | undefined; readonly genericFile: TemplateFile | undefined }

type GroupData = { metadata: Readonly<Record<string, unknown>>; selector: Record<string, string>; id: string }

/**
 * What decides the trial render's document apart from scalar values: per reference, the JSON type it finds (or
 * missing), and per value whether `if` takes it as true. Request labels come from the selector or a placeholder.
 */
function dataShape(refs: ReturnType<typeof templateReferences>, data: GroupData): string {
  let out = ''
  for (const ref of refs) {
    const [first, second, key] = ref.path
    if (first === 'request' && second === 'query' && key !== undefined) {
      out += data.selector[key.toLowerCase()] === undefined ? 'p' : 's'
      continue
    }
    // The template's data is the metadata with the selector on top; looked up in place (a copy per group was a tenth
    // of a 100,000-group load's checks).
    const top = first ?? ''
    let v: unknown = Object.hasOwn(data.selector, top) ? data.selector[top] : Object.hasOwn(data.metadata, top) ? data.metadata[top] : undefined
    for (let i = 1; i < ref.path.length; i++) {
      const seg = ref.path[i]!
      v = v !== null && typeof v === 'object' && !Array.isArray(v) && Object.hasOwn(v, seg) ? (v as Record<string, unknown>)[seg] : undefined
    }
    const type = v === undefined || v === null ? 'u' : Array.isArray(v) ? 'a' : typeof v === 'object' ? 'o' : (typeof v)[0]!
    const truthy = !(v === undefined || v === null || v === false || v === 0 || v === '' || (Array.isArray(v) && v.length === 0) || (typeof v === 'object' && v !== null && Object.keys(v).length === 0))
    out += type + (truthy ? '1' : '0')
  }
  return out
}

/** Prepare every profile's ignition/generic file in `files` (by templateKey) and check each group against them. */
export async function prepareTemplates(
  profiles: ReadonlyMap<string, Profile>,
  groups: Iterable<Group>,
  files: ReadonlyMap<string, TemplateFile>,
  filesDir: string | undefined,
  slicer: Slicer = unsliced,
): Promise<PreparedTemplates> {
  const errors: string[] = []
  const warnings: string[] = []
  const ignition = new Map<string, PreparedIgnition>()
  const generic = new Map<string, ParsedTemplate>()
  // Profiles often share one file: prepare (translate) it once and report its errors once.
  const byPath = new Map<string, ReturnType<typeof prepareIgnitionSource>>()

  for (const p of profiles.values()) {
    const ign = files.get(templateKey('ignition', p))
    if (ign !== undefined) {
      let pending = byPath.get(ign.path)
      const first = pending === undefined
      if (pending === undefined) {
        pending = prepareIgnitionSource({ file: ign.path, text: ign.text, ...(filesDir !== undefined ? { filesDir } : {}) })
        byPath.set(ign.path, pending)
      }
      const r = await pending
      if (r.ok) ignition.set(templateKey('ignition', p), r.prepared)
      else if (first) errors.push(...r.errors.map((e) => `${formatIgnitionError(e)} (ignition of ${p.source})`))
    }
    const gen = files.get(templateKey('generic', p))
    if (gen !== undefined) {
      const r = parseTemplate(gen.text)
      if (r.ok) generic.set(templateKey('generic', p), r.template)
      else errors.push(...r.errors.map((e) => `${gen.path}:${e.line}:${e.col}: ${e.message} (generic of ${p.source})`))
    }
  }

  const checker = templateChecker({ ignition, generic, files })
  for (const g of groups) {
    const y = slicer.slice()
    if (y) await y
    const p = profiles.get(g.profile)
    if (p === undefined) continue
    const w = checker.check(g, p)
    for (const x of Array.isArray(w) ? w : await w) warnings.push(x)
  }
  return { ignition, generic, errors, warnings, checker }
}
