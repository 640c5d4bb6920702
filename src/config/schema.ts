/**
 * The config.yaml schema: one typebox schema, validated once by Ajv at load. Unknown keys are errors everywhere, so a
 * misspelt key is reported instead of silently ignored. `config/pxebox.schema.json` is generated from this for
 * editors (scripts/gen-schema.ts).
 */
import { IPV4_PATTERN } from '../host/ipv4.js'
import { Type, type Static, type TSchema } from '@sinclair/typebox'
import { GroupSchema, ProfileSchema } from '../catalog/model-schema.js'

/** A string that must be one of `values`; a plain JSON-schema enum gives Ajv one clear error instead of an anyOf. */
function StringEnum<T extends string[]>(values: [...T], opts: { default?: T[number]; description?: string } = {}) {
  return Type.Unsafe<T[number]>({ type: 'string', enum: values, ...opts })
}

/** An object that rejects unknown keys and defaults to `{}` so every section may be left out. */
function Section<P extends Record<string, TSchema>>(properties: P, description: string) {
  return Type.Object(properties, { additionalProperties: false, default: {}, description })
}

const IPV4 = IPV4_PATTERN

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const

const Ipv4 = (description?: string) =>
  Type.String({ pattern: IPV4, expected: 'an IPv4 address such as 10.0.0.2', ...(description === undefined ? {} : { description }) })

export const ReservationSchema = Type.Object(
  {
    mac: Type.Optional(Type.String({ description: 'the client MAC (any common form)' })),
    uuid: Type.Optional(
      Type.String({
        pattern: '^[0-9A-Fa-f]{8}-?[0-9A-Fa-f]{4}-?[0-9A-Fa-f]{4}-?[0-9A-Fa-f]{4}-?[0-9A-Fa-f]{12}$',
        expected: 'a UUID such as 8d3c1f2e-0000-4000-8000-525400e2e001 (option 97, as the firmware sends it)',
      }),
    ),
    address: Ipv4('the address this machine always gets'),
    hostname: Type.Optional(Type.String({ minLength: 1, maxLength: 63, pattern: '^[A-Za-z0-9.-]+$', expected: 'a host name (letters, digits, - and .)' })),
  },
  { additionalProperties: false, description: 'a fixed address for one machine, by MAC or by option 97 UUID' },
)

export const DhcpSchema = Section(
  {
    mode: StringEnum(['proxy', 'authoritative', 'off'], {
      default: 'proxy',
      description:
        'proxy: answer only PXE clients beside the site DHCP server, never hand out addresses; authoritative: be the DHCP server of a dedicated PXE VLAN (range, leases, PXE options); off: no DHCP',
    }),
    interface_pinning: StringEnum(['auto', 'off'], {
      default: 'auto',
      description:
        'auto: pin the port 67 socket to `interface` (SO_BINDTOIFINDEX) and refuse to start on a multi-homed box if that fails; off: answer on every interface',
    }),
    range: Type.Optional(
      Type.Object(
        { start: Ipv4('first address handed out'), end: Ipv4('last address handed out') },
        { additionalProperties: false, description: 'authoritative mode: the addresses handed out (inside the interface subnet)' },
      ),
    ),
    netmask: Type.Optional(Ipv4("authoritative mode: option 1; default: the interface's prefix")),
    lease_time: Type.Integer({ default: 3600, minimum: 60, description: 'authoritative mode: lease length in seconds (option 51)' }),
    router: Type.Optional(Ipv4('authoritative mode: default gateway (option 3)')),
    dns: Type.Array(Type.String({ pattern: IPV4, expected: 'an IPv4 address such as 10.0.0.2' }), { default: [], description: 'authoritative mode: DNS servers (option 6)' }),
    reservations: Type.Array(ReservationSchema, { default: [], description: 'authoritative mode: fixed addresses by MAC or UUID' }),
    decline_hold: Type.Integer({
      default: 600,
      minimum: 0,
      description: 'authoritative mode: seconds an address is not offered after a DECLINE or after something answered ARP for it',
    }),
    arp_probe_ms: Type.Integer({
      default: 500,
      minimum: 0,
      maximum: 10000,
      description: 'authoritative mode: ARP probe (RFC 5227) wait before offering a new address, in ms; 0 disables the probe',
    }),
  },
  'DHCP service',
)

