/**
 * Butane -> Ignition for variants fcos 1.0.0-1.5.0 and flatcar 1.0.0-1.1.0, done on the YAML node tree so every
 * error carries the Butane line:col. snake_case fields become camelCase; `inline`/`local` contents become data URLs
 * chosen like Butane (./dataurl.ts); fields pxebox does not translate are errors naming the field and its line.
 * The output is validated against the target Ignition spec before it is returned.
 */
import { realpath } from 'node:fs/promises'
import { resolve, sep, join } from 'node:path'
import { LineCounter, parseDocument, isAlias, isMap, isSeq, isScalar, Scalar, type Document, type Node } from 'yaml'
import { readConfigFileBytes } from '../../host/read-file.js'
import { pathToString, type IgnitionError, type PathSegment } from '../errors.js'
import type { IgnitionConfig } from '../schema.js'
import { checkAgainstVersion } from '../validate.js'
import { makeDataUrl } from './dataurl.js'
import { BUTANE_ROOT, BUTANE_TARGETS, VARIANT_FORBIDDEN, type ButaneTarget, type FieldKind } from './fields.js'

/** Options: `file` for error messages; `filesDir` is where `contents.local` may read (nothing is read without it). */
export interface TranslateOptions {
  file: string
  filesDir?: string
}

/** The translated config and the Butane target it came from, or every error. */
export type ButaneTranslation =
  | { ok: true; ignition: IgnitionConfig; target: ButaneTarget }
  | { ok: false; errors: IgnitionError[] }

type Json = null | boolean | number | string | Json[] | { [k: string]: Json }

interface Ctx {
  file: string
  filesDir: string | undefined
  target: ButaneTarget
  lines: LineCounter
  errors: IgnitionError[]
  /** Ignition path string -> source offset, to put validation errors of the output back on Butane lines. */
  origin: Map<string, number>
  pending: Promise<void>[]
  /** For resolving `*alias` references (go-yaml, which Butane uses, follows them too). */
  doc: Document.Parsed
}

function err(ctx: Pick<Ctx, 'file' | 'lines' | 'errors'>, code: string, path: PathSegment[], offset: number | undefined, message: string): void {
  const pos = offset === undefined ? {} : ctx.lines.linePos(offset)
  ctx.errors.push({ code, file: ctx.file, path: pathToString(path), ...pos, message })
}

const firstButaneVersion = (variant: string, minor: number): string | undefined =>
  BUTANE_TARGETS.find((t) => t.variant === variant && t.minor >= minor)?.version

const normalised = (path: PathSegment[]): string =>
  path.reduce<string>((acc, s) => (typeof s === 'number' ? `${acc}[]` : acc === '' ? s : `${acc}.${s}`), '')

/** A YAML 1.1 / go-yaml style integer from a plain scalar: 420, 0644 (octal, as Butane reads modes), 0o644, 0x1a4. */
function parseInt11(text: string): number | undefined {
  if (/^[-+]?(0|[1-9][0-9_]*)$/.test(text)) return Number(text.replace(/_/g, ''))
  if (/^0[0-7_]+$/.test(text)) return parseInt(text.replace(/_/g, ''), 8)
  if (/^0o[0-7]+$/.test(text)) return parseInt(text.slice(2), 8)
  if (/^0x[0-9a-fA-F]+$/.test(text)) return parseInt(text.slice(2), 16)
  return undefined
}

/** go-yaml v3 decodes YAML 1.1 booleans into typed bool fields; accept the same words. */
function parseBool11(text: string): boolean | undefined {
  const t = text.toLowerCase()
  if (['true', 'yes', 'y', 'on'].includes(t)) return true
  if (['false', 'no', 'n', 'off'].includes(t)) return false
  return undefined
}

function describeNode(node: unknown): string {
  if (isMap(node)) return 'a mapping'
  if (isSeq(node)) return 'a list'
  if (isScalar(node)) return node.value === null ? 'null' : `${JSON.stringify(node.value)}`
  return 'nothing'
}

