/**
 * The two halves of serving Ignition: `prepareIgnitionSource` at load (parse, translate Butane once if it has no
 * template markers, validate, report every error with file and line) and `renderIgnition` per request (render the
 * template with the group's metadata and request labels, translate if Butane, validate, pick the spec version).
 * A request either gets a complete, valid config or a typed error; never a half-rendered file.
 */
import { extname } from 'node:path'
import { formatIgnitionError, type IgnitionError } from './errors.js'
import type { IgnitionConfig } from './schema.js'
import { configForRequestedVersion } from './serve-version.js'
import { substituteJson, substituteYaml } from './escape.js'
import { hasTemplateMarkers, lintTemplate, parseTemplate, renderTemplateParts, templateReferences, type ParsedTemplate } from './template.js'
import { translateButane, translateButaneDocument } from './butane/translate.js'
import { validateIgnition } from './validate.js'
import type { IgnitionVersion } from './version.js'

/** How a source file is handled. */
export type IgnitionSourceKind = 'ign' | 'butane' | 'template-ign' | 'template-butane'

/** `.ign`/`.ignition`/`.json` are Ignition (matchbox's isIgnition takes .ign/.ignition), `.bu`/`.yaml`/`.yml`
 * Butane; `{{` anywhere makes it a template. */
export function detectIgnitionKind(file: string, text: string): IgnitionSourceKind | undefined {
  const ext = extname(file).toLowerCase()
  const template = hasTemplateMarkers(text)
  if (ext === '.ign' || ext === '.ignition' || ext === '.json') return template ? 'template-ign' : 'ign'
  if (ext === '.bu' || ext === '.yaml' || ext === '.yml') return template ? 'template-butane' : 'butane'
  return undefined
}

/** A source ready to serve: either a validated config, or a parsed template to render per request. */
export type PreparedIgnition =
  | { readonly kind: 'ign' | 'butane'; readonly file: string; readonly config: IgnitionConfig; readonly version: IgnitionVersion; readonly json: string }
  | { readonly kind: 'template-ign' | 'template-butane'; readonly file: string; readonly template: ParsedTemplate; readonly filesDir?: string }

type StaticPrepared = Extract<PreparedIgnition, { config: IgnitionConfig }>
type TemplatePrepared = Exclude<PreparedIgnition, StaticPrepared>
const isStatic = (p: PreparedIgnition): p is StaticPrepared => p.kind === 'ign' || p.kind === 'butane'

/** Input to `prepareIgnitionSource`; `kind` defaults to `detectIgnitionKind(file, text)`. */
export interface IgnitionSource {
  file: string
  text: string
  kind?: IgnitionSourceKind
  /** Directory Butane `contents.local` reads from; without it `local` is an error. */
  filesDir?: string
}

/** Load time: parse, translate (non-template Butane) and validate; every error at once. */
export async function prepareIgnitionSource(
  source: IgnitionSource,
): Promise<{ ok: true; prepared: PreparedIgnition } | { ok: false; errors: IgnitionError[] }> {
  const { file, text } = source
  const kind = source.kind ?? detectIgnitionKind(file, text)
  if (kind === undefined) {
    return { ok: false, errors: [{ code: 'kind', file, path: '$', message: 'unknown Ignition source type: expected .ign/.json (Ignition) or .bu/.yaml/.yml (Butane)' }] }
  }
  if (kind === 'ign') {
    const r = validateIgnition(text, { file })
    return r.ok ? { ok: true, prepared: { kind, file, config: r.config, version: r.version, json: text } } : r
  }
  if (kind === 'butane') {
    const r = await translateButane(text, { file, ...(source.filesDir ? { filesDir: source.filesDir } : {}) })
    if (!r.ok) return r
    return { ok: true, prepared: { kind, file, config: r.ignition, version: r.target.ignition, json: JSON.stringify(r.ignition) } }
  }
  const parsed = parseTemplate(text)
  if (!parsed.ok) {
    return { ok: false, errors: parsed.errors.map((e) => ({ code: 'template-syntax', file, path: '$', line: e.line, col: e.col, message: e.message })) }
  }
  return { ok: true, prepared: { kind, file, template: parsed.template, ...(source.filesDir ? { filesDir: source.filesDir } : {}) } }
}

/**
 * Load-time lint of a prepared template against one group's metadata: each key the template needs that the group
 * does not provide, as an error with the template's line:col. Non-templates have nothing to lint.
 */
export function lintPreparedIgnition(
  prepared: PreparedIgnition,
  group: { metadata: Readonly<Record<string, unknown>>; selector?: Readonly<Record<string, unknown>>; id?: string },
): IgnitionError[] {
  if (isStatic(prepared)) return []
  const groupName = group.id
  return lintTemplate((prepared as TemplatePrepared).template, group.metadata, group.selector).map((m) => ({
    code: 'template-missing-key',
    file: prepared.file,
    path: '$',
    line: m.line,
    col: m.col,
    message: `template references ${m.key}, which ${groupName === undefined ? 'the group' : `group "${groupName}"`} metadata and selector do not provide (request labels are .request.query.*)`,
  }))
}

