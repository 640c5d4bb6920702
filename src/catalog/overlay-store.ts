/**
 * API-written groups and profiles in the Store: kind `group` or `profile`, id the entry's id, the value in
 * config.yaml's shape (for groups, Matchbox's). The files profiles name travel the same way: kind `ignition` or
 * `generic`, id the file name, value `{ name, text }`. Each is checked against its schema when read, so a document
 * that no longer fits (an older layout, an edit by hand) is named and skipped, never loaded half.
 *
 * Migration: `<data_dir>/boot/groups/<id>.json` and `boot/profiles/<id>.json`, where the release before the Store kept
 * them, are imported on first start and each kept as `<id>.json.migrated` (store/migrate.ts). A file that does not
 * parse is moved aside (`.corrupt-<time>`) and reported as before; one whose shape or name is wrong is reported and
 * left where it is, for the operator.
 */
import { readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { Type, type Static } from '@sinclair/typebox'
import { Value } from '@sinclair/typebox/value'
import type { Logger } from '../host/log.js'
import { readJsonFile } from '../host/durable-file.js'
import { retireLegacyFile, type Store } from '../store/index.js'
import { GroupSchema, ProfileSchema, type GroupInput, type ProfileInput } from './model-schema.js'
import { MAX_FILE_BYTES } from './matchbox-dir.js'

/** Every overlay kind, each also a Store kind (the daemon's shared kinds are derived from this list). */
export const OVERLAY_KINDS = ['group', 'profile', 'ignition', 'generic'] as const

/** Which overlay entry. Also the Store kind. */
export type OverlayKind = (typeof OVERLAY_KINDS)[number]

/** The kinds that are a profile's file (`ignition:` / `generic:`) rather than a catalog entry. */
export type FileKind = Extract<OverlayKind, 'ignition' | 'generic'>

export const isFileKind = (kind: OverlayKind): kind is FileKind => kind === 'ignition' || kind === 'generic'

/** A shared file: its name (the profile's `ignition:`/`generic:` value, also its id) and its text, as on disk. */
export const SharedFileSchema = Type.Object(
  // The loader's own bound on a file it reads from ignition_dir (matchbox-dir.ts MAX_FILE_BYTES), in characters.
  { name: Type.String({ minLength: 1, maxLength: 200 }), text: Type.String({ maxLength: MAX_FILE_BYTES }) },
  { additionalProperties: false },
)
export type SharedFile = Static<typeof SharedFileSchema>

const schemaOf = (kind: OverlayKind) => (kind === 'group' ? GroupSchema : kind === 'profile' ? ProfileSchema : SharedFileSchema)

const firstError = (kind: OverlayKind, value: unknown): string => {
  const first = [...Value.Errors(schemaOf(kind), value)][0]
  return first ? `${first.path || '/'} ${first.message}` : 'invalid'
}

/**
 * Why a stored document is not a usable overlay entry (its schema, or an id that does not match its key), or
 * undefined when it is one.
 */
export function overlayEntryProblem(kind: OverlayKind, id: string, value: unknown): string | undefined {
  if (!Value.Check(schemaOf(kind), value)) return firstError(kind, value)
  const named = isFileKind(kind) ? (value as SharedFile).name : (value as { id?: unknown }).id
  return named === id ? undefined : `id "${String(named)}" does not match its key`
}

/** The API-written entries and what was skipped reading them. */
export interface OverlayEntries {
  readonly groups: Map<string, GroupInput>
  readonly profiles: Map<string, ProfileInput>
  /** Shared files by name: the text. */
  readonly ignition: Map<string, string>
  readonly generic: Map<string, string>
  readonly problems: string[]
}

/** Import the legacy folders under `legacyDir` (when given), then read every overlay entry from the store. */
export async function readOverlayEntries(store: Store, legacyDir: string | undefined, logger: Logger): Promise<OverlayEntries> {
  const problems: string[] = []
  if (legacyDir !== undefined) for (const kind of ['group', 'profile'] as const) await importLegacy(store, kind, join(legacyDir, `${kind}s`), problems, logger)
  const groups = new Map<string, GroupInput>()
  const profiles = new Map<string, ProfileInput>()
  const files = { ignition: new Map<string, string>(), generic: new Map<string, string>() }
  for (const kind of OVERLAY_KINDS) {
    for (const e of await store.list(kind)) {
      const problem = overlayEntryProblem(kind, e.id, e.value)
      if (problem !== undefined) problems.push(`${store.location} ${kind} ${e.id}: ${problem}`)
      else if (kind === 'group') groups.set(e.id, e.value as GroupInput)
      else if (kind === 'profile') profiles.set(e.id, e.value as ProfileInput)
      else files[kind].set(e.id, (e.value as SharedFile).text)
    }
  }
  return { groups, profiles, ...files, problems }
}

/** Write (or with `value` undefined, remove) one entry, durably: the API answers only after this resolved. */
export async function writeOverlayEntry(store: Store, kind: OverlayKind, id: string, value: GroupInput | ProfileInput | SharedFile | undefined): Promise<void> {
  if (value === undefined) await store.delete(kind, id, { durable: true })
  else await store.put(kind, id, value, { durable: true })
}

async function importLegacy(store: Store, kind: 'group' | 'profile', folder: string, problems: string[], logger: Logger): Promise<void> {
  let names: string[]
  try {
    names = (await readdir(folder)).filter((n) => n.endsWith('.json') && !n.startsWith('.')).sort()
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') problems.push(`${folder}: ${(err as Error).message}`)
    return
  }
  for (const name of names) {
    const path = join(folder, name)
    const id = name.slice(0, -'.json'.length)
    const read = await readJsonFile(path)
    if (read.state !== 'ok') {
      if (read.state === 'corrupt') problems.push(`${path}: ${read.reason}${read.movedTo ? ` (moved to ${read.movedTo})` : ''}`)
      continue
    }
    const value = read.value as { id?: unknown }
    if (!Value.Check(schemaOf(kind), value)) problems.push(`${path}: ${firstError(kind, value)}; not imported`)
    else if (value.id !== id) problems.push(`${path}: id "${String(value.id)}" does not match the file name; not imported`)
    else {
      await store.put(kind, id, value, { durable: true })
      const kept = await retireLegacyFile(path)
      logger.info({ file: path, kept }, `imported API-written ${kind} ${id} from ${path} into ${store.location}; the old file is kept as ${kept}`)
    }
  }
}
