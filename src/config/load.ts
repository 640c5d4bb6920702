/**
 * Loading config.yaml: parse (YAML, with positions) -> validate against the one schema (unknown keys rejected,
 * defaults filled) -> normalize (canonical MACs, absolute paths) -> check referenced folders exist -> freeze.
 * Every problem is collected and reported at once, each with file:line:column, key path and what was expected.
 */
import { existsSync, statSync } from 'node:fs'
import { dirname, isAbsolute, resolve } from 'node:path'
import { Ajv, type ErrorObject } from 'ajv'
import { isAlias, LineCounter, parseDocument, visit, type Document } from 'yaml'
import { normalizeMac, normalizeUuid } from '../catalog/labels.js'
import { ipToInt } from '../host/ipv4.js'
import { ConfigError, pathToString, type ConfigProblem } from './errors.js'
import { positionOf } from './positions.js'
import { readConfigFileSync } from '../host/read-file.js'
import { ConfigSchema, MAX_CONFIG_GROUPS, MAX_CONFIG_PROFILES, type Config, type ConfigData } from './schema.js'

const ajv = new Ajv({ allErrors: true, useDefaults: true, strict: false, verbose: true })
// `expected` is our own annotation: the human wording used when a `pattern` does not match.
ajv.addKeyword({ keyword: 'expected', schemaType: 'string' })
const validateSchema = ajv.compile(ConfigSchema)

/**
 * The yaml library's guard against alias bombs ("billion laughs": nine aliases of nine aliases of ... expanding to
 * 10^9 nodes): expanding aliases stops once uses x nodes per use pass this. The library's default (100) refuses a
 * config that names one profile anchor from 101 groups; 10,000 allows that and still stops a bomb within
 * milliseconds.
 */
export const MAX_ALIAS_COUNT = 10_000

/** Load and validate a config file. Throws ConfigError listing every problem. */
export function loadConfig(file: string): Config {
  const abs = resolve(file)
  let text: string
  try {
    text = readConfigFileSync(abs)
  } catch (err) {
    throw new ConfigError([{ file: abs, line: 0, column: 0, path: '', message: `cannot read config: ${(err as Error).message}` }])
  }
  return parseConfig(text, abs)
}

/** Validate config text as if it were read from `file` (relative paths resolve against the file's folder). */
export function parseConfig(text: string, file: string): Config {
  const lc = new LineCounter()
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false, uniqueKeys: true })
  const problems: ConfigProblem[] = []
  for (const e of [...doc.errors, ...doc.warnings]) {
    const pos = lc.linePos(e.pos[0])
    problems.push({ file, line: pos.line, column: pos.col, path: '', message: `YAML syntax: ${firstLine(e.message)}` })
  }
  if (doc.errors.length > 0) throw new ConfigError(problems)

  const raw: unknown = toPlain(doc, lc, file) ?? {}
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new ConfigError([{ file, line: 1, column: 1, path: '', message: 'expected a mapping of keys (interface:, dhcp:, ...) at the top level' }])
  }
  const data = structuredClone(raw) as Record<string, unknown>
  const at = (path: (string | number)[], message: string) => {
    const pos = positionOf(doc, lc, path)
    problems.push({ file, line: pos.line, column: pos.column, path: pathToString(path), message })
  }
  // Counted before the schema runs: 150,000 groups would otherwise give 150,000 findings (and reach the matcher).
  if (Array.isArray(data.groups) && data.groups.length > MAX_CONFIG_GROUPS) {
    at(['groups'], `${data.groups.length} groups, the limit is ${MAX_CONFIG_GROUPS} (put a larger fleet in matchbox_dir or write it through the API)`)
  }
  const profiles = data.profiles
  if (profiles !== null && typeof profiles === 'object' && Object.keys(profiles).length > MAX_CONFIG_PROFILES) {
    at(['profiles'], `${Object.keys(profiles).length} profiles, the limit is ${MAX_CONFIG_PROFILES}`)
  }
  if (problems.length > 0) throw new ConfigError(problems)
  const schemaOk = validateSchema(data)
  if (!schemaOk) {
    const errors = validateSchema.errors ?? []
    // A value of the wrong type also fails its enum/pattern: the type error alone says what to fix.
    const typeErrorAt = new Set(errors.filter((e) => e.keyword === 'type').map((e) => e.instancePath))
    for (const err of errors) {
      if (err.keyword !== 'type' && typeErrorAt.has(err.instancePath)) continue
      problems.push(schemaProblem(err, data, doc, lc, file))
    }
  }
  // Checked on the raw data even when the schema failed elsewhere, so one run reports every problem.
  checkSelectorMacs(data, at)
  checkDhcpAddresses(data, at)
  if (!schemaOk || problems.length > 0) throw new ConfigError(sortByPlace(dedupe(problems)))
  const config = normalize(data as unknown as ConfigData, file, at)
  if (problems.length > 0) throw new ConfigError(problems)
  return deepFreeze({ ...config, file }) as Config
}

