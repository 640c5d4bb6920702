/**
 * Groups and profiles written through the API: kept in the Store (overlay-store.ts: one document each, in
 * config.yaml's group/profile shape, which for groups is Matchbox's), merged over config.yaml's own when the boot
 * store loads. A change is checked first (a group naming a missing profile is refused with the loader's message,
 * nothing written), then written durably, then served. A group is checked and swapped in alone
 * (BootStore.editGroups: its index entries only, milliseconds at 100,000 groups); a profile, which changes what
 * every group using it renders, is trial-loaded with everything and then reloaded. A profile's file (kinds `ignition`,
 * `generic`) is prepared alone and only the groups using it are checked (BootStore.editFile). Entries config.yaml defines are
 * refused: the config file stays the truth for what it names, and a SIGHUP would otherwise silently undo an API write.
 */
import { access } from 'node:fs/promises'
import { join } from 'node:path'
import { silentLogger, type Logger } from '../host/log.js'
import { formatIgnitionError, parseTemplate, prepareIgnitionSource } from '../ignition/index.js'
import type { Store } from '../store/index.js'
import type { GroupInput, ProfileInput } from './model-schema.js'
import { loadBootState, type BootStateOptions, type LoadResult } from './state.js'
import { createBootStore, BootLoadError, type BootStore, type BootStoreOptions } from './boot-store.js'
import { groupFromConfig, type Profile } from './model.js'
import { createSlicer } from './slices.js'
import { isFileKind, overlayEntryProblem, readOverlayEntries, writeOverlayEntry, type FileKind, type OverlayKind, type SharedFile } from './overlay-store.js'

export type { FileKind, OverlayKind } from './overlay-store.js'
export { isFileKind } from './overlay-store.js'

/** The answer to an edit: done (with loader warnings) or refused with an HTTP-like status and reasons. */
export type OverlayEdit = { ok: true; warnings: string[] } | { ok: false; status: 404 | 409 | 422; errors: string[] }

/** API-written groups and profiles. */
export interface BootOverlay {
  /** `base` (config.yaml sources) plus the overlay's groups and profiles. */
  merge(base: BootStateOptions): BootStateOptions
  /** True when `id` was written through the API (and so may be changed or deleted through it). */
  has(kind: OverlayKind, id: string): boolean
  putGroup(group: GroupInput): Promise<OverlayEdit>
  putProfile(id: string, profile: ProfileInput): Promise<OverlayEdit>
  /** Write a shared `ignition:`/`generic:` file (validated as the loader validates the file). */
  putFile(kind: FileKind, name: string, text: string): Promise<OverlayEdit>
  /** The text of an API-written file, or undefined. */
  file(kind: FileKind, name: string): string | undefined
  remove(kind: OverlayKind, id: string): Promise<OverlayEdit>
  /**
   * Apply a change another appliance made in a shared store (catalog/overlay-follow.ts): checked and served as an
   * API edit is, nothing written. A value equal to the one held (this appliance's own write coming back) is skipped.
   */
  follow(kind: OverlayKind, id: string, value: unknown): Promise<OverlayEdit>
  /** The entries held now (for a re-list after a compacted watch). */
  ids(kind: OverlayKind): string[]
  /** Files skipped at load (bad JSON, bad shape, name not matching id). */
  readonly problems: readonly string[]
}

/** Options for openBootOverlay. */
export interface BootOverlayOptions {
  /** Where the entries are kept. */
  readonly store: Store
  /** `<data_dir>/boot`, where an earlier pxebox kept them as files: imported once (overlay-store.ts). */
  readonly legacyDir?: string
  /** The current config.yaml sources (changes on SIGHUP). */
  readonly base: () => BootStateOptions
  /** Load merged sources into the running boot store. */
  readonly reload: (sources: BootStateOptions) => Promise<LoadResult>
  /** The running store's BootStore.editGroups; without it a group edit also trial-loads and reloads everything. */
  readonly editGroups?: BootStore['editGroups']
  /** The running store's BootStore.editFile; without it a file edit that profiles use trial-loads and reloads everything. */
  readonly editFile?: BootStore['editFile']
  /** The running state's profiles (Matchbox-directory ones too): which profiles name a file. */
  readonly profiles?: () => ReadonlyMap<string, Profile>
  readonly logger?: Logger
}

