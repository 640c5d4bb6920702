/**
 * Validate an Ignition config at load time: JSON syntax, spec version, the per-version schema and Ignition's own
 * semantic rules. Every error names the file, the JSON path and what was expected, with line:col when the source
 * text is at hand. Nothing half-valid gets through: a config is either returned whole or not at all.
 */
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv'
import {
  pathToString,
  pointerToSegments,
  positionIndex,
  type IgnitionError,
  type PathSegment,
} from './errors.js'
import { fieldIntroducedIn, ignitionSchemas, normalisedFieldPath, type IgnitionConfig } from './schema.js'
import { semanticProblems } from './semantic.js'
import {
  ignitionMinor,
  isSupportedIgnitionVersion,
  parseSpecVersion,
  type IgnitionVersion,
} from './version.js'

/** Result of validation: the whole config, or every error found. */
export type IgnitionValidation =
  | { ok: true; config: IgnitionConfig; version: IgnitionVersion }
  | { ok: false; errors: IgnitionError[] }

/** Options: `file` names the source in errors; `text` (when input is already parsed) enables line:col. */
export interface ValidateOptions {
  file: string
  text?: string
}

/**
 * The compiled Ajv validator for one spec version. Compiling one costs 150-400 ms on a busy 2-core box, so each is
 * compiled on first use and kept: a memo of a pure function of constant schemas (same input, same output), the one
 * deliberate exception to "no module-level mutable state".
 */
export function ignitionValidator(version: IgnitionVersion): ValidateFunction {
  let validate = compiledValidators.get(version)
  if (validate === undefined) {
    validate = ajv.compile(ignitionSchemas[version])
    compiledValidators.set(version, validate)
  }
  return validate
}

const ajv = new Ajv({ allErrors: true, verbose: true, strict: false })
const compiledValidators = new Map<IgnitionVersion, ValidateFunction>()

const jsType = (v: unknown): string => (v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v)
const quote = (v: unknown): string => (typeof v === 'string' ? JSON.stringify(v) : JSON.stringify(v) ?? String(v))
const camel = (s: string): string => s.replace(/_([a-z])/g, (_m, c: string) => c.toUpperCase())

/** Turn one Ajv error into a sentence a person can act on, and the path it applies to. */
function describeAjvError(e: ErrorObject, version: IgnitionVersion): { path: PathSegment[]; message: string; atKey?: boolean } {
  const path = pointerToSegments(e.instancePath)
  const description = (e.parentSchema as { description?: string } | undefined)?.description
  switch (e.keyword) {
    case 'additionalProperties': {
      const field = String((e.params as { additionalProperty: string }).additionalProperty)
      const fieldPath = [...path, field]
      const since = fieldIntroducedIn.get(normalisedFieldPath(fieldPath))
      if (since) return { path: fieldPath, atKey: true, message: `field "${field}" needs Ignition ${since} or later; this config is ${version}` }
      const siblings = Object.keys((e.parentSchema as { properties?: object } | undefined)?.properties ?? {})
      const hint = siblings.includes(camel(field))
        ? `; did you mean "${camel(field)}"? (Ignition is camelCase; snake_case is Butane)`
        : siblings.length > 0
          ? `; expected one of ${siblings.map((s) => `"${s}"`).join(', ')}`
          : ''
      return { path: fieldPath, atKey: true, message: `unknown field "${field}"${hint}` }
    }
    case 'required': {
      const field = String((e.params as { missingProperty: string }).missingProperty)
      return { path, message: `missing required field "${field}"` }
    }
    case 'type': {
      const want = String((e.params as { type: string | string[] }).type)
        .split(',')
        .filter((t) => t !== 'null')
        .join(' or ')
      return { path, message: `expected ${description ?? want}, got ${jsType(e.data)} ${quote(e.data)}` }
    }
    case 'enum': {
      const allowed = (e.params as { allowedValues: unknown[] }).allowedValues.map(quote).join(', ')
      return { path, message: `expected one of ${allowed}; got ${quote(e.data)}` }
    }
    case 'pattern':
    case 'minimum':
    case 'maximum':
      return { path, message: `expected ${description ?? e.message ?? e.keyword}; got ${quote(e.data)}` }
    default:
      return { path, message: e.message ?? e.keyword }
  }
}

