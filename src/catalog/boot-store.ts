/**
 * The running catalog: a `BootStore` holds the current BootState (state.ts) and swaps it only for a new state that
 * loaded without errors, so a bad file on disk is reported (file and reason) while the last good state keeps
 * serving. Reloads come from `reload()` (the daemon's SIGHUP) and from fs.watch on the folders a load read; single
 * groups (`editGroups`) and single shared files (`editFile`) change without a full load.
 */
import { watch, type FSWatcher } from 'node:fs'
import { join } from 'node:path'
import { silentLogger } from '../host/log.js'
import { createSlicer } from './slices.js'
import { groupFileChanges, type GroupChange } from './group-editor.js'
import { watchPlan, type WatchPlan } from './watch-plan.js'
import { loadCatalogState, type BootSources, type BootState, type BootStateOptions, type LoadResult } from './state.js'

/** Holds the current BootState. */
export interface BootStore {
  /** The current state (always a good one). */
  get(): BootState
  /**
   * Load again (with new config.yaml sources if given, e.g. after SIGHUP re-read the config). On success the new state
   * serves from the next request; on failure the errors are logged and the previous state keeps serving.
   */
  reload(sources?: BootSources): Promise<LoadResult>
  /**
   * Change single groups without loading everything: each changed group is checked against the current state (the
   * errors and warnings a full load would report for it); on errors nothing changes. Else `commit` runs (the
   * caller's durable write; a throw from it changes nothing), the groups' index entries are updated, and `next`
   * (the sources that now hold the change) becomes what later reloads read. Runs in turn with reloads.
   */
  editGroups(changes: readonly GroupChange[], next?: BootSources, commit?: () => Promise<void>): Promise<LoadResult>
  /**
   * Change one shared (API-written) file without loading everything (file-editor.ts): the file is prepared alone
   * and only the groups whose profile takes it from the store are checked; then as editGroups (`commit`, `next`).
   */
  editFile(kind: 'ignition' | 'generic', name: string, text: string | undefined, next?: BootSources, commit?: () => Promise<void>): Promise<LoadResult>
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
  const first = await loadCatalogState(opts)
  for (const w of first.warnings) logger.warn(w)
  if (!first.ok) throw new BootLoadError(first.errors)
  let current = first.state
  let editor = first.editor
  let editFileOf = first.editFile
  let reads = first.reads
  logger.info({ groups: current.groupCount, profiles: current.profiles.size }, 'boot state loaded')

  // Reloads run one at a time. Calls made while one runs share a single follow-up load, which starts after it and
  // reads the newest sources; calls made before that follow-up starts get its result.
  let queue: Promise<unknown> = Promise.resolve()
  let queued: Promise<LoadResult> | undefined
  const runReload = async (): Promise<LoadResult> => {
    const trying = pending ?? sources
    pending = undefined
    // Built in slices beside the serving state, which answers until the swap below.
    const loaded = await loadCatalogState({ ...trying, logger, slicer: opts.slicer ?? createSlicer() })
    for (const w of loaded.warnings) logger.warn(w)
    let result: LoadResult
    if (loaded.ok) {
      current = loaded.state
      editor = loaded.editor
      editFileOf = loaded.editFile
      sources = trying
      reads = loaded.reads
      logger.info({ groups: current.groupCount, profiles: current.profiles.size }, 'boot state reloaded')
      result = { ok: true, state: loaded.state, warnings: loaded.warnings, reads: loaded.reads }
    } else {
      for (const e of loaded.errors) logger.error({ reason: e }, 'boot reload failed; previous state keeps serving')
      result = loaded
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
  const editGroups = (changes: readonly GroupChange[], next?: BootSources, commit?: () => Promise<void>): Promise<LoadResult> => {
    const run = queue.then(async (): Promise<LoadResult> => {
      const t0 = performance.now()
      const { errors, warnings } = await editor.check(changes)
      for (const w of warnings) logger.warn(w)
      if (errors.length > 0) return { ok: false, errors, warnings, reads }
      const t1 = performance.now()
      await commit?.()
      const t2 = performance.now()
      editor.apply(changes)
      if (next !== undefined) sources = next
      // The parts' times: an edit is meant to take milliseconds at any catalog size (issue 16), and the commit is the
      // caller's durable write, whose time is the disk's.
      const ms = (x: number): number => Math.round(x * 100) / 100
      logger.info({ changed: changes.map((c) => c.id), groups: current.groupCount, checkMs: ms(t1 - t0), commitMs: ms(t2 - t1), applyMs: ms(performance.now() - t2) }, 'boot groups changed')
      return { ok: true, state: current, warnings, reads }
    })
    queue = run.catch(() => undefined)
    return run
  }

  const editFile = (kind: 'ignition' | 'generic', name: string, text: string | undefined, next?: BootSources, commit?: () => Promise<void>): Promise<LoadResult> => {
    const run = queue.then(async (): Promise<LoadResult> => {
      const t0 = performance.now()
      const r = await editFileOf(kind, name, text)
      for (const w of r.warnings) logger.warn(w)
      if (!r.ok) return { ok: false, errors: r.errors, warnings: r.warnings, reads }
      const t1 = performance.now()
      await commit?.()
      const t2 = performance.now()
      ;({ state: current, editor } = r.apply())
      if (next !== undefined) sources = next
      const ms = (x: number): number => Math.round(x * 100) / 100
      logger.info({ kind, name, profiles: r.users, groups: current.groupCount, checkMs: ms(t1 - t0), commitMs: ms(t2 - t1) }, 'boot file changed')
      return { ok: true, state: current, warnings: r.warnings, reads }
    })
    queue = run.catch(() => undefined)
    return run
  }

  const watchers = new Map<string, FSWatcher>()
  let plan: WatchPlan = new Map()
  let timer: NodeJS.Timeout | undefined
  let closed = false
  // What changed since the last debounce: Matchbox group files by name (re-read alone), or anything else (full load).
  let changedGroupFiles = new Set<string>()
  let changedOther = false
  const onChange = (dir: string, name: string | null) => {
    if (closed) return
    // Only the files a load reads: data_dir, a log file or an editor's swap file in a watched folder must not
    // reload the whole catalog on every write (one SIGHUP used to cause three reloads).
    const wanted = plan.get(dir)
    if (wanted === undefined || (name !== null && !wanted(name))) return
    const groupsDir = sources.matchboxDir === undefined ? undefined : join(sources.matchboxDir, 'groups')
    if (dir === groupsDir && name !== null) changedGroupFiles.add(join(dir, name))
    else changedOther = true
    if (timer) clearTimeout(timer)
    timer = setTimeout(() => {
      timer = undefined
      const files = [...changedGroupFiles]
      const full = changedOther
      changedGroupFiles = new Set()
      changedOther = false
      const refuse = (errors: readonly string[]) => {
        for (const e of errors) logger.error({ reason: e }, 'boot group change refused; previous state keeps serving')
      }
      let done: Promise<LoadResult>
      if (full) done = reload()
      else {
        const read = groupFileChanges(files, editor)
        refuse(read.errors)
        done = editGroups(read.changes, sources)
      }
      done.then((r) => (full || r.ok ? undefined : refuse(r.errors))).catch((err: unknown) => logger.error({ err }, 'boot reload crashed'))
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
    editGroups,
    editFile,
    close() {
      closed = true
      if (timer) clearTimeout(timer)
      for (const w of watchers.values()) w.close()
      watchers.clear()
    },
  }
}