/** Ids become file names: a safe alphabet, no leading dot. */
export const OVERLAY_ID = /^[A-Za-z0-9_@-][A-Za-z0-9._@-]{0,199}$/

/** What the store held at start: the entries that load, and the ones skipped. */
export interface BootOverlayFiles {
  /** Where they are kept. */
  readonly store: Store
  readonly groups: Map<string, GroupInput>
  readonly profiles: Map<string, ProfileInput>
  /** API-written files by name: their text. */
  readonly ignition: Map<string, string>
  readonly generic: Map<string, string>
  /** Entries and legacy files skipped at load (bad JSON, bad shape, name not matching id). */
  readonly problems: string[]
}

/** Read the overlay entries (importing legacy files from `legacyDir` once). Bad ones are reported and skipped. */
export async function readBootOverlay(store: Store, legacyDir?: string, logger: Logger = silentLogger): Promise<BootOverlayFiles> {
  const log = logger.child({ component: 'boot-overlay' })
  const { groups, profiles, ignition, generic, problems } = await readOverlayEntries(store, legacyDir, log)
  for (const p of problems) log.error(`boot overlay entry skipped: ${p}`)
  return { store, groups, profiles, ignition, generic, problems }
}

/** Where an API-written entry lives, as load messages name it. */
function apiSource(files: BootOverlayFiles, kind: OverlayKind, id: string): string {
  return `API (${files.store.location}: ${kind} ${id})`
}

/**
 * How load messages name an API-written file. It ends with the file's name: the Ignition loader tells Butane from
 * Ignition by the name's extension, as it does for a file in ignition_dir.
 */
function apiFilePath(files: BootOverlayFiles, kind: FileKind, name: string): string {
  return `API (${files.store.location}) ${kind}/${name}`
}

/**
 * `base` (config.yaml sources) plus the overlay's groups and profiles. API-written entries name their own file
 * (issue 13 item 13: they said config.yaml, where no operator finds them). An id config.yaml defines is config.yaml's:
 * the overlay's entry of that id is left out (a SIGHUP-edited config.yaml took it over, or, with a shared store,
 * another appliance wrote it through its API: config.yaml's own groups and profiles stay local and win).
 */
export function mergeBootOverlay(
  files: BootOverlayFiles,
  base: BootStateOptions,
  g = files.groups,
  p = files.profiles,
  shared: { ignition: ReadonlyMap<string, string>; generic: ReadonlyMap<string, string> } = files,
): BootStateOptions {
  const profiles = Object.fromEntries([...p].filter(([id]) => !Object.hasOwn(base.profiles, id)))
  // The group list is built when a load reads it, not per edit: an API group write hands these sources on for later
  // reloads, and copying 100,000 API-written groups on each write made one write cost O(groups) (issue 16).
  let groups: GroupInput[] | undefined
  return {
    ...base,
    profiles: { ...base.profiles, ...profiles },
    sharedFiles: { ignition: shared.ignition, generic: shared.generic, source: (kind, name) => apiFilePath(files, kind, name) },
    get groups(): GroupInput[] {
      if (groups === undefined) {
        const baseGroups = new Set(base.groups.map((x) => x.id))
        groups = [...base.groups, ...[...g.values()].filter((x) => !baseGroups.has(x.id))]
      }
      return groups
    },
    entrySource: (kind, id, index) => {
      const own = kind === 'group' ? index >= base.groups.length : Object.hasOwn(profiles, id)
      return own ? apiSource(files, kind, id) : base.entrySource?.(kind, id, index)
    },
  }
}

/** Read the overlay entries and return the overlay editing them (see bootOverlayOver). */
export async function openBootOverlay(opts: BootOverlayOptions): Promise<BootOverlay> {
  return bootOverlayOver(await readBootOverlay(opts.store, opts.legacyDir, opts.logger), opts)
}

