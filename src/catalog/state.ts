/**
 * Boot state: every profile, group, template and the match index, loaded from config.yaml objects and an optional
 * Matchbox directory, validated as a whole. A `BootStore` (boot-store.ts) holds the current state and swaps it only
 * for a new state that loaded without errors, so a bad file on disk is reported (file and reason) while the last
 * good state keeps serving. Reloads come from `reload()` (the daemon's SIGHUP) and from fs.watch on the folders.
 *
 * At fleet size (issue 16: 100,000 groups, one per machine) two things matter. A full load runs in slices that give
 * the event loop back (./slices.ts), and the new state is swapped in whole once built, so the boot path answers from
 * the old state meanwhile. And a change of single groups (an API write, one changed `groups/*.json`) does not load
 * everything again: `editGroups` checks just those groups against the current state (the same errors and warnings
 * a full load would give them) and updates only their index entries.
 */
import { join } from 'node:path'
import type { Logger } from '../host/log.js'
import type { GroupInput, ProfileInput } from './model-schema.js'
import { groupFromConfig, groupFromMatchbox, profileFromConfig, profileFromMatchbox, type Group, type Profile } from './model.js'
import type { Matcher } from './match.js'
import { readMatchboxDir, readSmallFile } from './matchbox-dir.js'
import { normalizeLabels, type Labels } from './labels.js'
import { urlBasename } from './boot-plan.js'
import { prepareTemplates, templateKey, type PreparedTemplates, type TemplateFile } from './templates.js'
import { createSlicer, sortSliced, unsliced, type Slicer } from './slices.js'
import { buildMatcherSliced, groupEditor, type GroupEditor } from './group-editor.js'
import { reviseFile, type LoadedFiles } from './file-editor.js'

export { templateKey } from './templates.js'
export type { GroupChange } from './group-editor.js'

/** Everything a load reads: config.yaml's objects (already schema-validated by src/config/) and the folders. */
export interface BootSources {
  readonly profiles: Readonly<Record<string, ProfileInput>>
  readonly groups: readonly GroupInput[]
  /** How errors name config.yaml; default `config.yaml`. */
  readonly configName?: string
  /**
   * Where an entry really came from when it is not config.yaml: the API overlay merges its own groups (appended,
   * `index` counts from 0 over `groups`) and profiles into these sources and names its files here. Undefined: config.yaml.
   */
  readonly entrySource?: (kind: 'group' | 'profile', id: string, index: number) => string | undefined
  /**
   * Checks a loader layer makes of each group with its profile (the GRUB trial render of `loader: shim-grub` groups,
   * src/boot/grub-check.ts): each string is a load error. The catalog cannot render boot configs itself (it sits below
   * src/boot/), so the layer above hands the check in.
   */
  readonly checkGroup?: (group: Group, profile: Profile) => readonly string[]
  /** Matchbox-layout data directory (groups/, profiles/, ignition/, generic/). */
  readonly matchboxDir?: string
  /** Where config.yaml profiles' `ignition:` files live; default `<matchboxDir>/ignition`. */
  readonly ignitionDir?: string
  /** Where config.yaml profiles' `generic:` files live; default `<matchboxDir>/generic`. */
  readonly genericDir?: string
  /** Where Butane `local:` contents are read from (config `butane_files_dir`); without it `local:` is an error. */
  readonly filesDir?: string
  /**
   * API-written files (the overlay's `ignition`/`generic` kinds, shared through etcd), by name. A profile's file is
   * read from its directory first: one there wins (the local directory is this appliance's, as config.yaml is);
   * only a name the directory does not have is taken from here.
   */
  readonly sharedFiles?: { readonly ignition: ReadonlyMap<string, string>; readonly generic: ReadonlyMap<string, string>; readonly source: (kind: 'ignition' | 'generic', name: string) => string }
}

/** Everything loadBootState needs. */
export interface BootStateOptions extends BootSources {
  readonly logger?: Logger
  /** Where a long load gives the event loop back; default never (nothing else runs during `pxebox validate`). */
  readonly slicer?: Slicer
}

/** What a matched machine gets. */
export interface BootMatch {
  readonly group: Group
  readonly profile: Profile
}

/** An asset path's role in some profile, for boot events. */
export type AssetRole = 'kernel' | 'initrd'

/**
 * One fully validated state. Profiles and templates never change in it; single groups may (BootStore.editGroups),
 * always between two requests, never during one's synchronous part.
 */
export interface BootState {
  readonly loadedAt: string
  readonly profiles: ReadonlyMap<string, Profile>
  /** Every group sorted by id; built on first use after a change (O(groups log groups)): not for the boot path. */
  readonly groups: readonly Group[]
  /** How many groups there are. */
  readonly groupCount: number
  /** The group with this id. */
  group(id: string): Group | undefined
  readonly matcher: Matcher
  /** Template text by `ignition:<name>` / `generic:<name>` key as resolved for each profile. */
  readonly templates: ReadonlyMap<string, string>
  /** Each profile's Ignition, validated (and Butane translated) at load, or parsed to render per request; by templateKey. */
  readonly ignition: PreparedTemplates['ignition']
  /** Each profile's generic file, parsed as a template; by templateKey. */
  readonly generic: PreparedTemplates['generic']
  /** URL path -> role, for every kernel/initrd URL of every profile. */
  readonly assetRoles: ReadonlyMap<string, AssetRole>
  /** The group and profile for these normalized labels. */
  match(labels: Labels): BootMatch | undefined
}

