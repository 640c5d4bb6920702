/**
 * A small, safe subset of Go text/template as Matchbox uses it for Ignition/Butane/generic templates. The data is
 * built like matchbox's collectVariables (matchbox/http): the group's metadata, then the group's selectors with
 * lower-cased keys on top, then `request` = { query: <request labels>, raw_query }. Matchbox renders with
 * `missingkey=error` and answers 404; we do the same with a typed error. Supported actions, with optional `{{-`/`-}}` whitespace trimming:
 *   {{ .key }}  {{ .a.b }}  {{ .request.query.mac }}  {{ .request.raw_query }}
 *   {{ if .x }} ... {{ else }} ... {{ end }}   (Go truthiness: false, 0, "", empty list/map and missing are false)
 * No functions, pipelines or variables, and no HTML escaping (text/template does none). A reference to a key the
 * data lacks is an error ("missing-key"), never `<no value>`: a machine must not receive a half-rendered config.
 * `renderTemplate` pastes values in as text (generic files, whose format pxebox cannot know); Ignition and Butane
 * templates use `renderTemplateParts`, which keeps the values apart so ./escape.ts can put each one into the parsed
 * JSON/YAML as a value, never as structure (request labels are attacker-controlled: issue 13 item 8).
 */
import { randomBytes } from 'node:crypto'

/** A parsed template: a tree of text, references and conditionals. */
export interface ParsedTemplate {
  readonly nodes: readonly TemplateNode[]
}

/** One node of a parsed template. */
export type TemplateNode =
  | { kind: 'text'; text: string }
  | { kind: 'ref'; path: readonly string[]; line: number; col: number }
  | { kind: 'if'; cond: { path: readonly string[]; line: number; col: number }; then: TemplateNode[]; else: TemplateNode[] }

/** A template syntax error at line:col. */
export interface TemplateSyntaxError {
  line: number
  col: number
  message: string
}

/** A referenced key the data does not provide. `key` is written as in the template: `.a.b`. */
export interface MissingKey {
  key: string
  line: number
  col: number
}

/** Request-time render failure. */
export interface MissingKeyError {
  kind: 'missing-key'
  key: string
  line: number
  col: number
  message: string
}

/** The data a template sees. */
export interface TemplateData {
  metadata: Readonly<Record<string, unknown>>
  /** The matched group's selector; keys are lower-cased and override metadata, as in matchbox. */
  selector?: Readonly<Record<string, unknown>>
  /** Request labels (query parameters such as mac, uuid, hostname): `.request.query.<name>`. */
  labels: Readonly<Record<string, string>>
  /** `.request.raw_query`; defaults to the labels re-encoded as a query string. */
  rawQuery?: string
}

/** True when text contains a template action, i.e. it must be rendered per request. */
export function hasTemplateMarkers(text: string): boolean {
  return text.includes('{{')
}

const REF = /^\.([A-Za-z_][A-Za-z0-9_-]*(?:\.[A-Za-z_][A-Za-z0-9_-]*)*)$/

