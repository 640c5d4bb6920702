/**
 * Which spec version a machine gets. Ignition accepts any 3.x config whose version is <= the newest it supports, so:
 * - config version <= requested: served unchanged;
 * - requested older than the config (an old Ignition, e.g. 3.2.0, asking for a 3.4.0 config): down-converted by
 *   rewriting `ignition.version` when the config uses nothing newer than the requested spec (checked with that
 *   spec's schema and rules: since 3.x specs only add fields, a config valid under the older schema means the same
 *   there); otherwise refused with kind `version` and the first offending fields — the route answers 406;
 * - a non-3 request (Ignition 2.x asks for 2.x) is refused: pxebox does not translate to spec 2.
 */
import { formatIgnitionError, pathToString } from './errors.js'
import type { IgnitionConfig } from './schema.js'
import { checkAgainstVersion } from './validate.js'
import {
  compareSpecVersions,
  DEFAULT_IGNITION_VERSION,
  IGNITION_VERSIONS,
  parseSpecVersion,
  type IgnitionVersion,
} from './version.js'

/** A config fit for the machine, or why not. */
export type VersionedConfig =
  | { ok: true; config: IgnitionConfig; version: IgnitionVersion; converted: boolean }
  | { ok: false; message: string }

/** Decide what to serve for `requested` (a version string from the Accept header; undefined = 3.4.0). */
export function configForRequestedVersion(
  config: IgnitionConfig,
  version: IgnitionVersion,
  requested: string | undefined,
): VersionedConfig {
  const wantText = requested ?? DEFAULT_IGNITION_VERSION
  const want = parseSpecVersion(wantText)
  if (want === undefined) return { ok: false, message: `requested Ignition version "${wantText}" is not a spec version` }
  if (want.major !== 3) {
    return { ok: false, message: `machine asked for Ignition spec ${wantText}; pxebox serves spec 3 configs (3.0.0-3.4.0) only` }
  }
  const have = parseSpecVersion(version)
  if (have !== undefined && compareSpecVersions(have, want) <= 0) return { ok: true, config, version, converted: false }
  // Highest supported spec not newer than what the machine can read.
  const target = [...IGNITION_VERSIONS].reverse().find((v) => {
    const p = parseSpecVersion(v)
    return p !== undefined && compareSpecVersions(p, want) <= 0
  })
  if (target === undefined) return { ok: false, message: `machine asked for Ignition ${wantText}, older than any spec pxebox serves` }
  const problems = checkAgainstVersion({ ...config, ignition: { ...config.ignition, version: target } }, target)
  if (problems.length > 0) {
    const shown = problems
      .slice(0, 3)
      .map((p) => formatIgnitionError({ code: p.code, file: 'config', path: pathToString(p.path), message: p.message }))
      .join('; ')
    return {
      ok: false,
      message: `config is Ignition ${version} and uses fields ${target} lacks (machine asked for ${wantText}): ${shown}${problems.length > 3 ? `; and ${problems.length - 3} more` : ''}`,
    }
  }
  return { ok: true, config: { ...config, ignition: { ...config.ignition, version: target } }, version: target, converted: true }
}