/**
 * loadBootState's answer: a state, or every error found (with file/entry and reason). `reads`: the template files
 * the load read or tried to read (a missing one too), which the store's watchers react to.
 */
export type LoadResult =
  | { ok: true; state: BootState; warnings: string[]; reads: string[] }
  | { ok: false; errors: string[]; warnings: string[]; reads: string[] }

/** Load and validate everything once. Never throws for bad input: it lands in `errors`. */
export async function loadBootState(opts: BootStateOptions): Promise<LoadResult> {
  const r = await loadCatalogState(opts)
  return r.ok ? { ok: true, state: r.state, warnings: r.warnings, reads: r.reads } : r
}

/** A loaded state and what changing its groups later needs (boot-store.ts keeps one). */
export interface LoadedCatalog {
  readonly ok: true
  readonly state: BootState
  readonly warnings: string[]
  readonly reads: string[]
  readonly editor: GroupEditor
  /** Check a change of one shared file; `apply` (after the caller's write) gives the state and editor serving it. */
  readonly editFile: (
    kind: 'ignition' | 'generic',
    name: string,
    text: string | undefined,
  ) => Promise<{ ok: true; warnings: string[]; users: number; apply: () => { state: BootState; editor: GroupEditor } } | { ok: false; errors: string[]; warnings: string[] }>
}

