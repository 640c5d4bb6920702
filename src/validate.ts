/**
 * `pxebox validate`: everything that can be checked without starting services. The config file (schema, MACs,
 * folders), then the boot model it describes (groups, profiles, Matchbox directory, template files). Returns every
 * problem as one printable line each; an empty list means the config is good.
 */
import { ConfigError, formatProblem } from './config/errors.js'
import { loadConfig } from './config/load.js'
import { loadBootState } from './boot/state.js'
import { bootSourcesOf } from './boot/sources.js'

/** Check `file` and what it references. Never throws for problems in the files; they come back as lines. */
export async function validateAll(file: string): Promise<string[]> {
  let config
  try {
    config = loadConfig(file)
  } catch (err) {
    if (err instanceof ConfigError) return err.problems.map(formatProblem)
    throw err
  }
  const boot = await loadBootState(bootSourcesOf(config))
  return boot.ok ? [] : boot.errors
}
