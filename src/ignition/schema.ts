/**
 * The Ignition 3.x config model, one typebox schema per spec version 3.0.0-3.4.0, written from the published specs
 * (coreos/ignition docs/configuration-v3_0.md ... configuration-v3_4.md). Every object forbids unknown keys, so a
 * field from a later spec (say `kernelArguments` in a 3.2.0 config) is an error, as it is for Ignition itself.
 *
 * What each version added (docs/migrating-configs.md and the spec pages):
 * - 3.1: `ignition.proxy`, `httpHeaders` on every resource, `compression` on config merge/replace and certificate
 *   authorities, `sha256` hashes, `filesystems[].mountOptions`.
 * - 3.2: `storage.luks`, `partitions[].resize`, `shouldExist` on users and groups, `gs://` URLs.
 * - 3.3: `kernelArguments`, filesystem format `none`.
 * - 3.4: `luks[].discard`, `luks[].openOptions`, `clevis.tang[].advertisement`, setuid/setgid/sticky mode bits
 *   (mode was already 0..07777 in the schema), `arn:` URLs.
 *
 * Optional fields also accept JSON null: Ignition's Go types are pointers and decode null as "unset".
 */
import { Type, type TSchema } from '@sinclair/typebox'
import { IGNITION_VERSIONS, type IgnitionVersion } from './version.js'

/** A parsed, validated Ignition config. The schema guarantees the shape; this type only names what code reads. */
export interface IgnitionConfig {
  ignition: { version: string; [key: string]: unknown }
  [key: string]: unknown
}

/** Make a schema optional and null-tolerant (Go pointer semantics). */
function opt(schema: TSchema): TSchema {
  const type = (schema as { type?: string }).type
  return Type.Optional(type === undefined ? schema : Type.Unsafe({ ...schema, type: [type, 'null'] }))
}

/** A closed object: `required` keys must be present, `optional` keys may be; undefined entries are not in this spec. */
function obj(required: Record<string, TSchema>, optional: Record<string, TSchema | undefined>, description?: string): TSchema {
  const props: Record<string, TSchema> = { ...required }
  for (const [k, v] of Object.entries(optional)) if (v !== undefined) props[k] = opt(v)
  return Type.Object(props, { additionalProperties: false, ...(description ? { description } : {}) })
}

const str = (description?: string): TSchema => Type.String(description ? { description } : {})
const int = (description?: string): TSchema => Type.Integer(description ? { description } : {})
const bool = (): TSchema => Type.Boolean()
const list = (items: TSchema): TSchema => Type.Array(items)
const absPath = (): TSchema => Type.String({ pattern: '^/', description: 'an absolute path starting with "/"' })

