/**
 * Reading a Matchbox data directory (`/var/lib/matchbox`): `groups/*.json`, `profiles/*.json`, and the
 * `ignition/` and `generic/` templates profiles name. Matchbox reads these files on every request; pxebox reads them
 * once per (re)load and keeps the result in memory.
 */
import { stat } from 'node:fs/promises'
import { join } from 'node:path'
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv'
import { readConfigFile, readConfigFileSync, type ConfigFileError } from '../host/read-file.js'
import { fileBatchReader, listFolder } from '../host/read-files.js'
import { MatchboxGroupFileSchema, MatchboxProfileFileSchema, type MatchboxGroupFile, type MatchboxProfileFile } from './model-schema.js'
import { sortSliced, unsliced, type Slicer } from './slices.js'

/** One parsed, schema-valid file and where it came from. */
export interface SourcedFile<T> {
  readonly path: string
  readonly data: T
}

/** What a Matchbox directory holds; `errors` name the file and the reason. */
export interface MatchboxDirContents {
  readonly groups: SourcedFile<MatchboxGroupFile>[]
  readonly profiles: SourcedFile<MatchboxProfileFile>[]
  readonly errors: string[]
  /** Non-fatal notes (e.g. a profile's cloud_id, which pxebox does not serve). */
  readonly warnings: string[]
}

/** Largest template or JSON file read; a bigger one is a mistake (an image copied into the wrong folder). */
export const MAX_FILE_BYTES = 4 * 1024 * 1024

/** Format Ajv errors as one line each: `/selector/mac must be string` or `unknown key "selectors"`. */
export function formatSchemaErrors(errors: ErrorObject[] | null | undefined): string[] {
  return (errors ?? []).map((e) => {
    if (e.keyword === 'additionalProperties') {
      return `${e.instancePath || '/'}: unknown key "${String((e.params as { additionalProperty: string }).additionalProperty)}"`
    }
    return `${e.instancePath || '/'}: ${e.message ?? e.keyword}`
  })
}

/** The compiled schemas of both file kinds. */
export interface MatchboxValidators {
  readonly group: ValidateFunction<MatchboxGroupFile>
  readonly profile: ValidateFunction<MatchboxProfileFile>
}

/**
 * The validators, compiled on first use and kept. Compiling them took ~100 ms, on the event loop in one piece, at
 * every reload and at every changed group file (issue 16). A memo of a pure function of constant schemas, as
 * ignition/validate.ts keeps its own: the one kind of module-level state allowed. Sharing them is safe because a
 * validator's per-call state (`.errors`) is read synchronously right after its call (readMatchboxFile), before any
 * other call can run.
 */
export function matchboxValidators(): MatchboxValidators {
  compiled ??= (() => {
    const ajv = new Ajv({ allErrors: true, strict: false })
    return { group: ajv.compile<MatchboxGroupFile>(MatchboxGroupFileSchema), profile: ajv.compile<MatchboxProfileFile>(MatchboxProfileFileSchema) }
  })()
  return compiled
}

let compiled: MatchboxValidators | undefined

/** JSON file names of a folder, sorted; a missing folder is empty (Matchbox creates them lazily). */
async function jsonFiles(dir: string, slicer: Slicer): Promise<string[]> {
  try {
    // NUL-terminated names, decoded here in slices: readdir's array of 100,000 names was built on the loop in one
    // piece (host/read-files.ts).
    const list = await listFolder(dir)
    // Editor droppings (.#x.json, x.json~, .x.json.swp) are not groups. Filtered in slices, as they are sorted.
    const json: string[] = []
    for (let at = 0, i = 0; at < list.length; i++) {
      if ((i & 4095) === 0) {
        const y = slicer.slice()
        if (y) await y
      }
      const end = list.indexOf(0, at)
      const n = list.toString('utf8', at, end)
      at = end + 1
      if (n.endsWith('.json') && !n.startsWith('.')) json.push(n)
    }
    return await sortSliced(json, (n) => n, slicer)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return []
    throw err
  }
}

