/**
 * Load-time preparation of the files profiles name: every Ignition file is parsed and validated (Ignition 3.0-3.4),
 * Butane translated once when it has no template actions, templates parsed; then each group is checked against the
 * templates its profile uses (missing keys, and a trial render that must translate and validate). A broken file is a
 * load error with file:line:col, so the daemon refuses to start on it and a reload keeps the last good state; a
 * template that only fails for one group is a warning, since only that group's machines are affected (they get a
 * 404 naming the key, as Matchbox answers when it cannot render).
 */
import {
  checkIgnitionForGroup,
  formatIgnitionError,
  lintTemplate,
  parseTemplate,
  prepareIgnitionSource,
  type IgnitionError,
  type ParsedTemplate,
  type PreparedIgnition,
} from '../ignition/index.js'
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
}

/**
 * A group's selector as template data, as Matchbox's collectVariables: one value as a string; for a list selector
 * (pxebox extension) the value this machine sent (a matched machine always sent one), or at load its first value.
 */
export function templateSelector(group: Group, labels?: Labels): Record<string, string> {
  const out: Record<string, string> = {}
  for (const [key, values] of Object.entries(group.selector)) out[key] = labels?.[key] ?? values[0] ?? ''
  return out
}

/** Prepare every profile's ignition/generic file in `files` (by templateKey) and check each group against them. */
export async function prepareTemplates(
  profiles: ReadonlyMap<string, Profile>,
  groups: readonly Group[],
  files: ReadonlyMap<string, TemplateFile>,
  filesDir: string | undefined,
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

  for (const g of groups) {
    const p = profiles.get(g.profile)
    if (p === undefined) continue
    const data = { metadata: g.metadata, selector: templateSelector(g), id: g.id }
    const ign = ignition.get(templateKey('ignition', p))
    if (ign !== undefined) {
      const problems: IgnitionError[] = await checkIgnitionForGroup(ign, data)
      warnings.push(...problems.map((e) => `${formatIgnitionError(e)} (${g.source}, profile "${p.id}")`))
    }
    const gen = generic.get(templateKey('generic', p))
    const genFile = files.get(templateKey('generic', p))
    if (gen !== undefined && genFile !== undefined) {
      for (const m of lintTemplate(gen, g.metadata, data.selector)) {
        warnings.push(
          `${genFile.path}:${m.line}:${m.col}: template references ${m.key}, which group "${g.id}" metadata and selector do not provide (${g.source}, profile "${p.id}")`,
        )
      }
    }
  }
  return { ignition, generic, errors, warnings }
}
