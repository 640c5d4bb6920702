/**
 * Ignition spec versions pxebox understands, and what a machine's Accept header asks for.
 *
 * Ignition 3.x announces the newest spec it can parse in its Accept header, e.g.
 * `application/vnd.coreos.ignition+json;version=3.4.0, application/vnd.coreos.ignition+json; version=1;q=0.5, *\/*;q=0.1`
 * (ignition internal/resource/url.go). Any 3.x config whose version is <= that number is accepted by that Ignition.
 */

/** The spec versions pxebox validates and serves, oldest first. */
export const IGNITION_VERSIONS = ['3.0.0', '3.1.0', '3.2.0', '3.3.0', '3.4.0'] as const

/** One of the supported spec versions. */
export type IgnitionVersion = (typeof IGNITION_VERSIONS)[number]

/** What we serve when a request does not say: the newest supported spec. */
export const DEFAULT_IGNITION_VERSION: IgnitionVersion = '3.4.0'

/** A parsed `major.minor.patch` (pre-release tags such as `-experimental` are kept apart). */
export interface SpecVersion {
  major: number
  minor: number
  patch: number
  prerelease: string
}

/** Parse `3.2.0` / `3.5.0-experimental`; undefined if it is not a semantic version. */
export function parseSpecVersion(text: string): SpecVersion | undefined {
  const m = /^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(?:-([0-9A-Za-z.-]+))?$/.exec(text)
  if (m === null) return undefined
  return { major: Number(m[1]), minor: Number(m[2]), patch: Number(m[3]), prerelease: m[4] ?? '' }
}

/** Order two versions; a pre-release sorts before the release with the same number (semver rule Ignition follows). */
export function compareSpecVersions(a: SpecVersion, b: SpecVersion): number {
  if (a.major !== b.major) return a.major - b.major
  if (a.minor !== b.minor) return a.minor - b.minor
  if (a.patch !== b.patch) return a.patch - b.patch
  if (a.prerelease === b.prerelease) return 0
  if (a.prerelease === '') return 1
  if (b.prerelease === '') return -1
  return a.prerelease < b.prerelease ? -1 : 1
}

/** True when `text` is one of the supported spec versions exactly. */
export function isSupportedIgnitionVersion(text: unknown): text is IgnitionVersion {
  return typeof text === 'string' && (IGNITION_VERSIONS as readonly string[]).includes(text)
}

/** Minor number of a supported 3.x version: `3.2.0` -> 2. */
export function ignitionMinor(version: IgnitionVersion): number {
  return IGNITION_VERSIONS.indexOf(version)
}

/**
 * The Ignition spec version a machine asked for, from its HTTP Accept header: the highest
 * `application/vnd.coreos.ignition+json;version=X` with q > 0. Undefined when the header names none (curl, a browser,
 * iPXE): callers then use DEFAULT_IGNITION_VERSION.
 */
export function requestedIgnitionVersion(accept: string | undefined): string | undefined {
  if (accept === undefined) return undefined
  let best: { text: string; v: SpecVersion } | undefined
  for (const part of accept.split(',')) {
    const [type, ...params] = part.split(';').map((s) => s.trim())
    if (type?.toLowerCase() !== 'application/vnd.coreos.ignition+json') continue
    let version: string | undefined
    let q = 1
    for (const p of params) {
      const eq = p.indexOf('=')
      if (eq < 0) continue
      const key = p.slice(0, eq).trim().toLowerCase()
      const value = p.slice(eq + 1).trim().replace(/^"|"$/g, '')
      if (key === 'version') version = value
      if (key === 'q') q = Number(value)
    }
    if (version === undefined || !(q > 0)) continue
    // Ignition 2.x sends `version=2.x.0`; older clients `version=1`. Normalise short forms so they still compare.
    const full = /^\d+$/.test(version) ? `${version}.0.0` : /^\d+\.\d+$/.test(version) ? `${version}.0` : version
    const v = parseSpecVersion(full)
    if (v === undefined) continue
    if (best === undefined || compareSpecVersions(v, best.v) > 0) best = { text: full, v }
  }
  return best?.text
}
