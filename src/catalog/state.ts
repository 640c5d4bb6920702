/**
 * Boot state: every profile, group, template and the match index, loaded from config.yaml objects and an optional
 * Matchbox directory, validated as a whole. A `BootStore` holds the current state and swaps it only for a new state
 * that loaded without errors, so a bad file on disk is reported (file and reason) while the last good state keeps
 * serving. Reloads come from `reload()` (the daemon's SIGHUP) and from fs.watch on the Matchbox directory.
 */
import { watch, type FSWatcher } from 'node:fs'
import { basename, dirname, join } from 'node:path'
import { silentLogger, type Logger } from '../host/log.js'
import type { GroupInput, ProfileInput } from './model-schema.js'
import { groupFromConfig, groupFromMatchbox, profileFromConfig, profileFromMatchbox, type Group, type Profile } from './model.js'
import { buildMatcher, type Matcher } from './match.js'
import { matchboxWatchDirs, readMatchboxDir, readSmallFile } from './matchbox-dir.js'
import { normalizeLabels, type Labels } from './labels.js'
import { urlBasename } from './boot-plan.js'
import { prepareTemplates, templateKey, type PreparedTemplates, type TemplateFile } from './templates.js'

export { templateKey } from './templates.js'

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
  /** Matchbox-layout data directory (groups/, profiles/, ignition/, generic/). */
  readonly matchboxDir?: string
  /** Where config.yaml profiles' `ignition:` files live; default `<matchboxDir>/ignition`. */
  readonly ignitionDir?: string
  /** Where config.yaml profiles' `generic:` files live; default `<matchboxDir>/generic`. */
  readonly genericDir?: string
  /** Where Butane `local:` contents are read from (config `butane_files_dir`); without it `local:` is an error. */
  readonly filesDir?: string
}

/** Everything loadBootState needs. */
export interface BootStateOptions extends BootSources {
  readonly logger?: Logger
}

/** What a matched machine gets. */
export interface BootMatch {
  readonly group: Group
  readonly profile: Profile
}

/** An asset path's role in some profile, for boot events. */
export type AssetRole = 'kernel' | 'initrd'

/** One immutable, fully validated snapshot. */
export interface BootState {
  readonly loadedAt: string
  readonly profiles: ReadonlyMap<string, Profile>
  readonly groups: readonly Group[]
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
  const errors: string[] = []
  const warnings: string[] = []
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

  Object.entries(opts.profiles).forEach(([id, input], i) => {
    const r = profileFromConfig(id, input, opts.entrySource?.('profile', id, i) ?? `${configName} profiles.${id}`)
    if (r.ok) addProfile(r.value)
    else errors.push(...r.errors)
  })
  opts.groups.forEach((input, i) => {
    const r = groupFromConfig(input, opts.entrySource?.('group', input.id, i) ?? `${configName} groups[${i}]`)
    if (r.ok) addGroup(r.value)
    else errors.push(...r.errors)
  })

  // Where a profile's template lives: its own Matchbox dir for Matchbox profiles, the configured dirs for config.yaml.
  const templateDir = new Map<string, { ignition?: string; generic?: string }>()
  if (opts.matchboxDir !== undefined) {
    const dir = await readMatchboxDir(opts.matchboxDir)
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
      const r = groupFromMatchbox(f.data, f.path)
      if (r.ok) addGroup(r.value)
      else errors.push(...r.errors)
    }
  }

  for (const g of groups.values()) {
    if (!profiles.has(g.profile)) errors.push(`${g.source}: group "${g.id}" names profile "${g.profile}", which does not exist`)
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
      if (dir === undefined) {
        errors.push(`${p.source}: ${kind} "${name}" given but no ${kind} directory is configured`)
        continue
      }
      const path = join(dir, name)
      reads.push(path)
      try {
        const text = await readSmallFile(path)
        templates.set(templateKey(kind, p), text)
        files.set(templateKey(kind, p), { path, text })
      } catch (err) {
        errors.push(`${p.source}: ${kind} file ${path}: ${(err as Error).message}`)
      }
    }
  }

  const groupList = [...groups.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
  const { matcher, errors: matchErrors } = buildMatcher(groupList)
  errors.push(...matchErrors)
  // Ignition/Butane problems are load errors (a machine must never get a broken config); per-group template misses
  // are warnings (only that group's machines are affected, and they get a 404 naming the key).
  const prepared = await prepareTemplates(profiles, groupList, files, opts.filesDir)
  errors.push(...prepared.errors)
  warnings.push(...prepared.warnings)
  if (errors.length > 0) return { ok: false, errors, warnings, reads }

  const assetRoles = new Map<string, AssetRole>()
  for (const p of profiles.values()) {
    if (!p.boot) continue
    assetRoles.set(urlPath(p.boot.kernel), 'kernel')
    for (const initrd of p.boot.initrds) if (!assetRoles.has(urlPath(initrd.url))) assetRoles.set(urlPath(initrd.url), 'initrd')
  }

  const state: BootState = {
    loadedAt: new Date().toISOString(),
    profiles,
    groups: groupList,
    matcher,
    templates,
    ignition: prepared.ignition,
    generic: prepared.generic,
    assetRoles,
    match(labels) {
      const group = matcher.match(labels)
      if (group === undefined) return undefined
      return { group, profile: profiles.get(group.profile)! }
    },
  }
  return { ok: true, state, warnings, reads }
}