function convertScalar(ctx: Ctx, kind: FieldKind, node: unknown, path: PathSegment[]): Json | undefined {
  const offset = (node as Node | null)?.range?.[0]
  if (!isScalar(node) || node.value === null) {
    err(ctx, 'butane-type', path, offset, `expected a ${kind.kind === 'int' ? 'number' : kind.kind === 'bool' ? 'boolean' : 'string'}, got ${describeNode(node)}`)
    return undefined
  }
  const plain = node.type === Scalar.PLAIN
  const text = plain ? (node.source ?? String(node.value)) : String(node.value)
  if (kind.kind === 'string') return plain ? text : String(node.value)
  const value = plain ? (kind.kind === 'int' ? parseInt11(text) : parseBool11(text)) : undefined
  if (value === undefined) {
    err(ctx, 'butane-type', path, offset, `expected ${kind.kind === 'int' ? 'an integer' : 'true or false'}, got ${JSON.stringify(String(node.value))}`)
  }
  return value
}

async function readLocal(ctx: Ctx, local: string, path: PathSegment[], offset: number | undefined): Promise<Buffer | undefined> {
  if (ctx.filesDir === undefined) {
    err(ctx, 'butane-local', path, offset, 'contents.local needs a files directory and none is configured')
    return undefined
  }
  // Same rule as butane base/util/file.go: join under the files dir, then refuse anything that leaves it. We also
  // resolve symlinks, so a link inside the files dir cannot point outside it.
  const base = resolve(ctx.filesDir)
  const wanted = resolve(join(base, local))
  const inside = (p: string, root: string): boolean => p === root || p.startsWith(root + sep)
  if (!inside(wanted, base)) {
    err(ctx, 'butane-local', path, offset, `local file "${local}" is outside the files directory; refused`)
    return undefined
  }
  try {
    const [realBase, realWanted] = await Promise.all([realpath(base), realpath(wanted)])
    if (!inside(realWanted, realBase)) {
      err(ctx, 'butane-local', path, offset, `local file "${local}" resolves outside the files directory; refused`)
      return undefined
    }
    // A regular file only, capped: a FIFO in the files folder would otherwise stall this render (and every reload).
    return await readConfigFileBytes(realWanted, MAX_LOCAL_BYTES)
  } catch (e) {
    err(ctx, 'butane-local', path, offset, `cannot read local file "${local}": ${(e as NodeJS.ErrnoException).code ?? ''} (${(e as Error).message})`)
    return undefined
  }
}

/** Largest `contents.local` file embedded: it travels as a data URL inside the Ignition answer. */
const MAX_LOCAL_BYTES = 16 * 1024 * 1024