export const TrackingSchema = Section(
  {
    enabled: Type.Boolean({ default: true, description: 'watch DHCP and ARP on the PXE VLAN for duplicate, stray and rogue addresses' }),
    arp: Type.Boolean({ default: true, description: 'capture ARP (tcpdump) and probe silent leases (arping); needs CAP_NET_RAW' }),
    stray_after: Type.Integer({ default: 600, minimum: 1, description: 'seconds a leased MAC may stay silent before its lease is reported as stray' }),
    conflict_window: Type.Integer({
      default: 900,
      minimum: 1,
      description: 'seconds a claim on an address (REQUEST, ACK, ARP) or a server sighting counts towards a finding',
    }),
    allowed_servers: Type.Array(Type.String({ pattern: IPV4, expected: 'an IPv4 address such as 10.0.0.1' }), {
      default: [],
      description: 'DHCP servers allowed to hand out addresses on the VLAN; empty: the first one seen, a second is reported',
    }),
    max_bindings: Type.Integer({
      default: 50_000,
      minimum: 16,
      description: 'MAC -> IP bindings (and addresses with claims) kept; the least recently seen are dropped first',
    }),
    max_macs: Type.Integer({
      default: 50_000,
      minimum: 16,
      description: 'MACs and UUIDs remembered; MACs without a binding also age out after conflict_window',
    }),
    max_servers: Type.Integer({ default: 64, minimum: 1, description: 'DHCP servers listed; more are counted in one summary finding' }),
    max_findings: Type.Integer({ default: 100, minimum: 1, description: 'findings listed per kind; more are counted in one <kind>:more finding' }),
  },
  'address tracking',
)

export const TftpSchema = Section(
  {
    enabled: Type.Boolean({ default: true }),
    root: Type.String({ default: './firmware', minLength: 1, description: 'folder served over TFTP (iPXE binaries)' }),
    max_block_size: Type.Integer({ default: 1468, minimum: 8, maximum: 65464, description: 'cap on the negotiated blksize (RFC 2348)' }),
    max_window_size: Type.Integer({ default: 32, minimum: 1, maximum: 256, description: 'cap on the negotiated windowsize (RFC 7440)' }),
    max_transfers: Type.Integer({ default: 500, minimum: 1, description: 'concurrent transfers; more are refused with ERROR 0' }),
    max_requests_per_client_per_second: Type.Integer({ default: 20, minimum: 1 }),
    max_transfers_per_client: Type.Integer({
      default: 8,
      minimum: 1,
      description: 'concurrent transfers per client IP, so one client cannot hold every slot; more are refused with ERROR 0',
    }),
    max_client_timeout: Type.Integer({
      default: 10,
      minimum: 1,
      maximum: 255,
      description: 'largest RFC 2349 timeout (seconds) a client may ask for; a larger one is not acknowledged and the server keeps its own',
    }),
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
    sendfile: Type.Boolean({
      default: true,
      description: 'send /assets/ and /firmware/ bodies with sendfile(2); false copies them through Node (for filesystems where sendfile misbehaves)',
    }),
  },
  'HTTP boot service',
)

export const ApiSchema = Section(
  {
    token: Type.Optional(Type.String({ minLength: 16, description: 'bearer token for /v1 writes (and reads unless open_reads); prefer token_file' })),
    token_file: Type.Optional(Type.String({ minLength: 1, description: 'file holding the bearer token (first line), e.g. /etc/pxebox/api-token' })),
    open_reads: Type.Boolean({ default: true, description: 'true: GET /v1/* needs no token; false: reads need the token too' }),
    max_event_streams: Type.Integer({
      default: 64,
      minimum: 1,
      maximum: 10_000,
      description: '/v1/events streams (dashboards) open at once; one more is answered 503',
    }),
  },
  'the /v1 API; without a token, API writes are refused',
)

export const DiscoverySchema = Section(
  {
    mode: StringEnum(['hold', 'exit'], {
      default: 'exit',
      description:
        'hold: a machine no group matches gets a holding script that reports its inventory and polls /ipxe until it is assigned; exit: /ipxe answers 404 and the firmware tries its next boot device',
    }),
    poll_interval: Type.Integer({ default: 10, minimum: 1, maximum: 3600, description: 'seconds between a holding machine\'s polls of /ipxe' }),
  },
  'unknown machines (issue 20): hold and inventory them, or let them fall through',
)

export const SyslogSchema = Section(
  {
    enabled: Type.Boolean({ default: false, description: 'receive syslog (RFC 3164/5424 over UDP) and keep each machine\'s lines in its record' }),
    listen: Type.String({
      default: '0.0.0.0:514',
      pattern: '^[^\\s:]+:\\d{1,5}$',
      expected: 'HOST:PORT, e.g. 0.0.0.0:514',
    }),
  },
  'syslog receiver for installer and boot logs (issue 20)',
)