/** The path part of a URL (root-relative or absolute), as requests for it will arrive. */
function urlPath(url: string): string {
  const noQuery = url.replace(/[?#].*$/, '')
  const m = /^[a-z][a-z0-9+.-]*:\/\/[^/]*(\/.*)?$/i.exec(noQuery)
  if (m) return m[1] ?? '/'
  return noQuery.startsWith('/') ? noQuery : `/${urlBasename(noQuery)}`
}

/** Holds the current BootState. */
export interface BootStore {
  /** The current state (always a good one). */
  get(): BootState
  /**
   * Load again (with new config.yaml sources if given, e.g. after SIGHUP re-read the config). On success the new state
   * serves from the next request; on failure the errors are logged and the previous state keeps serving.
   */
  reload(sources?: BootSources): Promise<LoadResult>
  /** Stop watching. */
  close(): void
}

/** Thrown by createBootStore when the first load fails: there is no good state to fall back on. */
export class BootLoadError extends Error {
  readonly code = 'ERR_BOOT_LOAD'
  readonly errors: string[]
  constructor(errors: string[]) {
    super(`boot configuration has ${errors.length} error(s):\n  ${errors.join('\n  ')}`)
    this.name = 'BootLoadError'
    this.errors = errors
  }
}

/** Options for createBootStore. */
export interface BootStoreOptions extends BootStateOptions {
  /** Reload when the files the catalog reads change (default true when a Matchbox/ignition/generic/files folder is set). */
  readonly watch?: boolean
  /** Quiet period after the last change before reloading (editors and Terraform write several files). Default 300 ms. */
  readonly debounceMs?: number
}

/** Load once (throws BootLoadError on errors) and return a store that reloads on demand and on file changes. */
export async function createBootStore(opts: BootStoreOptions): Promise<BootStore> {
  const logger = (opts.logger ?? silentLogger).child({ component: 'boot-state' })
  const { watch: watching, debounceMs = 300, logger: _logger, ...initial } = opts
  // The sources of the last good load: watcher reloads read these, and the watchers follow their folders.
  let sources: BootSources = initial
  let pending: BootSources | undefined
  const first = await loadBootState(opts)
  for (const w of first.warnings) logger.warn(w)
  if (!first.ok) throw new BootLoadError(first.errors)
  let current = first.state
  let reads = first.reads
  logger.info({ groups: current.groups.length, profiles: current.profiles.size }, 'boot state loaded')

  // Reloads run one at a time. Calls made while one runs share a single follow-up load, which starts after it and
  // reads the newest sources; calls made before that follow-up starts get its result.
  let queue: Promise<unknown> = Promise.resolve()
  let queued: Promise<LoadResult> | undefined
  const runReload = async (): Promise<LoadResult> => {
    const trying = pending ?? sources
    pending = undefined
    const result = await loadBootState({ ...trying, logger })
    for (const w of result.warnings) logger.warn(w)
    if (result.ok) {
      current = result.state
      sources = trying
      reads = result.reads
      logger.info({ groups: current.groups.length, profiles: current.profiles.size }, 'boot state reloaded')
    } else {
      for (const e of result.errors) logger.error({ reason: e }, 'boot reload failed; previous state keeps serving')
    }
    syncWatchers()
    return result
  }
  const reload = (next?: BootSources): Promise<LoadResult> => {
    if (next) pending = next
    if (queued) return queued
    const run = queue.then(() => {
      queued = undefined
      return runReload()
    })
    queued = run
    queue = run.catch(() => undefined)
    return run
  }

  const watchers = new Map<string, FSWatcher>()
  let plan: WatchPlan = new Map()
  let timer: NodeJS.Timeout | undefined
  let closed = false
  const onChange = (dir: string, name: string | null) => {
    if (closed) return
    // Only the files a load reads: data_dir, a log file or an editor's swap file in a watched folder must not
    // reload the whole catalog on every write (one SIGHUP used to cause three reloads).
    const wanted = plan.get(dir)
    if (wanted === undefined || (name !== null && !wanted(name))) return
    if (timer) clearTimeout(timer)
    timer = setTimeout(() => {
      timer = undefined
      reload().catch((err: unknown) => logger.error({ err }, 'boot reload crashed'))
    }, debounceMs)
  }
  const enabled = watching ?? (initial.matchboxDir ?? initial.ignitionDir ?? initial.genericDir ?? initial.filesDir) !== undefined
  // After every load: the folders of the current sources (a SIGHUP may have moved them), and folders that appeared
  // since (Matchbox creates them lazily; the root's watcher sees them created).
  function syncWatchers(): void {
    if (closed) return
    plan = enabled ? watchPlan(sources, reads) : new Map()
    for (const [dir, w] of watchers) {
      if (plan.has(dir)) continue
      w.close()
      watchers.delete(dir)
    }
    for (const dir of plan.keys()) {
      if (watchers.has(dir)) continue
      try {
        const w = watch(dir, { persistent: false }, (_event, name) => onChange(dir, name === null ? null : String(name)))
        w.on('error', (err) => {
          logger.warn({ err, dir }, 'watch failed; reload with SIGHUP')
          w.close()
          watchers.delete(dir)
        })
        watchers.set(dir, w)
      } catch {
        // Not there yet; the root watcher will see it created.
      }
    }
  }
  syncWatchers()

  return {
    get: () => current,
    reload,
    close() {
      closed = true
      if (timer) clearTimeout(timer)
      for (const w of watchers.values()) w.close()
      watchers.clear()
    },
  }
}

/** Per watched folder, which entry names are files a load reads. */
type WatchPlan = Map<string, (name: string) => boolean>

/** Editor and tool droppings (.#x, x~, .x.swp, x.tmp, x.log): never read by a load. */
const dropping = (name: string): boolean => name.startsWith('.') || name.endsWith('~') || /\.(swp|swx|tmp|log)$/i.test(name)

/**
 * What to watch for `sources`: the Matchbox root for its four folders appearing, groups/ and profiles/ for the
 * `*.json` readMatchboxDir reads, each template folder for the files the last load read (`reads`, which includes a
 * missing one, so creating it reloads), and the Butane files folder for any file (`local:` may name any).
 */
function watchPlan(sources: BootSources, reads: readonly string[]): WatchPlan {
  const plan: WatchPlan = new Map()
  const m = sources.matchboxDir
  if (m !== undefined) {
    const [root, groups, profiles, ignition, generic] = matchboxWatchDirs(m)
    const folders = new Set([groups, profiles, ignition, generic].map((d) => basename(d!)))
    plan.set(root!, (name) => folders.has(name))
    const json = (name: string) => name.endsWith('.json') && !dropping(name)
    plan.set(groups!, json)
    plan.set(profiles!, json)
    // Watched even before a profile names a file there, so a folder created late is picked up.
    plan.set(ignition!, () => false)
    plan.set(generic!, () => false)
  }
  const names = new Map<string, Set<string>>()
  for (const path of reads) {
    const dir = dirname(path)
    names.set(dir, (names.get(dir) ?? new Set()).add(basename(path)))
  }
  for (const [dir, set] of names) plan.set(dir, (name) => set.has(name))
  if (sources.filesDir !== undefined) {
    const before = plan.get(sources.filesDir)
    plan.set(sources.filesDir, (name) => !dropping(name) || before?.(name) === true)
  }
  return plan
}

/** Convenience for the DHCP side: match raw labels ({mac, uuid, arch}) against a state. */
export function matchMachine(state: BootState, labels: Record<string, string | undefined>): BootMatch | undefined {
  return state.match(normalizeLabels(labels))
}
