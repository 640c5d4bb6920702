/**
 * Checks Ignition makes beyond the JSON shape (coreos/ignition config/v3_N/types validate.go behaviour, described in
 * the spec pages): URL schemes allowed per version, hash format, duplicate paths/names, and overwrite without source.
 * The config is already schema-valid for `minor` when this runs.
 */
import { pathToString, type PathSegment } from './errors.js'

/** A semantic problem before file and position are attached. */
export interface SemanticProblem {
  path: PathSegment[]
  message: string
}

/** URL schemes each spec accepts in `source` (spec text "Supported schemes are ..."). */
const SCHEMES_SINCE: Readonly<Record<string, number>> = { http: 0, https: 0, tftp: 0, s3: 0, data: 0, gs: 2, arn: 4 }
/** Hash functions per spec: sha512 from 3.0, sha256 from 3.1. */
const HASH_SINCE: Readonly<Record<string, { minor: number; hexLength: number }>> = {
  sha512: { minor: 0, hexLength: 128 },
  sha256: { minor: 1, hexLength: 64 },
}

type Json = Record<string, unknown>
const asList = (v: unknown): Json[] => (Array.isArray(v) ? (v as Json[]) : [])
const asObj = (v: unknown): Json | undefined => (v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Json) : undefined)

/** RFC 2397 shape: `data:[<mediatype>][;base64],<data>`; base64 payload must decode. */
function dataUrlProblem(url: string): string | undefined {
  const comma = url.indexOf(',')
  if (comma < 0) return 'a data URL needs a "," before its data (RFC 2397)'
  const meta = url.slice(5, comma)
  const payload = url.slice(comma + 1)
  if (/;base64$/i.test(meta)) {
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(payload) || payload.length % 4 !== 0) return 'data URL says base64 but its data is not base64'
  } else {
    try {
      decodeURIComponent(payload)
    } catch {
      return 'data URL has a malformed %-escape'
    }
  }
  return undefined
}

function checkSource(source: unknown, path: PathSegment[], minor: number, out: SemanticProblem[]): void {
  if (typeof source !== 'string' || source === '') return // "" is allowed: an empty file (migrating-configs.md)
  const m = /^([A-Za-z][A-Za-z0-9+.-]*):/.exec(source)
  const scheme = m?.[1]?.toLowerCase()
  if (scheme === undefined) {
    out.push({ path, message: `expected a URL with a scheme (http, https, tftp, s3, data...); got "${source}"` })
    return
  }
  const since = SCHEMES_SINCE[scheme]
  if (since === undefined) {
    out.push({ path, message: `unsupported URL scheme "${scheme}"` })
  } else if (since > minor) {
    out.push({ path, message: `URL scheme "${scheme}" needs Ignition 3.${since}.0 or later; this config is 3.${minor}.0` })
  } else if (scheme === 'data') {
    const problem = dataUrlProblem(source)
    if (problem) out.push({ path, message: problem })
  }
}

function checkResource(res: unknown, path: PathSegment[], minor: number, out: SemanticProblem[]): void {
  const r = asObj(res)
  if (!r) return
  checkSource(r.source, [...path, 'source'], minor, out)
  const hash = asObj(r.verification)?.hash
  if (typeof hash === 'string') {
    const [fn, hex] = hash.split('-', 2)
    const spec = fn === undefined ? undefined : HASH_SINCE[fn]
    const hpath = [...path, 'verification', 'hash']
    if (spec === undefined || hex === undefined) {
      out.push({ path: hpath, message: `expected "<function>-<hex digest>" with sha512${minor >= 1 ? ' or sha256' : ''}; got "${hash}"` })
    } else if (spec.minor > minor) {
      out.push({ path: hpath, message: `${fn} hashes need Ignition 3.${spec.minor}.0 or later; this config is 3.${minor}.0` })
    } else if (!new RegExp(`^[0-9a-fA-F]{${spec.hexLength}}$`).test(hex)) {
      out.push({ path: hpath, message: `expected ${spec.hexLength} hex digits after "${fn}-"` })
    }
  }
}