/** The overlay over what readBootOverlay found: edits trial-load, write, then reload through `opts.reload`. */
export function bootOverlayOver(files: BootOverlayFiles, opts: BootOverlayOptions): BootOverlay {
  const logger = (opts.logger ?? silentLogger).child({ component: 'boot-overlay' })
  const { groups, profiles, problems } = files
  const fileMaps: Record<FileKind, Map<string, string>> = { ignition: files.ignition, generic: files.generic }
  const merge = (base: BootStateOptions, g = groups, p = profiles, f = fileMaps): BootStateOptions => mergeBootOverlay(files, base, g, p, f)
  const inBase = (kind: 'group' | 'profile', id: string): boolean => {
    const base = opts.base()
    return kind === 'group' ? base.groups.some((g) => g.id === id) : Object.hasOwn(base.profiles, id)
  }
  /**
   * The local directories profiles read this kind of file from (state.ts's rule): config.yaml's (`ignition_dir`,
   * default `<matchbox_dir>/ignition`) and the Matchbox folder's own, which its profiles read.
   */
  const localDirs = (kind: FileKind): string[] => {
    const b = opts.base()
    const dirs = [(kind === 'ignition' ? b.ignitionDir : b.genericDir), b.matchboxDir !== undefined ? join(b.matchboxDir, kind) : undefined]
    return [...new Set(dirs.filter((d): d is string => d !== undefined))]
  }
  const localFile = async (kind: FileKind, name: string): Promise<string | undefined> => {
    for (const dir of localDirs(kind)) {
      const path = join(dir, name)
      if (await access(path).then(() => true, () => false)) return path
    }
    return undefined
  }
  /** Ids of the profiles (running, config.yaml's, API-written) that name this file. */
  const usersOf = (kind: FileKind, name: string): string[] => {
    const ids = new Set<string>()
    for (const p of opts.profiles?.().values() ?? []) if (p[kind] === name) ids.add(p.id)
    for (const [id, p] of [...Object.entries(opts.base().profiles), ...profiles]) if (p[kind] === name) ids.add(id)
    return [...ids].sort()
  }
  /** The loader's checks of the file alone (state.ts/templates.ts run the same on a load), its errors as it words them. */
  const fileErrors = async (kind: FileKind, name: string, text: string): Promise<string[]> => {
    const path = apiFilePath(files, kind, name)
    if (kind === 'generic') {
      const r = parseTemplate(text)
      return r.ok ? [] : r.errors.map((e) => `${path}:${e.line}:${e.col}: ${e.message}`)
    }
    const filesDir = opts.base().filesDir
    const r = await prepareIgnitionSource({ file: path, text, ...(filesDir !== undefined ? { filesDir } : {}) })
    return r.ok ? [] : r.errors.map((e) => formatIgnitionError(e))
  }

  // Edits run one at a time: each trial-loads against the result of the previous one.
  let queue: Promise<unknown> = Promise.resolve()
  const serial = <T>(fn: () => Promise<T>): Promise<T> => {
    const run = queue.then(fn)
    queue = run.catch(() => undefined)
    return run
  }

  /**
   * A file change: refused for a name the local directory has (it wins) and, for a delete, while a profile names
   * it; checked alone as the loader checks it; then, when profiles use it, trial-loaded with everything and reloaded.
   * A file no profile names yet is only written: the load that first needs it reads it from the overlay's map.
   */
  const editFile = async (kind: FileKind, name: string, text: string | undefined, fromStore: boolean): Promise<OverlayEdit> => {
    const map = fileMaps[kind]
    if (fromStore && map.get(name) === text) return { ok: true, warnings: [] }
    const local = await localFile(kind, name)
    if (local !== undefined) {
      if (!fromStore) return { ok: false, status: 409, errors: [`${kind} "${name}" is a file of this appliance's ${kind} directory (${local}); change it there (a local file wins over an API-written one)`] }
      if (text === undefined) map.delete(name)
      else map.set(name, text)
      logger.info({ kind, id: name }, `shared ${kind} ${name} changed in the store; the local file ${local} stays in use here`)
      return { ok: true, warnings: [] }
    }
    if (text === undefined && !map.has(name)) return { ok: false, status: 404, errors: [`no API-managed ${kind} "${name}"`] }
    const users = usersOf(kind, name)
    if (text === undefined && users.length > 0 && !fromStore) {
      return { ok: false, status: 409, errors: [`${kind} "${name}" is named by profile${users.length > 1 ? 's' : ''} ${users.map((u) => `"${u}"`).join(', ')}; change or delete ${users.length > 1 ? 'them' : 'it'} first`] }
    }
    if (text !== undefined) {
      const errors = await fileErrors(kind, name, text)
      if (errors.length > 0) return { ok: false, status: 422, errors }
    }
    const commit = async () => {
      if (!fromStore) await writeOverlayEntry(opts.store, kind, name, text === undefined ? undefined : ({ name, text } satisfies SharedFile))
      if (text === undefined) map.delete(name)
      else map.set(name, text)
      logger.info({ kind, id: name, action: text === undefined ? 'delete' : 'put', ...(fromStore ? { from: 'store' } : {}) }, fromStore ? 'boot overlay changed in the shared store' : 'boot overlay changed')
    }
    if (users.length === 0) {
      await commit()
      return { ok: true, warnings: [] }
    }
    if (opts.editFile !== undefined) {
      // The overlay's own maps hold the change once `commit` ran, which is before the store reads these sources.
      const edited = await opts.editFile(kind, name, text, merge(opts.base()), commit)
      return edited.ok ? { ok: true, warnings: edited.warnings } : { ok: false, status: 422, errors: edited.errors }
    }
    const next = new Map(map)
    if (text === undefined) next.delete(name)
    else next.set(name, text)
    const trial = await loadBootState({ ...merge(opts.base(), groups, profiles, { ...fileMaps, [kind]: next }), slicer: createSlicer() })
    if (!trial.ok) return { ok: false, status: 422, errors: trial.errors }
    await commit()
    const loaded = await opts.reload(merge(opts.base()))
    if (!loaded.ok) return { ok: false, status: 422, errors: loaded.errors }
    return { ok: true, warnings: loaded.warnings }
  }

  /** `fromStore`: a change seen in the store (follow), applied here without writing it. */
  const edit = (kind: OverlayKind, id: string, value: GroupInput | ProfileInput | SharedFile | undefined, fromStore = false): Promise<OverlayEdit> =>
    serial(async () => {
      if (!OVERLAY_ID.test(id)) return { ok: false, status: 422, errors: [`id "${id}" may only use letters, digits, '.', '_', '@' and '-' and not start with '.'`] }
      if (isFileKind(kind)) return editFile(kind, id, (value as SharedFile | undefined)?.text, fromStore)
      const map = (kind === 'group' ? groups : profiles) as Map<string, GroupInput | ProfileInput>
      if (fromStore) {
        const held = map.get(id)
        if (JSON.stringify(held) === JSON.stringify(value)) return { ok: true, warnings: [] }
        // Shadowed by config.yaml's own entry (mergeBootOverlay leaves it out): known, not served.
        if (inBase(kind, id)) {
          if (value === undefined) map.delete(id)
          else map.set(id, value as GroupInput | ProfileInput)
          logger.info({ kind, id }, `shared ${kind} ${id} changed in the store; config.yaml's own ${kind} ${id} stays in use here`)
          return { ok: true, warnings: [] }
        }
      }
      if (!fromStore && inBase(kind, id)) {
        return { ok: false, status: 409, errors: [`${kind} "${id}" is defined in ${opts.base().configName ?? 'config.yaml'}; change it there (API writes only manage their own entries)`] }
      }
      if (value === undefined && !map.has(id)) return { ok: false, status: 404, errors: [`no API-managed ${kind} "${id}"`] }
      const commit = async () => {
        if (!fromStore) await writeOverlayEntry(opts.store, kind, id, value)
        if (value === undefined) map.delete(id)
        else map.set(id, value as GroupInput | ProfileInput)
        logger.info({ kind, id, action: value === undefined ? 'delete' : 'put', ...(fromStore ? { from: 'store' } : {}) }, fromStore ? 'boot overlay changed in the shared store' : 'boot overlay changed')
      }

      if (kind === 'group' && opts.editGroups !== undefined) {
        // The source text a full load gives an API group (mergeBootOverlay's entrySource), so messages match.
        const built = value === undefined ? undefined : groupFromConfig(value as GroupInput, apiSource(files, kind, id))
        if (built !== undefined && !built.ok) return { ok: false, status: 422, errors: built.errors }
        // The overlay's own maps hold the change once `commit` ran, which is before editGroups reads these sources.
        const edited = await opts.editGroups([{ id, ...(built !== undefined ? { group: built.value } : {}) }], merge(opts.base()), commit)
        if (!edited.ok) return { ok: false, status: 422, errors: edited.errors }
        return { ok: true, warnings: edited.warnings }
      }

      const nextGroups = new Map(groups)
      const nextProfiles = new Map(profiles)
      const target = (kind === 'group' ? nextGroups : nextProfiles) as Map<string, GroupInput | ProfileInput>
      if (value === undefined) target.delete(id)
      else target.set(id, value as GroupInput | ProfileInput)
      const trial = await loadBootState({ ...merge(opts.base(), nextGroups, nextProfiles), slicer: createSlicer() })
      if (!trial.ok) return { ok: false, status: 422, errors: trial.errors }
      await commit()
      const loaded = await opts.reload(merge(opts.base()))
      // Between the trial and now a watched Matchbox file may have changed; the store then keeps its last good state.
      if (!loaded.ok) return { ok: false, status: 422, errors: loaded.errors }
      return { ok: true, warnings: loaded.warnings }
    })

  return {
    merge: (base) => merge(base),
    has: (kind, id) => (kind === 'group' ? groups : kind === 'profile' ? profiles : fileMaps[kind]).has(id),
    putGroup: (group) => edit('group', group.id, group),
    putProfile: (id, profile) => edit('profile', id, { ...profile, id }),
    putFile: (kind, name, text) => edit(kind, name, { name, text }),
    file: (kind, name) => fileMaps[kind].get(name),
    remove: (kind, id) => edit(kind, id, undefined),
    follow: async (kind, id, value) => {
      const problem = value === undefined ? undefined : overlayEntryProblem(kind, id, value)
      if (problem !== undefined) return { ok: false, status: 422, errors: [`${opts.store.location} ${kind} ${id}: ${problem}`] }
      return edit(kind, id, value as GroupInput | ProfileInput | SharedFile | undefined, true)
    },
    ids: (kind) => [...(kind === 'group' ? groups : kind === 'profile' ? profiles : fileMaps[kind]).keys()],
    problems,
  }
}

/**
 * Create the daemon's boot store over config.yaml plus the overlay. When the overlay no longer loads with the
 * config (a SIGHUP-edited config.yaml now defines the same id, or dropped a profile an API group names), pxebox
 * starts on the config alone (with the API-written files) and says so: the overlay entries stay for the operator to fix.
 */
export async function createBootStoreWithOverlay(
  base: BootStateOptions,
  overlay: Pick<BootOverlay, 'merge'>,
  logger: Logger,
  store: Pick<BootStoreOptions, 'watch' | 'debounceMs'> = {},
): Promise<BootStore> {
  try {
    return await createBootStore({ ...overlay.merge(base), ...store, logger })
  } catch (err) {
    if (!(err instanceof BootLoadError)) throw err
    // The API-written files stay: a config.yaml profile may name one (a name its own directory lacks).
    const sharedFiles = overlay.merge(base).sharedFiles
    const alone = { ...base, ...(sharedFiles !== undefined ? { sharedFiles } : {}) }
    if (!(await loadBootState(alone)).ok) throw err
    logger.error({ errors: err.errors }, 'API-written groups/profiles (in the store) do not load with config.yaml; starting without them')
    return createBootStore({ ...alone, ...store, logger })
  }
}