export const MachinesSchema = Section(
  {
    stuck_after: Type.Integer({ default: 300, minimum: 10, description: 'seconds without boot progress after which a machine is shown as stuck' }),
    ipxe_not_run_after: Type.Integer({
      default: 60,
      minimum: 5,
      maximum: 3600,
      description:
        'seconds a UEFI machine that fetched iPXE over TFTP has to come back as iPXE (its DHCP or boot script) before pxebox reports that the firmware did not run it (Secure Boot on?)',
    }),
    max_records: Type.Integer({
      default: 10_000,
      minimum: 100,
      maximum: 1_000_000,
      description: 'machine records kept (in memory and in data_dir/pxebox.db); the least recently seen go first. A record is ~2 KB typically, 40 KB at most',
    }),
  },
  'machine records and boot timelines (kept in data_dir/pxebox.db)',
)

/** A name that is one Store key segment (store/store.ts STORE_KEY), short enough for a banner and a dashboard. */
const StoreName = (description: string, extra: { default?: string } = {}) =>
  Type.String({ pattern: '^[A-Za-z0-9_.-]{1,63}$', expected: 'letters, digits, _, . and - (1-63 characters)', description, ...extra })

export const StoreSchema = Section(
  {
    backend: StringEnum(['sqlite', 'etcd'], {
      default: 'sqlite',
      description:
        'sqlite: this appliance alone, in data_dir/pxebox.db; etcd: shared by every appliance naming the same endpoints and prefix (API-written groups and profiles, machine records, the appliance registry)',
    }),
    endpoints: Type.Array(
      Type.String({ pattern: '^https?://[^\\s/]+/?$', expected: 'an etcd client URL such as http://10.0.0.5:2379 or https://etcd1:2379' }),
      { default: [], description: 'etcd: client URLs of the cluster members (all of them: pxebox moves to another when one is down)' },
    ),
    prefix: Type.String({
      default: '/pxebox',
      pattern: '^/[A-Za-z0-9_.@:/-]*$',
      expected: 'a key prefix starting with /, such as /pxebox',
      description: 'etcd: every key pxebox writes starts with this (<prefix>/<kind>/<id>); fleets that must not share use different prefixes',
    }),
    tls: Type.Optional(
      Type.Object(
        {
          ca_file: Type.String({ minLength: 1, description: "the CA that signed the etcd members' certificates (etcd --trusted-ca-file)" }),
          cert_file: Type.Optional(Type.String({ minLength: 1, description: 'client certificate, when etcd checks clients (--client-cert-auth)' })),
          key_file: Type.Optional(Type.String({ minLength: 1, description: 'its private key' })),
        },
        { additionalProperties: false, description: 'etcd over TLS (https:// endpoints)' },
      ),
    ),
    site: StoreName('where this appliance is (a rack, a room, a city): machine records carry the site that saw them', { default: 'default' }),
    name: Type.Optional(StoreName("this appliance's name in the registry (GET /v1/appliances); default: the host name. Two running appliances with one name is a start-up error")),
  },
  'where pxebox keeps what it writes: SQLite in data_dir (default) or a shared etcd cluster (README "Fleet")',
)

/**
 * The most groups and profiles config.yaml may hold. A fleet larger than this is better served from matchbox_dir or
 * the API; the limit keeps `validate` and a reload answering in seconds (the YAML parser takes ~0.5 ms per group on
 * a busy 2-core box) and keeps hostile or generated configs from reaching the matcher's tie checks with 100k entries.
 */
export const MAX_CONFIG_GROUPS = 10_000
/** See MAX_CONFIG_GROUPS. */
export const MAX_CONFIG_PROFILES = 10_000

export const ConfigSchema = Type.Object(
  {
    interface: Type.String({ default: 'auto', minLength: 1, description: 'the PXE VLAN interface; auto = the only non-loopback IPv4 interface, else the one holding `address`, the default route\'s, or the only one with a private address' }),
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
    tracking: TrackingSchema,
    tftp: TftpSchema,
    http: HttpSchema,
    api: ApiSchema,
    machines: MachinesSchema,
    discovery: DiscoverySchema,
    syslog: SyslogSchema,
    store: StoreSchema,
    profiles: Type.Record(Type.String({ pattern: '^[A-Za-z0-9._-]+$' }), ProfileSchema, {
      default: {},
      maxProperties: MAX_CONFIG_PROFILES,
      description: `at most ${MAX_CONFIG_PROFILES}`,
    }),
    groups: Type.Array(GroupSchema, { default: [], maxItems: MAX_CONFIG_GROUPS, description: `at most ${MAX_CONFIG_GROUPS}` }),
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
