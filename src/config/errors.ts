/**
 * Config problems: every one names the file, the line and column, the key path and what was expected, so an
 * operator can fix a config.yaml without guessing.
 */

/** One thing wrong with a config file. `line`/`column` are 1-based; 0 when the problem has no place in the file. */
export interface ConfigProblem {
  file: string
  line: number
  column: number
  /** Key path in dotted form, e.g. `groups[2].selector.mac`; empty for the document itself. */
  path: string
  message: string
}

/** Format a problem the way compilers do: `file:line:col: path: message`. */
export function formatProblem(p: ConfigProblem): string {
  const where = p.line > 0 ? `${p.file}:${p.line}:${p.column}` : p.file
  return p.path ? `${where}: ${p.path}: ${p.message}` : `${where}: ${p.message}`
}

/** Thrown by the config loader with every problem found, never only the first. */
export class ConfigError extends Error {
  readonly code = 'PXEBOX_CONFIG_INVALID'
  constructor(readonly problems: ConfigProblem[]) {
    super(
      `${problems.length} problem${problems.length === 1 ? '' : 's'} in config:\n` +
        problems.map((p) => '  ' + formatProblem(p)).join('\n'),
    )
    this.name = 'ConfigError'
  }
}

/** Turn a key path array into the dotted/bracketed form used in messages. */
export function pathToString(path: readonly (string | number)[]): string {
  let out = ''
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`
    else out += out ? `.${part}` : part
  }
  return out
}