type Report = (path: (string | number)[], message: string) => void

/**
 * The document as plain data, with aliases expanded under MAX_ALIAS_COUNT. An alias bomb, or nesting deeper than the
 * stack, is a config problem (exit 2, file:line:col of the first alias), not a crash of `validate` or of a reload.
 */
function toPlain(doc: Document, lc: LineCounter, file: string): unknown {
  try {
    return doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT })
  } catch (err) {
    if (!(err instanceof ReferenceError) && !(err instanceof RangeError)) throw err
    let first: number | undefined
    visit(doc, {
      Alias(_key, node) {
        if (isAlias(node) && node.range) first = node.range[0]
        return visit.BREAK
      },
    })
    const { line, col } = first === undefined ? { line: 1, col: 1 } : lc.linePos(first)
    const message =
      err instanceof ReferenceError
        ? `YAML aliases expand too far (over ${MAX_ALIAS_COUNT} nodes through *aliases: an alias bomb?); write the values out or use fewer aliases`
        : 'YAML nested too deeply to read'
    throw new ConfigError([{ file, line, column: col, path: '', message }])
  }
}

/** Every `groups[].selector.mac` must be a MAC in some form; tolerant of shapes the schema rejects. */
function checkSelectorMacs(data: Record<string, unknown>, at: Report): void {
  const groups = data.groups
  if (!Array.isArray(groups)) return
  groups.forEach((g: unknown, gi) => {
    const mac = (g as { selector?: { mac?: unknown } } | null)?.selector?.mac
    const check = (m: unknown, path: (string | number)[]) => {
      if (typeof m === 'string' && normalizeMac(m) === undefined) {
        at(path, `bad MAC "${m}": expected six hex byte pairs such as 52:54:00:12:34:56 (also 52-54-00-12-34-56 or 5254.0012.3456)`)
      }
    }
    if (Array.isArray(mac)) mac.forEach((m, mi) => check(m, ['groups', gi, 'selector', 'mac', mi]))
    else check(mac, ['groups', gi, 'selector', 'mac'])
  })
}

/**
 * Authoritative-mode cross-field rules: a range is required and runs upwards; reservations name a MAC or a UUID,
 * and no MAC, UUID or address is reserved twice. (Whether the range is inside the interface's subnet is checked at
 * start, when the interface is known.)
 */
function checkDhcpAddresses(data: Record<string, unknown>, at: Report): void {
  const dhcp = data.dhcp as { mode?: unknown; range?: { start?: unknown; end?: unknown }; reservations?: unknown } | undefined
  if (dhcp === null || typeof dhcp !== 'object') return
  const num = (ip: unknown): number | undefined => (typeof ip === 'string' ? ipToInt(ip) : undefined)
  if (dhcp.mode === 'authoritative' && dhcp.range === undefined) {
    at(['dhcp', 'mode'], 'authoritative mode needs dhcp.range: { start, end } (the addresses to hand out)')
  }
  const start = num(dhcp.range?.start)
  const end = num(dhcp.range?.end)
  if (start !== undefined && end !== undefined && start > end) {
    at(['dhcp', 'range', 'end'], `range end ${String(dhcp.range?.end)} is below its start ${String(dhcp.range?.start)}`)
  }
  if (!Array.isArray(dhcp.reservations)) return
  const seen = new Map<string, number>()
  dhcp.reservations.forEach((r: unknown, i) => {
    if (r === null || typeof r !== 'object') return
    const res = r as { mac?: unknown; uuid?: unknown; address?: unknown }
    if (res.mac === undefined && res.uuid === undefined) at(['dhcp', 'reservations', i], 'a reservation needs a mac or a uuid')
    const keys: [string, string, unknown][] = [
      ['mac', 'MAC', typeof res.mac === 'string' ? (normalizeMac(res.mac) ?? res.mac) : undefined],
      ['uuid', 'UUID', typeof res.uuid === 'string' ? res.uuid.toLowerCase().replace(/-/g, '') : undefined],
      ['address', 'address', res.address],
    ]
    if (typeof res.mac === 'string' && normalizeMac(res.mac) === undefined) {
      at(['dhcp', 'reservations', i, 'mac'], `bad MAC "${res.mac}": expected six hex byte pairs such as 52:54:00:12:34:56`)
    }
    for (const [key, name, value] of keys) {
      if (typeof value !== 'string') continue
      const prev = seen.get(`${key}:${value}`)
      if (prev !== undefined) at(['dhcp', 'reservations', i, key], `${name} ${String((res as Record<string, unknown>)[key])} is already reserved by dhcp.reservations[${prev}]`)
      else seen.set(`${key}:${value}`, i)
    }
  })
}