/** The model for spec 3.<minor>.0. */
function model(minor: number): TSchema {
  const since = <T>(min: number, value: T): T | undefined => (minor >= min ? value : undefined)

  const httpHeaders = list(obj({ name: str() }, { value: str() }))
  const verification = obj({}, { hash: str('a hash like sha512-<128 hex digits>') })
  const compression = Type.String({ enum: ['', 'gzip'], description: 'a compression: "gzip" or empty' })
  /** A fetched resource; `requireSource` for config merge/replace and CAs, where `source` is mandatory. */
  const resource = (requireSource: boolean, compressible: boolean): TSchema =>
    obj(requireSource ? { source: str() } : {}, {
      ...(requireSource ? {} : { source: str() }),
      compression: compressible ? compression : undefined,
      httpHeaders: since(1, httpHeaders),
      verification,
    })
  const configResource = resource(true, minor >= 1)
  const owner = obj({}, { id: int(), name: str() })
  const mode = Type.Integer({
    minimum: 0,
    maximum: 0o7777,
    description: 'a permission mode between 0 and 4095 written in decimal (0644 is 420)',
  })
  const node = { path: absPath() }
  const nodeOptional = { overwrite: bool(), user: owner, group: owner }

  const ignition = obj(
    { version: str('a spec version such as "3.4.0"') },
    {
      config: obj({}, { merge: list(configResource), replace: configResource }),
      timeouts: obj({}, { httpResponseHeaders: int(), httpTotal: int() }),
      security: obj({}, { tls: obj({}, { certificateAuthorities: list(resource(true, minor >= 1)) }) }),
      proxy: since(1, obj({}, { httpProxy: str(), httpsProxy: str(), noProxy: list(str()) })),
    },
  )

  const partition = obj(
    {},
    {
      label: str(),
      number: int(),
      sizeMiB: int(),
      startMiB: int(),
      typeGuid: str(),
      guid: str(),
      wipePartitionEntry: bool(),
      shouldExist: bool(),
      resize: since(2, bool()),
    },
  )
  const formats = ['ext4', 'btrfs', 'xfs', 'vfat', 'swap', ...(minor >= 3 ? ['none'] : [])]
  const filesystem = obj(
    { device: absPath(), format: Type.String({ enum: formats, description: `a filesystem format: ${formats.join(', ')}` }) },
    {
      path: absPath(),
      wipeFilesystem: bool(),
      label: str(),
      uuid: str(),
      options: list(str()),
      mountOptions: since(1, list(str())),
    },
  )
  const luks = obj(
    { name: str(), device: absPath() },
    {
      keyFile: resource(false, true),
      label: str(),
      uuid: str(),
      options: list(str()),
      wipeVolume: bool(),
      discard: since(4, bool()),
      openOptions: since(4, list(str())),
      clevis: obj(
        {},
        {
          tang: list(obj({ url: str(), thumbprint: str() }, { advertisement: since(4, str()) })),
          tpm2: bool(),
          threshold: int(),
          custom: obj({ pin: str(), config: str() }, { needsNetwork: bool() }),
        },
      ),
    },
  )

  const storage = obj(
    {},
    {
      disks: list(obj({ device: absPath() }, { wipeTable: bool(), partitions: list(partition) })),
      raid: list(obj({ name: str(), level: str(), devices: list(absPath()) }, { spares: int(), options: list(str()) })),
      filesystems: list(filesystem),
      files: list(obj(node, { ...nodeOptional, contents: resource(false, true), append: list(resource(false, true)), mode })),
      directories: list(obj(node, { ...nodeOptional, mode })),
      links: list(obj({ ...node, target: str() }, { ...nodeOptional, hard: bool() })),
      luks: since(2, list(luks)),
    },
  )

  const unitName = Type.String({
    pattern: '\\.(service|socket|device|mount|automount|swap|target|path|timer|snapshot|slice|scope)$',
    description: 'a unit name with a unit type suffix such as ".service"',
  })
  const dropinName = Type.String({ pattern: '\\.conf$', description: 'a drop-in name ending in ".conf"' })
  const systemd = obj(
    {},
    {
      units: list(
        obj(
          { name: unitName },
          { enabled: bool(), mask: bool(), contents: str(), dropins: list(obj({ name: dropinName }, { contents: str() })) },
        ),
      ),
    },
  )

  const passwd = obj(
    {},
    {
      users: list(
        obj(
          { name: str() },
          {
            passwordHash: str(),
            sshAuthorizedKeys: list(str()),
            uid: int(),
            gecos: str(),
            homeDir: str(),
            noCreateHome: bool(),
            primaryGroup: str(),
            groups: list(str()),
            noUserGroup: bool(),
            noLogInit: bool(),
            shell: str(),
            shouldExist: since(2, bool()),
            system: bool(),
          },
        ),
      ),
      groups: list(obj({ name: str() }, { gid: int(), passwordHash: str(), shouldExist: since(2, bool()), system: bool() })),
    },
  )

  return obj(
    { ignition },
    {
      storage,
      systemd,
      passwd,
      kernelArguments: since(3, obj({}, { shouldExist: list(str()), shouldNotExist: list(str()) })),
    },
    'an Ignition config',
  )
}

/** One schema per supported spec version. */
export const ignitionSchemas: Readonly<Record<IgnitionVersion, TSchema>> = Object.freeze(
  Object.fromEntries(IGNITION_VERSIONS.map((v, minor) => [v, model(minor)])) as Record<IgnitionVersion, TSchema>,
)

/** Every field path of a schema, in normalised form: `storage.files[].mode`. */
function fieldPaths(schema: TSchema, prefix: string, out: Set<string>): Set<string> {
  const s = schema as { properties?: Record<string, TSchema>; items?: TSchema }
  if (s.properties) {
    for (const [k, v] of Object.entries(s.properties)) {
      const p = prefix === '' ? k : `${prefix}.${k}`
      out.add(p)
      fieldPaths(v, p, out)
    }
  }
  if (s.items) fieldPaths(s.items, `${prefix}[]`, out)
  return out
}

/**
 * For each field that did not exist in 3.0.0, the first spec version that has it, keyed by normalised path
 * (`kernelArguments` -> `3.3.0`, `storage.luks[].discard` -> `3.4.0`). Lets errors say "needs 3.3.0" instead of
 * "unknown field".
 */
export const fieldIntroducedIn: ReadonlyMap<string, IgnitionVersion> = (() => {
  const perVersion = IGNITION_VERSIONS.map((v) => fieldPaths(ignitionSchemas[v], '', new Set()))
  const newest = perVersion[perVersion.length - 1] ?? new Set<string>()
  const map = new Map<string, IgnitionVersion>()
  for (const path of newest) {
    const first = perVersion.findIndex((paths) => paths.has(path))
    if (first > 0) map.set(path, IGNITION_VERSIONS[first] as IgnitionVersion)
  }
  return map
})()

/** Normalise concrete path segments (`['storage','files',0,'mode']`) to the `fieldIntroducedIn` key form. */
export function normalisedFieldPath(segments: readonly (string | number)[]): string {
  let out = ''
  for (const s of segments) out += typeof s === 'number' ? '[]' : out === '' ? s : `.${s}`
  return out
}