/** One schema or semantic problem, before file and position are attached. */
export interface CheckProblem {
  path: PathSegment[]
  message: string
  code: 'schema' | 'semantic'
  /** Point at the key rather than the value (unknown fields). */
  atKey?: boolean
}

/**
 * Check a parsed config against spec `version` (schema + semantics) without looking at its own version field.
 * Used for load-time validation and to decide whether a config can be served to a machine asking for an older spec.
 */
export function checkAgainstVersion(
  config: unknown,
  version: IgnitionVersion,
): CheckProblem[] {
  const validate = ignitionValidator(version)
  if (validate(config)) {
    return semanticProblems(config as Record<string, unknown>, ignitionMinor(version)).map((p) => ({ ...p, code: 'semantic' as const }))
  }
  const seen = new Set<string>()
  const out: CheckProblem[] = []
  for (const e of validate.errors ?? []) {
    const d = describeAjvError(e, version)
    const key = `${pathToString(d.path)} ${d.message}`
    if (seen.has(key)) continue
    seen.add(key)
    out.push({ ...d, code: 'schema' as const })
  }
  return out
}

/** Where `JSON.parse` failed, as a character offset, from V8's message ("... at position 42 ..."). */
function jsonErrorOffset(message: string): number | undefined {
  const m = /position (\d+)/.exec(message)
  return m ? Number(m[1]) : undefined
}

function lineColAt(text: string, offset: number): { line: number; col: number } {
  let line = 1
  let lineStart = 0
  for (let i = 0; i < offset && i < text.length; i++) {
    if (text.charCodeAt(i) === 10) {
      line++
      lineStart = i + 1
    }
  }
  return { line, col: offset - lineStart + 1 }
}

/**
 * Validate an Ignition config given as JSON text or as an already-parsed value.
 * Returns the config and its spec version, or every error (never a partial result).
 */
export function validateIgnition(input: string | unknown, opts: ValidateOptions): IgnitionValidation {
  const { file } = opts
  // A UTF-8 byte-order mark (some Windows editors write one) is not JSON; drop it rather than fail the machine.
  if (typeof input === 'string' && input.startsWith('\uFEFF')) input = input.slice(1)
  const text = typeof input === 'string' ? input : opts.text
  let config: unknown
  if (typeof input === 'string') {
    try {
      config = JSON.parse(input)
    } catch (err) {
      const message = (err as Error).message
      const offset = jsonErrorOffset(message)
      const pos = offset === undefined ? undefined : lineColAt(input, offset)
      return { ok: false, errors: [{ code: 'json-syntax', file, path: '$', ...pos, message: `invalid JSON: ${message}` }] }
    }
  } else {
    config = input
  }
  const index = text === undefined ? undefined : positionIndex(text)
  const place = (path: PathSegment[], message: string, code: string, atKey = false): IgnitionError => ({
    code,
    file,
    path: pathToString(path),
    ...(index?.locate(path, atKey) ?? {}),
    message,
  })

  if (config === null || typeof config !== 'object' || Array.isArray(config)) {
    return { ok: false, errors: [place([], `expected an Ignition config object, got ${jsType(config)}`, 'schema')] }
  }
  const version = (config as { ignition?: { version?: unknown } }).ignition?.version
  if (typeof version !== 'string') {
    return { ok: false, errors: [place(['ignition', 'version'], 'missing ignition.version: expected a spec version such as "3.4.0"', 'version')] }
  }
  if (!isSupportedIgnitionVersion(version)) {
    const parsed = parseSpecVersion(version)
    const why =
      parsed === undefined
        ? 'is not a spec version'
        : parsed.major !== 3
          ? 'is not Ignition spec 3 (pxebox serves 3.0.0-3.4.0; translate older configs with ignition-config-transpiler)'
          : 'is not a released spec pxebox knows (3.0.0-3.4.0)'
    return { ok: false, errors: [place(['ignition', 'version'], `version "${version}" ${why}`, 'version')] }
  }
  const problems = checkAgainstVersion(config, version)
  if (problems.length > 0) return { ok: false, errors: problems.map((p) => place(p.path, p.message, p.code, p.atKey)) }
  return { ok: true, config: config as IgnitionConfig, version }
}