/** Report every later entry whose key repeats an earlier one. */
function unique(entries: { key: unknown; path: PathSegment[] }[], what: string, out: SemanticProblem[]): void {
  const seen = new Map<string, PathSegment[]>()
  for (const e of entries) {
    if (typeof e.key !== 'string') continue
    const first = seen.get(e.key)
    if (first) out.push({ path: e.path, message: `duplicate ${what} "${e.key}" (first at ${pathToString(first)})` })
    else seen.set(e.key, e.path)
  }
}

/** All semantic problems in a schema-valid config of spec 3.<minor>.0. */
export function semanticProblems(config: Json, minor: number): SemanticProblem[] {
  const out: SemanticProblem[] = []
  const ign = asObj(config.ignition) ?? {}
  const cfg = asObj(ign.config)
  asList(cfg?.merge).forEach((r, i) => checkResource(r, ['ignition', 'config', 'merge', i], minor, out))
  if (cfg?.replace) checkResource(cfg.replace, ['ignition', 'config', 'replace'], minor, out)
  const cas = asList(asObj(asObj(ign.security)?.tls)?.certificateAuthorities)
  cas.forEach((r, i) => checkResource(r, ['ignition', 'security', 'tls', 'certificateAuthorities', i], minor, out))
  unique(cas.map((c, i) => ({ key: c.source, path: ['ignition', 'security', 'tls', 'certificateAuthorities', i, 'source'] })), 'certificate authority source', out)

  const storage = asObj(config.storage) ?? {}
  const nodes: { key: unknown; path: PathSegment[] }[] = []
  asList(storage.files).forEach((f, i) => {
    const p: PathSegment[] = ['storage', 'files', i]
    nodes.push({ key: f.path, path: [...p, 'path'] })
    checkResource(f.contents, [...p, 'contents'], minor, out)
    asList(f.append).forEach((a, j) => checkResource(a, [...p, 'append', j], minor, out))
    const source = asObj(f.contents)?.source
    if (f.overwrite === true && (typeof source !== 'string' || source === '')) {
      out.push({ path: [...p, 'overwrite'], message: 'overwrite is true but contents.source is not set (Ignition refuses this)' })
    }
  })
  asList(storage.directories).forEach((d, i) => nodes.push({ key: d.path, path: ['storage', 'directories', i, 'path'] }))
  asList(storage.links).forEach((l, i) => nodes.push({ key: l.path, path: ['storage', 'links', i, 'path'] }))
  unique(nodes, 'path', out)
  unique(asList(storage.disks).map((d, i) => ({ key: d.device, path: ['storage', 'disks', i, 'device'] })), 'disk device', out)
  unique(asList(storage.filesystems).map((d, i) => ({ key: d.device, path: ['storage', 'filesystems', i, 'device'] })), 'filesystem device', out)
  unique(asList(storage.raid).map((d, i) => ({ key: d.name, path: ['storage', 'raid', i, 'name'] })), 'raid name', out)
  const luks = asList(storage.luks)
  unique(luks.map((d, i) => ({ key: d.name, path: ['storage', 'luks', i, 'name'] })), 'luks name', out)
  luks.forEach((l, i) => checkResource(l.keyFile, ['storage', 'luks', i, 'keyFile'], minor, out))

  const units = asList(asObj(config.systemd)?.units)
  unique(units.map((u, i) => ({ key: u.name, path: ['systemd', 'units', i, 'name'] })), 'unit name', out)
  units.forEach((u, i) =>
    unique(asList(u.dropins).map((d, j) => ({ key: d.name, path: ['systemd', 'units', i, 'dropins', j, 'name'] })), 'drop-in name', out),
  )
  const passwd = asObj(config.passwd) ?? {}
  unique(asList(passwd.users).map((u, i) => ({ key: u.name, path: ['passwd', 'users', i, 'name'] })), 'user name', out)
  unique(asList(passwd.groups).map((g, i) => ({ key: g.name, path: ['passwd', 'groups', i, 'name'] })), 'group name', out)
  return out
}