export async function loadCatalogState(opts: BootStateOptions): Promise<LoadedCatalog | { ok: false; errors: string[]; warnings: string[]; reads: string[] }> {
  const errors: string[] = []
  const warnings: string[] = []
  const slicer = opts.slicer ?? unsliced
  const configName = opts.configName ?? 'config.yaml'
  const profiles = new Map<string, Profile>()
  const groups = new Map<string, Group>()

  const addProfile = (p: Profile) => {
    const prior = profiles.get(p.id)
    if (prior) errors.push(`profile "${p.id}" is defined twice: ${prior.source} and ${p.source}`)
    else profiles.set(p.id, p)
  }
  const addGroup = (g: Group) => {
    const prior = groups.get(g.id)
    if (prior) errors.push(`group "${g.id}" is defined twice: ${prior.source} and ${g.source}`)
    else groups.set(g.id, g)
  }

  for (const [i, [id, input]] of Object.entries(opts.profiles).entries()) {
    const r = profileFromConfig(id, input, opts.entrySource?.('profile', id, i) ?? `${configName} profiles.${id}`)
    if (r.ok) addProfile(r.value)
    else errors.push(...r.errors)
  }
  for (const [i, input] of opts.groups.entries()) {
    const y = slicer.slice()
    if (y) await y
    const r = groupFromConfig(input, opts.entrySource?.('group', input.id, i) ?? `${configName} groups[${i}]`)
    if (r.ok) addGroup(r.value)
    else errors.push(...r.errors)
  }

  // Where a profile's template lives: its own Matchbox dir for Matchbox profiles, the configured dirs for config.yaml.
  const templateDir = new Map<string, { ignition?: string; generic?: string }>()
  if (opts.matchboxDir !== undefined) {
    const dir = await readMatchboxDir(opts.matchboxDir, slicer)
    errors.push(...dir.errors)
    warnings.push(...dir.warnings)
    for (const f of dir.profiles) {
      const r = profileFromMatchbox(f.data, f.path)
      if (r.ok) {
        addProfile(r.value)
        templateDir.set(r.value.id, { ignition: join(opts.matchboxDir, 'ignition'), generic: join(opts.matchboxDir, 'generic') })
      } else errors.push(...r.errors)
    }
    for (const f of dir.groups) {
      const y = slicer.slice()
      if (y) await y
      const r = groupFromMatchbox(f.data, f.path)
      if (r.ok) addGroup(r.value)
      else errors.push(...r.errors)
    }
  }

  const groupErrors = (g: Group): readonly string[] => {
    const profile = profiles.get(g.profile)
    if (!profile) return [`${g.source}: group "${g.id}" names profile "${g.profile}", which does not exist`]
    return opts.checkGroup ? opts.checkGroup(g, profile).map((e) => `${g.source}: group "${g.id}": ${e}`) : NO_ERRORS
  }
  for (const g of groups.values()) {
    const y = slicer.slice()
    if (y) await y
    for (const e of groupErrors(g)) errors.push(e)
  }

  const templates = new Map<string, string>()
  const files = new Map<string, TemplateFile>()
  const reads: string[] = []
  for (const p of profiles.values()) {
    for (const kind of ['ignition', 'generic'] as const) {
      const name = p[kind]
      if (name === undefined) continue
      const dir =
        templateDir.get(p.id)?.[kind] ??
        (kind === 'ignition' ? opts.ignitionDir : opts.genericDir) ??
        (opts.matchboxDir !== undefined ? join(opts.matchboxDir, kind) : undefined)
      const shared = opts.sharedFiles?.[kind].get(name)
      const useShared = (): void => {
        templates.set(templateKey(kind, p), shared!)
        files.set(templateKey(kind, p), { path: opts.sharedFiles!.source(kind, name), text: shared! })
      }
      if (dir === undefined) {
        if (shared !== undefined) useShared()
        else errors.push(`${p.source}: ${kind} "${name}" given but no ${kind} directory is configured`)
        continue
      }
      const path = join(dir, name)
      // Read (and watched) even when a shared file has the name: a local file that appears later takes over.
      reads.push(path)
      try {
        const text = await readSmallFile(path)
        templates.set(templateKey(kind, p), text)
        files.set(templateKey(kind, p), { path, text })
      } catch (err) {
        if (shared !== undefined && (err as NodeJS.ErrnoException).code === 'ENOENT') useShared()
        else errors.push(`${p.source}: ${kind} file ${path}: ${(err as Error).message}${shared === undefined ? '' : ' (an API-written file of this name exists, but the local one wins when present)'}`)
      }
    }
  }

  const groupList = await sortSliced([...groups.values()], (g) => g.id, slicer)
  const { matcher, errors: matchErrors } = await buildMatcherSliced(groupList, slicer)
  errors.push(...matchErrors)
  // Ignition/Butane problems are load errors (a machine must never get a broken config); per-group template misses
  // are warnings (only that group's machines are affected, and they get a 404 naming the key).
  const prepared = await prepareTemplates(profiles, groupList, files, opts.filesDir, slicer)
  errors.push(...prepared.errors)
  warnings.push(...prepared.warnings)
  if (errors.length > 0) return { ok: false, errors, warnings, reads }

  const assetRoles = new Map<string, AssetRole>()
  for (const p of profiles.values()) {
    if (!p.boot) continue
    assetRoles.set(urlPath(p.boot.kernel), 'kernel')
    for (const initrd of p.boot.initrds) if (!assetRoles.has(urlPath(initrd.url))) assetRoles.set(urlPath(initrd.url), 'initrd')
  }

  let sorted: Group[] | undefined = groupList
  const invalidate = (): void => void (sorted = undefined)
  // A state over these files; a file edit (file-editor.ts) makes another over the same groups and index.
  const stateOver = (f: LoadedFiles): BootState => ({
    loadedAt: new Date().toISOString(),
    profiles,
    get groups() {
      return (sorted ??= [...groups.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)))
    },
    get groupCount() {
      return groups.size
    },
    group: (id) => groups.get(id),
    matcher,
    templates: f.templates,
    ignition: f.ignition,
    generic: f.generic,
    assetRoles,
    match(labels) {
      const group = matcher.match(labels)
      if (group === undefined) return undefined
      return { group, profile: profiles.get(group.profile)! }
    },
  })
  let loadedFiles: LoadedFiles = { templates, ignition: prepared.ignition, generic: prepared.generic, files }
  const state = stateOver(loadedFiles)
  const editor = groupEditor(groups, matcher, prepared.checker, profiles, groupErrors, invalidate)
  const parts = { profiles, groups, slicer, ...(opts.filesDir !== undefined ? { filesDir: opts.filesDir } : {}) }
  const editFile: LoadedCatalog['editFile'] = async (kind, name, text) => {
    const path = opts.sharedFiles?.source(kind, name)
    if (path === undefined) return { ok: false, errors: [`${kind} "${name}": this catalog has no shared files`], warnings: [] }
    const r = await reviseFile({ ...parts, slicer: opts.slicer ?? createSlicer() }, loadedFiles, kind, name, path, text)
    if (!r.ok) return r
    return {
      ...r,
      apply: () => {
        loadedFiles = r.files
        return { state: stateOver(r.files), editor: groupEditor(groups, matcher, r.checker, profiles, groupErrors, invalidate) }
      },
    }
  }
  return { ok: true, state, warnings, reads, editor, editFile }
}

/** No errors, shared: an empty array per group checked was garbage at 100,000 groups. */
const NO_ERRORS: readonly string[] = Object.freeze([])

/** The path part of a URL (root-relative or absolute), as requests for it will arrive. */
function urlPath(url: string): string {
  const noQuery = url.replace(/[?#].*$/, '')
  const m = /^[a-z][a-z0-9+.-]*:\/\/[^/]*(\/.*)?$/i.exec(noQuery)
  if (m) return m[1] ?? '/'
  return noQuery.startsWith('/') ? noQuery : `/${urlBasename(noQuery)}`
}

/** Convenience for the DHCP side: match raw labels ({mac, uuid, arch}) against a state. */
export function matchMachine(state: BootState, labels: Record<string, string | undefined>): BootMatch | undefined {
  return state.match(normalizeLabels(labels))
}
