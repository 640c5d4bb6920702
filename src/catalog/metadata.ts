/**
 * Template variables and the `/metadata` env-file format, as Matchbox defines them.
 *
 * Variables (Matchbox's collectVariables): the group's metadata, then its selector labels by lowercase name
 * (overriding metadata keys of the same name), then `request: {query: <labels>, raw_query: <query string>}`.
 * For a list selector (pxebox extension) the variable is the value the machine actually sent.
 */
import type { Labels } from './labels.js'
import type { Group } from './model.js'

/** Variables for templates and `/metadata`. */
export function collectVariables(group: Group, labels: Labels, rawQuery: string): Record<string, unknown> {
  const vars: Record<string, unknown> = { ...group.metadata }
  for (const [key, values] of Object.entries(group.selector)) {
    vars[key] = values.length === 1 ? values[0] : (labels[key] ?? values)
  }
  vars['request'] = { query: { ...labels }, raw_query: rawQuery }
  return vars
}

/**
 * `KEY=value` lines: names uppercased, nested objects flattened with `_` (`{"outer":{"inner":1}}` -> `OUTER_INNER=1`),
 * as Matchbox's renderAsEnvFile. Differences, all additive: keys are sorted (Matchbox's order is random); a list of
 * scalars is written comma-joined (Matchbox drops lists); line breaks in values are written as `\n` so a value cannot
 * forge another line. null and other values are skipped, as in Matchbox.
 */
export function renderEnvFile(vars: Record<string, unknown>): string {
  const lines: string[] = []
  walk(vars, '', lines)
  return lines.join('')
}

function walk(obj: Record<string, unknown>, prefix: string, lines: string[]): void {
  for (const key of Object.keys(obj).sort()) {
    const value = obj[key]
    const name = prefix + key
    if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') {
      lines.push(`${name.toUpperCase()}=${escapeValue(String(value))}\n`)
    } else if (Array.isArray(value)) {
      if (value.every((v) => typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean')) {
        lines.push(`${name.toUpperCase()}=${escapeValue(value.join(','))}\n`)
      }
    } else if (value !== null && typeof value === 'object') {
      walk(value as Record<string, unknown>, `${name}_`, lines)
    }
  }
}

function escapeValue(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/\r/g, '\\r').replace(/\n/g, '\\n')
}
