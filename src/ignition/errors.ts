/**
 * Load-time and request-time errors for Ignition, Butane and templates, with the source position an operator needs
 * to fix them: file, JSON path into the config, and line:column in the text they wrote.
 */
import { LineCounter, parseDocument, isMap, isSeq, isScalar, type Node } from 'yaml'

/** One problem in one config file. `path` is a JSONPath-like location such as `$.storage.files[0].mode`. */
export interface IgnitionError {
  /** Stable machine-readable kind, e.g. `schema`, `semantic`, `json-syntax`, `yaml-syntax`, `butane-unsupported`. */
  code: string
  file: string
  path: string
  /** 1-based line and column in the source text, when known. */
  line?: number
  col?: number
  message: string
}

/** `file:line:col: $.path: message` — the form `pxebox validate` prints and the daemon logs. */
export function formatIgnitionError(e: IgnitionError): string {
  const where = e.line !== undefined ? `${e.file}:${e.line}:${e.col ?? 1}` : e.file
  return `${where}: ${e.path}: ${e.message}`
}

/** A path segment: object key or array index. */
export type PathSegment = string | number

/** Render path segments as `$.a.b[0].c` (keys that are not identifiers are quoted: `$["a b"]`). */
export function pathToString(segments: readonly PathSegment[]): string {
  let out = '$'
  for (const s of segments) {
    if (typeof s === 'number') out += `[${s}]`
    else if (/^[A-Za-z_][A-Za-z0-9_]*$/.test(s)) out += `.${s}`
    else out += `[${JSON.stringify(s)}]`
  }
  return out
}

/** Split an Ajv `instancePath` (JSON Pointer, RFC 6901) into segments; digits become array indices. */
export function pointerToSegments(pointer: string): PathSegment[] {
  if (pointer === '') return []
  return pointer
    .slice(1)
    .split('/')
    .map((raw) => raw.replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((s) => (/^(0|[1-9][0-9]*)$/.test(s) ? Number(s) : s))
}

/** A position lookup over a source text: path segments -> 1-based line/col of that value (or of its key). */
export interface PositionIndex {
  /** Position of the value at `segments`, or of its key when `atKey` (for "unknown field" errors). */
  locate(segments: readonly PathSegment[], atKey?: boolean): { line: number; col: number } | undefined
}

/**
 * Build a position index for JSON or YAML text. JSON is valid YAML 1.2, so one position-aware parser (the `yaml`
 * package's document nodes and `LineCounter`) serves both. Only called when there are errors to place, so the
 * second parse costs nothing on the happy path.
 */
export function positionIndex(text: string): PositionIndex {
  const lineCounter = new LineCounter()
  const doc = parseDocument(text, { lineCounter, keepSourceTokens: false, uniqueKeys: false })
  const at = (offset: number): { line: number; col: number } => lineCounter.linePos(offset)
  return {
    locate(segments, atKey = false) {
      let node: unknown = doc.contents
      let lastOffset: number | undefined = (node as Node | null)?.range?.[0]
      for (const [i, seg] of segments.entries()) {
        if (isMap(node)) {
          const pair = node.items.find((p) => (isScalar(p.key) ? String(p.key.value) : String(p.key)) === String(seg))
          if (pair === undefined) break
          const keyNode = pair.key as Node | null
          lastOffset = keyNode?.range?.[0] ?? lastOffset
          if (atKey && i === segments.length - 1) break
          node = pair.value
          const valueOffset = (node as Node | null)?.range?.[0]
          if (valueOffset !== undefined) lastOffset = valueOffset
        } else if (isSeq(node) && typeof seg === 'number') {
          const item = node.items[seg] as Node | undefined
          if (item === undefined) break
          node = item
          if (item.range) lastOffset = item.range[0]
        } else {
          break
        }
      }
      return lastOffset === undefined ? undefined : at(lastOffset)
    },
  }
}