function normalize(c: ConfigData, file: string, at: Report): ConfigData {
  const base = dirname(file)
  const abs = (p: string) => (isAbsolute(p) ? p : resolve(base, p))
  const out: ConfigData = { ...c }
  out.data_dir = abs(c.data_dir)
  if (c.api.token_file !== undefined) out.api = { ...c.api, token_file: abs(c.api.token_file) }
  if (c.api.token !== undefined && c.api.token_file !== undefined) at(['api', 'token_file'], 'give api.token or api.token_file, not both')
  out.assets_dir = abs(c.assets_dir)
  out.store = normalizeStore(c.store, abs, at)
  out.tftp = { ...c.tftp, root: abs(c.tftp.root) }
  out.dhcp = {
    ...c.dhcp,
    reservations: c.dhcp.reservations.map((r) => ({
      ...r,
      ...(r.mac === undefined ? {} : { mac: normalizeMac(r.mac) ?? r.mac }),
      ...(r.uuid === undefined ? {} : { uuid: normalizeUuid(r.uuid) ?? r.uuid }),
    })),
  }
  if (c.matchbox_dir !== undefined) out.matchbox_dir = abs(c.matchbox_dir)
  out.ignition_dir = c.ignition_dir !== undefined ? abs(c.ignition_dir) : out.matchbox_dir !== undefined ? resolve(out.matchbox_dir, 'ignition') : abs('ignition')
  out.generic_dir = c.generic_dir !== undefined ? abs(c.generic_dir) : out.matchbox_dir !== undefined ? resolve(out.matchbox_dir, 'generic') : abs('generic')
  out.butane_files_dir =
    c.butane_files_dir !== undefined ? abs(c.butane_files_dir) : out.matchbox_dir !== undefined ? resolve(out.matchbox_dir, 'files') : abs('files')

  // Folders pxebox serves from must exist now: a typo here would otherwise surface as 404s during a rack power-on.
  // data_dir is created at start, so it may be missing.
  const mustExist: [string[], string, boolean][] = [
    [['assets_dir'], out.assets_dir, c.http.enabled],
    [['tftp', 'root'], out.tftp.root, c.tftp.enabled],
    [['matchbox_dir'], out.matchbox_dir ?? '', c.matchbox_dir !== undefined],
  ]
  for (const [path, dir, needed] of mustExist) {
    if (!needed) continue
    if (!existsSync(dir)) at(path, `folder not found: ${dir}`)
    else if (!statSync(dir).isDirectory()) at(path, `expected a folder, got a file: ${dir}`)
  }

  for (const [id, profile] of Object.entries(c.profiles)) {
    if (!/^[A-Za-z0-9._-]+$/.test(id)) at(['profiles', id], `profile id "${id}" may only use letters, digits, '.', '_' and '-'`)
    void profile
  }
  out.groups = c.groups.map((g, gi) => {
    const sel = g.selector
    if (!sel || sel.mac === undefined) return g
    const macs = Array.isArray(sel.mac) ? sel.mac : [sel.mac]
    // checkSelectorMacs already reported any that do not parse.
    const norm = macs.map((m) => normalizeMac(m) ?? m)
    return { ...g, selector: { ...sel, mac: Array.isArray(sel.mac) ? norm : norm[0]! } }
  })
  return out
}