/** Per-request inputs. */
export interface RenderRequest {
  metadata: Readonly<Record<string, unknown>>
  /** The matched group's selector (lower-cased keys override metadata, as in matchbox). */
  selector?: Readonly<Record<string, unknown>>
  labels: Readonly<Record<string, string>>
  rawQuery?: string
  /** From `requestedIgnitionVersion(accept)`; undefined serves 3.4.0 semantics (config as-is). */
  requestedVersion?: string
}

/**
 * Why a request gets no config. Suggested HTTP mapping: `missing-key` 404 (matchbox answers 404 when it cannot
 * render), `version` 406 Not Acceptable, `invalid` 500 (the rendered file is broken: an operator error).
 */
export interface RenderError {
  kind: 'missing-key' | 'version' | 'invalid'
  message: string
  errors?: IgnitionError[]
}

/** Request time: a complete, valid Ignition JSON body, or a typed error. */
export async function renderIgnition(
  prepared: PreparedIgnition,
  request: RenderRequest,
): Promise<{ ok: true; json: string; version: IgnitionVersion } | { ok: false; error: RenderError }> {
  let config: IgnitionConfig
  let version: IgnitionVersion
  let asIs: string | undefined
  if (isStatic(prepared)) {
    ;({ config, version } = prepared)
    asIs = prepared.json
  } else {
    const tpl = prepared as TemplatePrepared
    // Values go into the parsed JSON/YAML as values (./escape.ts): request labels are attacker-controlled.
    const rendered = renderTemplateParts(tpl.template, {
      metadata: request.metadata,
      labels: request.labels,
      ...(request.selector !== undefined ? { selector: request.selector } : {}),
      ...(request.rawQuery !== undefined ? { rawQuery: request.rawQuery } : {}),
    })
    if (!rendered.ok) return { ok: false, error: { kind: 'missing-key', message: `${prepared.file}: ${rendered.error.message}` } }
    const file = `${prepared.file} (rendered)`
    let text: string | undefined
    if (prepared.kind === 'template-ign') {
      const json = substituteJson(rendered.parts)
      if (!json.ok) return { ok: false, error: { kind: 'invalid', message: `${file}: ${json.message}` } }
      text = json.text
    }
    const result =
      text !== undefined
        ? validateIgnition(text, { file })
        : await butaneOf(rendered.parts, { file, ...(tpl.filesDir ? { filesDir: tpl.filesDir } : {}) })
    if (!result.ok) {
      return { ok: false, error: { kind: 'invalid', message: result.errors.map(formatIgnitionError).join('; '), errors: result.errors } }
    }
    if ('version' in result) {
      ;({ config, version } = result)
      asIs = text
    } else {
      config = result.ignition
      version = result.target.ignition
    }
  }
  const served = configForRequestedVersion(config, version, request.requestedVersion)
  if (!served.ok) return { ok: false, error: { kind: 'version', message: `${prepared.file}: ${served.message}` } }
  const json = served.converted || asIs === undefined ? JSON.stringify(served.config) : asIs
  return { ok: true, json, version: served.version }
}

function butaneOf(parts: Parameters<typeof substituteYaml>[0], opts: Parameters<typeof translateButane>[1]): ReturnType<typeof translateButane> {
  const { doc, lines } = substituteYaml(parts)
  return translateButaneDocument(doc, lines, opts)
}

/**
 * Load-time check of a template against one group that uses it: missing keys (as `lintPreparedIgnition`), then a
 * trial render with the group's metadata and selector, translated and validated, so a template that would only
 * produce a broken config for this group is reported at load, not at the machine's first boot. Request labels the
 * template reads (`.request.query.X`) come from the group's selector when it names X (that is the value any matching
 * machine sends), else a placeholder `example-X`.
 */
export async function checkIgnitionForGroup(
  prepared: PreparedIgnition,
  group: { metadata: Readonly<Record<string, unknown>>; selector?: Readonly<Record<string, unknown>>; id?: string },
): Promise<IgnitionError[]> {
  if (isStatic(prepared)) return []
  const missing = lintPreparedIgnition(prepared, group)
  if (missing.length > 0) return missing
  const selector = Object.fromEntries(Object.entries(group.selector ?? {}).map(([k, v]) => [k.toLowerCase(), v]))
  const labels: Record<string, string> = {}
  for (const ref of templateReferences((prepared as TemplatePrepared).template)) {
    const [first, second, key] = ref.path
    if (first !== 'request' || second !== 'query' || key === undefined) continue
    const fromSelector = selector[key.toLowerCase()]
    const value = Array.isArray(fromSelector) ? fromSelector[0] : fromSelector
    labels[key] = value === undefined || value === null ? `example-${key}` : String(value)
  }
  const r = await renderIgnition(prepared, { metadata: group.metadata, labels, ...(group.selector ? { selector: group.selector } : {}) })
  if (r.ok) return []
  const who = group.id === undefined ? 'this group' : `group "${group.id}"`
  if (r.error.errors !== undefined) {
    return r.error.errors.map((e) => ({ ...e, code: 'template-render', message: `rendered for ${who}: ${e.message}` }))
  }
  return [{ code: 'template-render', file: prepared.file, path: '$', message: `rendered for ${who}: ${r.error.message}` }]
}