/** Parse a template; every syntax error is reported (there is no partial parse). */
export function parseTemplate(text: string): { ok: true; template: ParsedTemplate } | { ok: false, errors: TemplateSyntaxError[] } {
  const errors: TemplateSyntaxError[] = []
  const root: TemplateNode[] = []
  const stack: { node: Extract<TemplateNode, { kind: 'if' }>; inElse: boolean }[] = []
  const current = (): TemplateNode[] => {
    const top = stack[stack.length - 1]
    return top === undefined ? root : top.inElse ? top.node.else : top.node.then
  }
  const lineStarts = [0]
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) === 10) lineStarts.push(i + 1)
  const pos = (offset: number): { line: number; col: number } => {
    let lo = 0
    let hi = lineStarts.length - 1
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1
      if ((lineStarts[mid] ?? 0) <= offset) lo = mid
      else hi = mid - 1
    }
    return { line: lo + 1, col: offset - (lineStarts[lo] ?? 0) + 1 }
  }

  let i = 0
  let pendingText = ''
  let trimNext = false
  const flushText = (trimRight: boolean): void => {
    let t = pendingText
    if (trimRight) t = t.replace(/\s+$/, '')
    if (t !== '') current().push({ kind: 'text', text: t })
    pendingText = ''
  }
  while (i < text.length) {
    const open = text.indexOf('{{', i)
    let chunk = open < 0 ? text.slice(i) : text.slice(i, open)
    if (trimNext) chunk = chunk.replace(/^\s+/, '')
    trimNext = false
    pendingText += chunk
    if (open < 0) break
    const close = text.indexOf('}}', open + 2)
    if (close < 0) {
      errors.push({ ...pos(open), message: 'unclosed action: "{{" without "}}"' })
      break
    }
    let inner = text.slice(open + 2, close)
    const trimLeft = inner.startsWith('- ') || inner === '-'
    if (trimLeft) inner = inner.slice(1)
    if (inner.endsWith(' -')) {
      inner = inner.slice(0, -1)
      trimNext = true
    }
    flushText(trimLeft)
    const action = inner.trim()
    const at = pos(open)
    i = close + 2
    const ifMatch = /^if\s+(\S+)$/.exec(action)
    if (REF.test(action)) {
      current().push({ kind: 'ref', path: action.slice(1).split('.'), ...at })
    } else if (ifMatch) {
      const cond = ifMatch[1] ?? ''
      if (!REF.test(cond)) {
        errors.push({ ...at, message: `"if" takes one reference like .key; got "${cond}"` })
        continue
      }
      const node: Extract<TemplateNode, { kind: 'if' }> = { kind: 'if', cond: { path: cond.slice(1).split('.'), ...at }, then: [], else: [] }
      current().push(node)
      stack.push({ node, inElse: false })
    } else if (action === 'else') {
      const top = stack[stack.length - 1]
      if (top === undefined || top.inElse) errors.push({ ...at, message: '"else" without a matching "if"' })
      else top.inElse = true
    } else if (action === 'end') {
      if (stack.pop() === undefined) errors.push({ ...at, message: '"end" without a matching "if"' })
    } else if (action.startsWith('/*') && action.endsWith('*/')) {
      // Go template comment: renders nothing.
    } else {
      errors.push({ ...at, message: `unsupported template action "{{${inner}}}": pxebox supports {{ .key }}, {{ .a.b }}, {{ if .x }}/{{ else }}/{{ end }}` })
    }
  }
  flushText(false)
  for (const open of stack) errors.push({ line: open.node.cond.line, col: open.node.cond.col, message: '"if" without "end"' })
  return errors.length > 0 ? { ok: false, errors } : { ok: true, template: { nodes: root } }
}

/** The `.` value templates see, built like matchbox: metadata plus `request`. */
export function templateContext(data: TemplateData): Record<string, unknown> {
  const rawQuery = data.rawQuery ?? new URLSearchParams(Object.entries(data.labels)).toString()
  const selector = Object.fromEntries(Object.entries(data.selector ?? {}).map(([k, v]) => [k.toLowerCase(), v]))
  return { ...data.metadata, ...selector, request: { query: { ...data.labels }, raw_query: rawQuery } }
}

const MISSING = Symbol('missing')

function lookup(ctx: unknown, path: readonly string[]): unknown {
  let v: unknown = ctx
  for (const key of path) {
    if (v === null || typeof v !== 'object' || Array.isArray(v) || !Object.prototype.hasOwnProperty.call(v, key)) return MISSING
    v = (v as Record<string, unknown>)[key]
  }
  return v === null || v === undefined ? MISSING : v
}

/** Go template truthiness. */
function truthy(v: unknown): boolean {
  if (v === MISSING || v === false || v === 0 || v === '') return false
  if (Array.isArray(v)) return v.length > 0
  if (typeof v === 'object' && v !== null) return Object.keys(v).length > 0
  return true
}

/** Scalars print as text; lists and maps print as JSON (Go would print `map[...]`, useless in a config). */
export function templateValueText(v: unknown): string {
  return typeof v === 'string' ? v : typeof v === 'object' ? JSON.stringify(v) : String(v)
}

/** Render with the given data, values pasted in as text; the first reference to a missing key stops rendering. */
export function renderTemplate(template: ParsedTemplate, data: TemplateData): { ok: true; text: string } | { ok: false; error: MissingKeyError } {
  const r = walkTemplate(template, data, (v) => templateValueText(v))
  return r.ok ? { ok: true, text: r.text } : r
}

/**
 * A render with every value kept apart: `text` is the template's own output with a marker where each value goes
 * (`marker(i)` for `values[i]`; markers are lowercase letters and digits, so they survive any JSON or YAML scalar
 * style unchanged, and carry a random part the template's text does not contain).
 */
