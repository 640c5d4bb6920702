/**
 * The config.yaml schema: one typebox schema, validated once by Ajv at load. Unknown keys are errors everywhere, so a
 * misspelt key is reported instead of silently ignored. `config/pxebox.schema.json` is generated from this for
 * editors (scripts/gen-schema.ts).
 */
import { Type, type Static, type TSchema } from '@sinclair/typebox'
import { GroupSchema, ProfileSchema } from '../boot/model-schema.js'

/** A string that must be one of `values`; a plain JSON-schema enum gives Ajv one clear error instead of an anyOf. */
function StringEnum<T extends string[]>(values: [...T], opts: { default?: T[number]; description?: string } = {}) {
  return Type.Unsafe<T[number]>({ type: 'string', enum: values, ...opts })
}

/** An object that rejects unknown keys and defaults to `{}` so every section may be left out. */
function Section<P extends Record<string, TSchema>>(properties: P, description: string) {
  return Type.Object(properties, { additionalProperties: false, default: {}, description })
}

const IPV4 = '^((25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)\\.){3}(25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)$'

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const

export const DhcpSchema = Section(
  {
    mode: StringEnum(['proxy', 'off'], {
      default: 'proxy',
      description: 'proxy: answer only PXE clients beside the site DHCP server, never hand out addresses; off: no DHCP',
    }),
    interface_pinning: StringEnum(['auto', 'off'], {
      default: 'auto',
      description:
        'auto: pin the port 67 socket to `interface` (SO_BINDTOIFINDEX) and refuse to start on a multi-homed box if that fails; off: answer on every interface',
    }),
  },
  'DHCP service',
)

export const TftpSchema = Section(
  {
    enabled: Type.Boolean({ default: true }),
    root: Type.String({ default: './firmware', minLength: 1, description: 'folder served over TFTP (iPXE binaries)' }),
    max_block_size: Type.Integer({ default: 1468, minimum: 8, maximum: 65464, description: 'cap on the negotiated blksize (RFC 2348)' }),
    max_window_size: Type.Integer({ default: 32, minimum: 1, maximum: 256, description: 'cap on the negotiated windowsize (RFC 7440)' }),
    max_transfers: Type.Integer({ default: 500, minimum: 1, description: 'concurrent transfers; more are refused with ERROR 0' }),
    max_requests_per_client_per_second: Type.Integer({ default: 20, minimum: 1 }),
  },
  'TFTP service',
)

export const HttpSchema = Section(
  {
    enabled: Type.Boolean({ default: true }),
    listen: Type.String({
      default: '0.0.0.0:8080',
      pattern: '^[^\\s:]+:\\d{1,5}$',
      expected: 'HOST:PORT, e.g. 0.0.0.0:8080',
    }),
    public_url: Type.Optional(
      Type.String({ pattern: '^https?://[^\\s/]+(/[^\\s]*)?$', expected: 'an http:// URL machines can reach, e.g. http://10.0.0.2:8080' }),
    ),
  },
  'HTTP boot service',
)

export const ConfigSchema = Type.Object(
  {
    interface: Type.String({ default: 'auto', minLength: 1, description: 'the PXE VLAN interface; auto = the only non-loopback IPv4 interface' }),
    address: Type.Optional(Type.String({ pattern: IPV4, expected: 'an IPv4 address such as 10.0.0.2' })),
    log_level: StringEnum([...LOG_LEVELS], { default: 'info' }),
    data_dir: Type.String({ default: '/var/lib/pxebox', minLength: 1, description: 'leases and machine records' }),
    assets_dir: Type.String({ default: './assets', minLength: 1, description: 'kernels, initrds, images served under /assets/' }),
    matchbox_dir: Type.Optional(Type.String({ minLength: 1, description: 'a Matchbox-layout data directory (groups/, profiles/, ignition/, generic/)' })),
    ignition_dir: Type.Optional(
      Type.String({ minLength: 1, description: "where profiles' `ignition:` files live; default <matchbox_dir>/ignition, else ./ignition" }),
    ),
    generic_dir: Type.Optional(
      Type.String({ minLength: 1, description: "where profiles' `generic:` files live; default <matchbox_dir>/generic, else ./generic" }),
    ),
    butane_files_dir: Type.Optional(
      Type.String({
        minLength: 1,
        description: "where Butane `local:` file contents are read from (butane --files-dir); default <matchbox_dir>/files, else ./files",
      }),
    ),
    dhcp: DhcpSchema,
    tftp: TftpSchema,
    http: HttpSchema,
    profiles: Type.Record(Type.String({ pattern: '^[A-Za-z0-9._-]+$' }), ProfileSchema, { default: {} }),
    groups: Type.Array(GroupSchema, { default: [] }),
  },
  { additionalProperties: false },
)

/** The config's data as the schema describes it (after defaults). */
export type ConfigData = Static<typeof ConfigSchema>

/** A validated, normalized, frozen config. Paths are absolute; `file` is the config file it came from. */
export type Config = DeepReadonly<ConfigData & { file: string }>

/** Readonly all the way down: a loaded config is frozen, and the types say so. */
export type DeepReadonly<T> = T extends (infer U)[]
  ? readonly DeepReadonly<U>[]
  : T extends object
    ? { readonly [K in keyof T]: DeepReadonly<T[K]> }
    : T
