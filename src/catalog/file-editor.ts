/**
 * Changing one API-written file (a profile's `ignition:`/`generic:` file shared through the Store) of a loaded
 * catalog without loading everything (issue 17, as group-editor.ts does for groups, issue 16): the file alone is
 * prepared as a load prepares it (parsed, Butane translated, validated), then only the groups whose profile takes
 * this file from the Store are checked against it, with the warnings a full load would give them. Profiles that read
 * a file of that name from their own directory are not touched: the local file wins.
 */
import { formatIgnitionError, parseTemplate, prepareIgnitionSource, type ParsedTemplate, type PreparedIgnition } from '../ignition/index.js'
import { templateChecker, templateKey, type TemplateChecker, type TemplateFile } from './templates.js'
import type { Group, Profile } from './model.js'
import type { Slicer } from './slices.js'

/** What a load resolved for its profiles' files: the maps a state serves from. */
export interface LoadedFiles {
  readonly templates: ReadonlyMap<string, string>
  readonly ignition: ReadonlyMap<string, PreparedIgnition>
  readonly generic: ReadonlyMap<string, ParsedTemplate>
  readonly files: ReadonlyMap<string, TemplateFile>
}

/** A checked file change: its warnings, and the files to serve once the caller's write succeeded. */
export type FileRevision = { ok: true; warnings: string[]; files: LoadedFiles; checker: TemplateChecker; users: number } | { ok: false; errors: string[]; warnings: string[] }

/** What reviseFile reads of the loaded catalog. */
export interface FileEditParts {
  readonly profiles: ReadonlyMap<string, Profile>
  readonly groups: ReadonlyMap<string, Group>
  readonly filesDir?: string
  readonly slicer: Slicer
}

/**
 * Check `text` (undefined: the file is deleted) as the shared file `name` at `path` (the label loads give it) against
 * `loaded`, and build the maps that serve it. Nothing of `loaded` changes.
 */
export async function reviseFile(parts: FileEditParts, loaded: LoadedFiles, kind: 'ignition' | 'generic', name: string, path: string, text: string | undefined): Promise<FileRevision> {
  const users = [...parts.profiles.values()].filter((p) => p[kind] === name && loaded.files.get(templateKey(kind, p))?.path === path)
  if (users.length === 0) return { ok: true, warnings: [], files: loaded, checker: templateChecker(loaded), users: 0 }
  if (text === undefined) return { ok: false, errors: users.map((p) => `${p.source}: ${kind} file ${path}: deleted, and the profile still names it`), warnings: [] }

  const templates = new Map(loaded.templates)
  const ignition = new Map(loaded.ignition)
  const generic = new Map(loaded.generic)
  const files = new Map(loaded.files)
  if (kind === 'ignition') {
    const r = await prepareIgnitionSource({ file: path, text, ...(parts.filesDir !== undefined ? { filesDir: parts.filesDir } : {}) })
    // Worded as prepareTemplates words them, naming the first profile as a load does.
    if (!r.ok) return { ok: false, errors: r.errors.map((e) => `${formatIgnitionError(e)} (ignition of ${users[0]!.source})`), warnings: [] }
    for (const p of users) ignition.set(templateKey(kind, p), r.prepared)
  } else {
    const r = parseTemplate(text)
    if (!r.ok) return { ok: false, errors: r.errors.map((e) => `${path}:${e.line}:${e.col}: ${e.message} (generic of ${users[0]!.source})`), warnings: [] }
    for (const p of users) generic.set(templateKey(kind, p), r.template)
  }
  for (const p of users) {
    templates.set(templateKey(kind, p), text)
    files.set(templateKey(kind, p), { path, text })
  }
  const next: LoadedFiles = { templates, ignition, generic, files }
  const checker = templateChecker(next)
  const warnings: string[] = []
  const byId = new Map(users.map((p) => [p.id, p]))
  let n = 0
  for (const g of parts.groups.values()) {
    if (++n % 1024 === 0) await parts.slicer.slice()
    const p = byId.get(g.profile)
    if (p === undefined) continue
    const w = checker.check(g, p)
    for (const x of Array.isArray(w) ? w : await w) warnings.push(x)
  }
  return { ok: true, warnings, files: next, checker, users: users.length }
}
