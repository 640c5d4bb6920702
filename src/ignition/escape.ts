/**
 * Putting template values into Ignition JSON and Butane YAML as values, never as structure (issue 13 item 8).
 * Matchbox pastes values into the text, so a `hostname=` request label holding a newline and `local: other.key`
 * added a file entry to a Butane config, and the answer carried another machine's secret from butane_files_dir.
 * Here the template is rendered with markers in place of values (template.ts `renderTemplateParts`), and then:
 * - JSON: each marker's place is read with JSON's own string rule (`"` opens and closes, `\` escapes the next
 *   character). Inside a string the value is written as JSON string content; outside one, as one JSON value: a
 *   number, true, false or null when the text is exactly that (`"mode": {{ .mode }}` keeps working), else a quoted
 *   string (lists and maps from group metadata as JSON). Either way the text around it keeps its structure.
 * - YAML: the marked text is parsed, and each scalar holding a marker gets the value in the parsed tree, so no
 *   value is ever read as YAML. Plain scalars keep their plain reading (`mode: {{ .mode }}` is still a number to
 *   Butane); a plain scalar that is exactly one list or map value from metadata becomes that list or map.
 */
import { LineCounter, parseDocument, Scalar, visit, type Document } from 'yaml'
import { templateValueText, type TemplateParts } from './template.js'

/** A JSON number or literal, written bare when a value lands outside a string. */
const JSON_LITERAL = /^(-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?|true|false|null)$/

function bareJson(v: unknown): string {
  if (typeof v === 'number' || typeof v === 'boolean') return JSON.stringify(v)
  if (typeof v === 'string') return JSON_LITERAL.test(v) ? v : JSON.stringify(v)
  return JSON.stringify(v) ?? 'null'
}

/** The rendered JSON text, or why the template cannot take a value where it puts one. */
export function substituteJson(parts: TemplateParts): { ok: true; text: string } | { ok: false; message: string } {
  const { text, values } = parts
  const markers = new RegExp(parts.markers.source, 'g')
  let out = ''
  let inString = false
  let escaped = false
  let from = 0
  for (let m = markers.exec(text); m !== null; m = markers.exec(text)) {
    for (let i = from; i < m.index; i++) {
      const c = text.charCodeAt(i)
      if (!inString) inString = c === 34
      else if (escaped) escaped = false
      else if (c === 92) escaped = true
      else if (c === 34) inString = false
    }
    // `"\{{ .x }}"`: the template's backslash would escape the value's first character.
    if (escaped) return { ok: false, message: 'a template value follows a backslash inside a JSON string' }
    const value = values[Number(m[1])]
    out += text.slice(from, m.index) + (inString ? JSON.stringify(templateValueText(value)).slice(1, -1) : bareJson(value))
    from = m.index + m[0].length
  }
  return { ok: true, text: out + text.slice(from) }
}

/** The rendered Butane document (parsed, with its LineCounter), values set in the tree. */
export function substituteYaml(parts: TemplateParts): { doc: Document.Parsed; lines: LineCounter } {
  const lines = new LineCounter()
  const doc = parseDocument(parts.text, { lineCounter: lines, uniqueKeys: true, prettyErrors: false })
  const markers = new RegExp(parts.markers.source, 'g')
  const whole = new RegExp(`^${parts.markers.source}$`)
  visit(doc, {
    Scalar(_key, node) {
      if (typeof node.value !== 'string' || !node.value.match(markers)) return undefined
      const alone = whole.exec(node.value)
      const only = alone === null ? undefined : parts.values[Number(alone[1])]
      if (node.type === Scalar.PLAIN && only !== null && typeof only === 'object') {
        const created = doc.createNode(only)
        if (node.range) created.range = node.range
        return created
      }
      const text = node.value.replace(markers, (_m, i: string) => templateValueText(parts.values[Number(i)]))
      node.value = text
      // Butane reads plain scalars from their source text (0644 is an octal mode): keep that reading.
      if (node.type === Scalar.PLAIN) node.source = text
      return undefined
    },
  })
  return { doc, lines }
}