/** Translate a mapping according to `fields`; returns the Ignition object (keys camelCase). */
function convertObject(ctx: Ctx, fields: Readonly<Record<string, import('./fields.js').FieldSpec>>, node: unknown, yamlPath: PathSegment[], ignPath: PathSegment[]): { [k: string]: Json } | undefined {
  if (!isMap(node)) {
    err(ctx, 'butane-type', yamlPath, (node as Node | null)?.range?.[0], `expected a mapping, got ${describeNode(node)}`)
    return undefined
  }
  const out: { [k: string]: Json } = {}
  for (const pair of node.items) {
    const keyNode = pair.key as Node | null
    const keyOffset = keyNode?.range?.[0]
    const key = isScalar(keyNode) ? String(keyNode.value) : String(keyNode)
    const fieldYamlPath = [...yamlPath, key]
    const spec = fields[key]
    if (spec === undefined) {
      const snake = key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`)
      const hint =
        fields[snake] !== undefined
          ? `; did you mean "${snake}"? (Butane is snake_case; camelCase is Ignition)`
          : `; expected one of ${Object.keys(fields).map((k) => `"${k}"`).join(', ')}`
      err(ctx, 'butane-unknown-field', fieldYamlPath, keyOffset, `unknown Butane field "${key}"${hint}`)
      continue
    }
    if (spec.unsupported !== undefined) {
      err(ctx, 'butane-unsupported', fieldYamlPath, keyOffset, `unsupported field "${key}": ${spec.unsupported}`)
      continue
    }
    if (spec.since > ctx.target.minor) {
      const first = firstButaneVersion(ctx.target.variant, spec.since)
      err(ctx, 'butane-version', fieldYamlPath, keyOffset,
        `field "${key}" needs ${ctx.target.variant} ${first ?? `with Ignition 3.${spec.since}.0`} or later; this config is ${ctx.target.variant} ${ctx.target.version}`)
      continue
    }
    const forbidden = VARIANT_FORBIDDEN[ctx.target.variant][normalised(fieldYamlPath)]
    if (forbidden !== undefined) {
      err(ctx, 'butane-unsupported', fieldYamlPath, keyOffset, forbidden)
      continue
    }
    const fieldIgnPath = [...ignPath, spec.to]
    if (isScalar(pair.value) && pair.value.value === null) continue // `key:` with no value is "unset", as in Go
    const value = convert(ctx, spec.type, pair.value, fieldYamlPath, fieldIgnPath)
    if (value !== undefined) {
      out[spec.to] = value
      ctx.origin.set(pathToString(fieldIgnPath), keyOffset ?? 0)
    }
  }
  return out
}

/** A resource: source/compression/http_headers/verification pass through; inline/local become a data URL. */
function convertResource(ctx: Ctx, kind: Extract<FieldKind, { kind: 'resource' }>, node: unknown, yamlPath: PathSegment[], ignPath: PathSegment[]): { [k: string]: Json } | undefined {
  const out = convertObject(ctx, kind.fields, node, yamlPath, ignPath)
  if (out === undefined || !isMap(node)) return out
  const given = ['source', 'inline', 'local'].filter((k) => out[k] !== undefined)
  if (given.length > 1) {
    err(ctx, 'butane-resource', yamlPath, node.range?.[0], `only one of source, inline and local may be set; got ${given.join(', ')}`)
    return undefined
  }
  const compression = typeof out.compression === 'string' ? out.compression : undefined
  const apply = (bytes: Uint8Array): void => {
    const url = makeDataUrl(bytes, compression)
    out.source = url.source
    if (url.compression !== undefined) out.compression = url.compression
  }
  if (typeof out.inline === 'string') {
    apply(Buffer.from(out.inline, 'utf8'))
    delete out.inline
  } else if (typeof out.local === 'string') {
    const local = out.local
    delete out.local
    const localNode = node.get('local', true) as Node | undefined
    ctx.pending.push(
      readLocal(ctx, local, [...yamlPath, 'local'], localNode?.range?.[0]).then((bytes) => {
        if (bytes !== undefined) apply(bytes)
      }),
    )
  }
  return out
}

function convert(ctx: Ctx, kind: FieldKind, node: unknown, yamlPath: PathSegment[], ignPath: PathSegment[]): Json | undefined {
  if (isAlias(node)) node = node.resolve(ctx.doc)
  switch (kind.kind) {
    case 'string':
    case 'int':
    case 'bool':
      return convertScalar(ctx, kind, node, yamlPath)
    case 'object':
      return convertObject(ctx, kind.fields, node, yamlPath, ignPath)
    case 'resource':
      return convertResource(ctx, kind, node, yamlPath, ignPath)
    case 'list': {
      if (!isSeq(node)) {
        err(ctx, 'butane-type', yamlPath, (node as Node | null)?.range?.[0], `expected a list, got ${describeNode(node)}`)
        return undefined
      }
      const out: Json[] = []
      node.items.forEach((item, i) => {
        const v = convert(ctx, kind.of, item, [...yamlPath, i], [...ignPath, i])
        ctx.origin.set(pathToString([...ignPath, i]), (item as Node | null)?.range?.[0] ?? 0)
        if (v !== undefined) out.push(v)
      })
      return out
    }
  }
}

const NODE_FIRST = ['group', 'overwrite', 'path', 'user']

/**
 * Butane's output shape: keys in Go struct order (alphabetical, with the embedded Node fields group/overwrite/path/
 * user first in files, directories and links) and empty objects/lists dropped (omitempty).
 */
function canonical(value: Json, nodeLike = false): Json | undefined {
  if (Array.isArray(value)) {
    const items = value.map((v) => canonical(v, nodeLike)).filter((v): v is Json => v !== undefined)
    return items.length === 0 ? undefined : items
  }
  if (value === null || typeof value !== 'object') return value
  const keys = Object.keys(value).sort((a, b) => {
    if (nodeLike) {
      const ra = NODE_FIRST.includes(a) ? 0 : 1
      const rb = NODE_FIRST.includes(b) ? 0 : 1
      if (ra !== rb) return ra - rb
    }
    return a < b ? -1 : a > b ? 1 : 0
  })
  const out: { [k: string]: Json } = {}
  for (const k of keys) {
    const child = value[k] as Json
    const v = canonical(child, ['files', 'directories', 'links'].includes(k))
    if (v !== undefined) out[k] = v
  }
  return Object.keys(out).length === 0 ? undefined : out
}

/** The offset of the closest recorded ancestor of an Ignition path. */
function originOf(origin: Map<string, number>, path: PathSegment[]): number | undefined {
  for (let n = path.length; n >= 0; n--) {
    const hit = origin.get(pathToString(path.slice(0, n)))
    if (hit !== undefined) return hit
  }
  return undefined
}

/**
 * Translate Butane YAML text to an Ignition config of the spec its variant/version maps to.
 * Every problem is reported at once with file, Butane path and line:col; the result is never partial.
 */
export async function translateButane(text: string, opts: TranslateOptions): Promise<ButaneTranslation> {
  const lines = new LineCounter()
  return translateButaneDocument(parseDocument(text, { lineCounter: lines, uniqueKeys: true, prettyErrors: false }), lines, opts)
}

/**
 * translateButane on a document already parsed (with `lines` as its LineCounter): a rendered template, whose
 * values were put into the parsed tree (../escape.ts) rather than into the text.
 */
export async function translateButaneDocument(doc: Document.Parsed, lines: LineCounter, opts: TranslateOptions): Promise<ButaneTranslation> {
  const base = { file: opts.file, lines, errors: [] as IgnitionError[] }
  if (doc.errors.length > 0) {
    for (const e of doc.errors) err(base, 'yaml-syntax', [], e.pos[0], `invalid YAML: ${e.message.split('\n')[0]}`)
    return { ok: false, errors: base.errors }
  }
  const root = doc.contents
  if (!isMap(root)) {
    err(base, 'butane-type', [], (root as Node | null)?.range?.[0], 'expected a Butane config (a mapping with variant and version)')
    return { ok: false, errors: base.errors }
  }
  const variant: unknown = root.get('variant')
  const version: unknown = root.get('version')
  const target = BUTANE_TARGETS.find((t) => t.variant === variant && t.version === version)
  if (target === undefined) {
    const known = BUTANE_TARGETS.map((t) => `${t.variant} ${t.version}`).join(', ')
    const node = (root.get(variant === undefined ? 'variant' : 'version', true) ?? root) as Node
    err(base, 'butane-version', [variant === undefined ? 'variant' : 'version'], node.range?.[0],
      `unsupported Butane variant/version ${JSON.stringify(variant ?? null)} ${JSON.stringify(version ?? null)}; pxebox translates ${known}`)
    return { ok: false, errors: base.errors }
  }
  const ctx: Ctx = { ...base, filesDir: opts.filesDir, target, origin: new Map(), pending: [], doc }
  // variant and version are consumed here; every other top-level key goes through the field table.
  const rest = root.clone()
  rest.delete('variant')
  rest.delete('version')
  const body = convert(ctx, BUTANE_ROOT, rest, [], []) as { [k: string]: Json } | undefined
  await Promise.all(ctx.pending)
  if (ctx.errors.length > 0 || body === undefined) return { ok: false, errors: ctx.errors }

  const ignitionSection = (body.ignition ?? {}) as { [k: string]: Json }
  const assembled: { [k: string]: Json } = { ...body, ignition: { ...ignitionSection, version: target.ignition } }
  const output = canonical(assembled) as IgnitionConfig
  const problems = checkAgainstVersion(output, target.ignition)
  if (problems.length > 0) {
    for (const p of problems) {
      err(ctx, `ignition-${p.code}`, p.path, originOf(ctx.origin, p.path), `in the translated Ignition config: ${p.message}`)
    }
    return { ok: false, errors: ctx.errors }
  }
  return { ok: true, ignition: output, target }
}