export interface TemplateParts {
  readonly text: string
  readonly values: readonly unknown[]
  /** Matches every marker in `text`; group 1 is the value's index. Global: reset `lastIndex` or use `replace`. */
  readonly markers: RegExp
}

/** renderTemplate, keeping values apart for format-aware substitution (./escape.ts). */
export function renderTemplateParts(template: ParsedTemplate, data: TemplateData): { ok: true; parts: TemplateParts } | { ok: false; error: MissingKeyError } {
  const own = templateText(template)
  let prefix: string
  do prefix = `pxv${randomBytes(8).toString('hex')}n`
  while (own.includes(prefix))
  const values: unknown[] = []
  const r = walkTemplate(template, data, (v) => {
    values.push(v)
    return `${prefix}${values.length - 1}e`
  })
  if (!r.ok) return r
  return { ok: true, parts: { text: r.text, values, markers: new RegExp(`${prefix}(\\d+)e`, 'g') } }
}

function templateText(template: ParsedTemplate): string {
  let out = ''
  const walk = (nodes: readonly TemplateNode[]): void => {
    for (const n of nodes) {
      if (n.kind === 'text') out += n.text
      else if (n.kind === 'if') {
        walk(n.then)
        walk(n.else)
      }
    }
  }
  walk(template.nodes)
  return out
}

function walkTemplate(
  template: ParsedTemplate,
  data: TemplateData,
  emit: (value: unknown) => string,
): { ok: true; text: string } | { ok: false; error: MissingKeyError } {
  const ctx = templateContext(data)
  let out = ''
  const walk = (nodes: readonly TemplateNode[]): MissingKeyError | undefined => {
    for (const n of nodes) {
      if (n.kind === 'text') out += n.text
      else if (n.kind === 'ref') {
        const v = lookup(ctx, n.path)
        if (v === MISSING) {
          const key = '.' + n.path.join('.')
          return { kind: 'missing-key', key, line: n.line, col: n.col, message: `template references ${key} at line ${n.line}:${n.col}, which this machine's group and request do not provide` }
        }
        out += emit(v)
      } else {
        const failed = walk(truthy(lookup(ctx, n.cond.path)) ? n.then : n.else)
        if (failed) return failed
      }
    }
    return undefined
  }
  const failed = walk(template.nodes)
  return failed ? { ok: false, error: failed } : { ok: true, text: out }
}

/**
 * Load-time lint: the references a group's metadata does not provide. `.request.query.*` and `.request.raw_query`
 * count as provided (request labels are only known per request). A reference inside `{{ if .x }}` whose path starts
 * with `.x` is guarded and not reported; neither are `if` conditions themselves (a missing key there means false).
 */
export function lintTemplate(
  template: ParsedTemplate,
  metadata: Readonly<Record<string, unknown>>,
  selector: Readonly<Record<string, unknown>> = {},
): MissingKey[] {
  const missing: MissingKey[] = []
  const provided = templateContext({ metadata, selector, labels: {} })
  const fromRequest = (path: readonly string[]): boolean =>
    path[0] === 'request' && ((path[1] === 'query' && path.length === 3) || (path[1] === 'raw_query' && path.length === 2))
  const guarded = (path: readonly string[], guards: readonly (readonly string[])[]): boolean =>
    guards.some((g) => g.length <= path.length && g.every((seg, i) => path[i] === seg))
  const walk = (nodes: readonly TemplateNode[], guards: readonly (readonly string[])[]): void => {
    for (const n of nodes) {
      if (n.kind === 'ref') {
        if (!guarded(n.path, guards) && !fromRequest(n.path) && lookup(provided, n.path) === MISSING) missing.push({ key: '.' + n.path.join('.'), line: n.line, col: n.col })
      } else if (n.kind === 'if') {
        walk(n.then, [...guards, n.cond.path])
        walk(n.else, guards)
      }
    }
  }
  walk(template.nodes, [])
  return missing
}

/** Every reference in a template (values and `if` conditions), in source order. */
export function templateReferences(template: ParsedTemplate): { path: readonly string[]; line: number; col: number }[] {
  const out: { path: readonly string[]; line: number; col: number }[] = []
  const walk = (nodes: readonly TemplateNode[]): void => {
    for (const n of nodes) {
      if (n.kind === 'ref') out.push(n)
      else if (n.kind === 'if') {
        out.push(n.cond)
        walk(n.then)
        walk(n.else)
      }
    }
  }
  walk(template.nodes)
  return out
}