/** store: paths resolved, and what the schema alone cannot say about an etcd backend. */
function normalizeStore(store: ConfigData['store'], abs: (p: string) => string, at: Report): ConfigData['store'] {
  const tls = store.tls
  const out: ConfigData['store'] = {
    ...store,
    prefix: store.prefix.length > 1 ? store.prefix.replace(/\/+$/, '') : store.prefix,
    ...(tls === undefined
      ? {}
      : {
          tls: {
            ca_file: abs(tls.ca_file),
            ...(tls.cert_file === undefined ? {} : { cert_file: abs(tls.cert_file) }),
            ...(tls.key_file === undefined ? {} : { key_file: abs(tls.key_file) }),
          },
        }),
  }
  if (store.backend === 'etcd') {
    if (store.endpoints.length === 0) at(['store', 'endpoints'], 'store.backend is etcd: list the cluster\'s client URLs, e.g. endpoints: [http://10.0.0.5:2379]')
    if (store.prefix === '/' || store.prefix.includes('//')) at(['store', 'prefix'], `store.prefix "${store.prefix}": give a prefix of its own such as /pxebox (not / alone, no empty segment)`)
    const https = store.endpoints.filter((e) => e.startsWith('https://'))
    if (https.length > 0 && https.length < store.endpoints.length) at(['store', 'endpoints'], 'mix of http:// and https:// endpoints: one cluster speaks one of them')
    if (https.length > 0 && tls === undefined) at(['store', 'endpoints'], 'https:// endpoints need store.tls.ca_file (the CA of the etcd members)')
    if (https.length === 0 && tls !== undefined && store.endpoints.length > 0) at(['store', 'tls'], 'store.tls is given but the endpoints are http://: write them as https://')
  }
  if (tls !== undefined && (tls.cert_file === undefined) !== (tls.key_file === undefined)) at(['store', 'tls'], 'give cert_file and key_file together (a client certificate and its key)')
  for (const [key, file] of Object.entries(out.tls ?? {})) if (!existsSync(file)) at(['store', 'tls', key], `file not found: ${file}`)
  return out
}

function schemaProblem(err: ErrorObject, data: unknown, doc: Document, lc: LineCounter, file: string): ConfigProblem {
  const path = pointerToPath(err.instancePath, data)
  const p = err.params as Record<string, unknown>
  let message: string
  let where = path
  switch (err.keyword) {
    case 'additionalProperties': {
      const key = String(p.additionalProperty)
      where = [...path, key]
      const allowed = Object.keys((err.parentSchema as { properties?: object })?.properties ?? {})
      message = `unknown key "${key}"` + (allowed.length ? ` (expected one of: ${allowed.join(', ')})` : '')
      break
    }
    case 'required':
      message = `missing required key "${String(p.missingProperty)}"`
      break
    case 'type':
      message = `expected ${String(p.type)}, got ${describe(valueAt(data, path))}`
      break
    case 'enum':
      message = `expected one of ${(p.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}, got ${describe(valueAt(data, path))}`
      break
    case 'pattern': {
      const expected = (err.parentSchema as { expected?: string })?.expected ?? `text matching ${String(p.pattern)}`
      message = `expected ${expected}, got ${describe(valueAt(data, path))}`
      break
    }
    case 'minimum':
    case 'maximum':
    case 'exclusiveMinimum':
    case 'exclusiveMaximum':
      message = `expected a number ${String(p.comparison)} ${String(p.limit)}, got ${describe(valueAt(data, path))}`
      break
    case 'minLength':
      message = `expected a non-empty string`
      break
    default:
      message = err.message ?? `invalid (${err.keyword})`
  }
  const pos = positionOf(doc, lc, where)
  return { file, line: pos.line, column: pos.column, path: pathToString(where), message }
}

/** JSON pointer (`/groups/0/selector`) to a path array; array indices become numbers. */
function pointerToPath(pointer: string, data: unknown): (string | number)[] {
  if (!pointer) return []
  const out: (string | number)[] = []
  let node: unknown = data
  for (const raw of pointer.slice(1).split('/')) {
    const seg = raw.replace(/~1/g, '/').replace(/~0/g, '~')
    const key: string | number = Array.isArray(node) ? Number(seg) : seg
    out.push(key)
    node = node !== null && typeof node === 'object' ? (node as Record<string, unknown>)[key as string] : undefined
  }
  return out
}

function valueAt(data: unknown, path: (string | number)[]): unknown {
  let node = data
  for (const k of path) node = node !== null && typeof node === 'object' ? (node as Record<string, unknown>)[k as string] : undefined
  return node
}

function describe(v: unknown): string {
  if (v === null) return 'null'
  if (Array.isArray(v)) return 'a list'
  if (typeof v === 'object') return 'a mapping'
  if (typeof v === 'string') return JSON.stringify(v)
  return `${typeof v} ${String(v)}`
}

function dedupe(problems: ConfigProblem[]): ConfigProblem[] {
  const seen = new Set<string>()
  return problems.filter((p) => {
    const k = `${p.line}:${p.column}:${p.path}:${p.message}`
    if (seen.has(k)) return false
    seen.add(k)
    return true
  })
}

function sortByPlace(problems: ConfigProblem[]): ConfigProblem[] {
  return problems.sort((a, b) => a.line - b.line || a.column - b.column)
}

/** The yaml package's first message line, without its own "at line N, column M:" (we print the place first). */
function firstLine(s: string): string {
  return (s.split('\n')[0] ?? s).replace(/ at line \d+, column \d+:?$/, '')
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value)
    for (const v of Object.values(value as object)) deepFreeze(v)
  }
  return value
}