/** Read a small text file: a regular file only (never a FIFO or device) of at most MAX_FILE_BYTES. */
export async function readSmallFile(path: string): Promise<string> {
  return readConfigFile(path, MAX_FILE_BYTES)
}

/** One group or profile file's text (or why it was not read) parsed and schema-checked, or its errors (file named). */
export function parseMatchboxFile<T>(
  path: string,
  text: string | ConfigFileError,
  validate: ValidateFunction<T>,
): { ok: true; file: SourcedFile<T> } | { ok: false; errors: string[]; missing: boolean } {
  let data: unknown
  try {
    if (typeof text !== 'string') throw text
    data = JSON.parse(text)
  } catch (err) {
    return { ok: false, errors: [`${path}: ${(err as Error).message}`], missing: (err as { code?: string }).code === 'ENOENT' }
  }
  if (!validate(data)) return { ok: false, errors: formatSchemaErrors(validate.errors).map((e) => `${path}: ${e}`), missing: false }
  return { ok: true, file: { path, data } }
}

/** Read one group or profile file (a changed `groups/*.json`) synchronously, then as parseMatchboxFile. */
export function readMatchboxFile<T>(path: string, validate: ValidateFunction<T>): ReturnType<typeof parseMatchboxFile<T>> {
  let text: string | ConfigFileError
  try {
    text = readConfigFileSync(path, MAX_FILE_BYTES)
  } catch (err) {
    text = err as ConfigFileError
  }
  return parseMatchboxFile(path, text, validate)
}

/**
 * Every listed file of a folder, parsed and checked. Read in batches (host/read-files.ts: with the native addon a pool
 * thread reads the next batch while the loop parses this one), parsed in slices so the event loop runs between files.
 */
async function readJsonFiles<T>(dir: string, validate: ValidateFunction<T>, errors: string[], slicer: Slicer): Promise<SourcedFile<T>[]> {
  const out: SourcedFile<T>[] = []
  let names: string[]
  try {
    names = await jsonFiles(dir, slicer)
  } catch (err) {
    errors.push(`${dir}: cannot list: ${(err as Error).message}`)
    return out
  }
  const reader = fileBatchReader()
  const batch = (at: number) => (at < names.length ? reader.read(dir, names.slice(at, at + reader.batch), MAX_FILE_BYTES) : undefined)
  let next = batch(0)
  for (let at = 0; next !== undefined; at += reader.batch) {
    const texts = await next
    next = batch(at + reader.batch)
    for (let i = 0; i < texts.length; i++) {
      const y = slicer.slice()
      if (y) await y
      // Not path.join: `dir` is already normal and a listed name has no slash, and join's normalizing was a
      // measurable part of reading 100,000 files.
      const r = parseMatchboxFile(`${dir}/${names[at + i]}`, texts[i]!, validate)
      if (r.ok) out.push(r.file)
      else for (const e of r.errors) errors.push(e)
    }
  }
  return out
}

/** Read and schema-check every group and profile file of a Matchbox directory, in slices of `slicer`. */
export async function readMatchboxDir(root: string, slicer: Slicer = unsliced): Promise<MatchboxDirContents> {
  const errors: string[] = []
  const warnings: string[] = []
  try {
    if (!(await stat(root)).isDirectory()) errors.push(`${root}: not a directory`)
  } catch (err) {
    errors.push(`${root}: ${(err as Error).message}`)
  }
  if (errors.length > 0) return { groups: [], profiles: [], errors, warnings }
  const v = matchboxValidators()
  const groups = await readJsonFiles(join(root, 'groups'), v.group, errors, slicer)
  const profiles = await readJsonFiles(join(root, 'profiles'), v.profile, errors, slicer)
  for (const p of profiles) {
    if (p.data.cloud_id) warnings.push(`${p.path}: cloud_id "${p.data.cloud_id}" ignored (Cloud-Config is not served)`)
  }
  return { groups, profiles, errors, warnings }
}

/** The folders whose changes should trigger a reload. */
export function matchboxWatchDirs(root: string): string[] {
  return [root, join(root, 'groups'), join(root, 'profiles'), join(root, 'ignition'), join(root, 'generic')]
}
