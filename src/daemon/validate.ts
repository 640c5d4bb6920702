/**
 * `pxebox validate`: everything that can be checked without starting services. The config file (schema, MACs,
 * folders), then the boot model it describes (groups, profiles, Matchbox directory, Ignition/Butane/generic files,
 * each group against the templates it uses). Returns every problem as one printable line each; no problems means the
 * config is good. Warnings (a template referencing a key some group lacks: the daemon starts and that group's
 * machines get a 404) are printed too but do not fail validation.
 */
import { ConfigError, formatProblem } from '../config/errors.js'
import { loadConfig } from '../config/load.js'
import { loadBootState } from '../catalog/state.js'
import { bootSourcesOf } from '../config/boot-sources.js'

/** What validateAll found: problems (the daemon would refuse to start) and warnings (it would start). */
export interface ValidationReport {
  problems: string[]
  warnings: string[]
}

/** Check `file` and what it references. Never throws for problems in the files; they come back as lines. */
export async function validateAll(file: string): Promise<ValidationReport> {
  let config
  try {
    config = loadConfig(file)
  } catch (err) {
    if (err instanceof ConfigError) return { problems: err.problems.map(formatProblem), warnings: [] }
    throw err
  }
  const boot = await loadBootState(bootSourcesOf(config))
  return { problems: boot.ok ? [] : boot.errors, warnings: boot.warnings }
}
