/**
 * The Butane fields pxebox translates, as data: snake_case name, Ignition camelCase name, value kind, and the first
 * Ignition spec minor whose Butane versions have it. Written from coreos/butane docs/config-fcos-v1_*.md and
 * config-flatcar-v1_*.md; a Butane field not listed here is a load error, never silently dropped.
 */

/** The shape of a Butane value. `resource` is special: inline/local become data URLs. */
export type FieldKind =
  | { kind: 'string' }
  | { kind: 'int' }
  | { kind: 'bool' }
  | { kind: 'list'; of: FieldKind }
  | { kind: 'object'; fields: Readonly<Record<string, FieldSpec>> }
  | { kind: 'resource'; fields: Readonly<Record<string, FieldSpec>> }

/** One Butane field. */
export interface FieldSpec {
  /** Ignition key. */
  to: string
  type: FieldKind
  /** First Ignition minor (3.x) whose Butane spec has this field; 0 if all. */
  since: number
  /** Set for Butane fields pxebox knows but does not translate: the reason, shown in the error. */
  unsupported?: string
}

const S: FieldKind = { kind: 'string' }
const I: FieldKind = { kind: 'int' }
const B: FieldKind = { kind: 'bool' }
const list = (of: FieldKind): FieldKind => ({ kind: 'list', of })

/** snake_case -> camelCase, with the spec's `MiB` spelling. */
function ignitionName(snake: string): string {
  return snake.replace(/_mib$/, 'MiB').replace(/_([a-z])/g, (_m, c: string) => c.toUpperCase())
}

type FieldInput = FieldKind | { type: FieldKind; since?: number } | { unsupported: string; since?: number }

function fields(input: Record<string, FieldInput>): Record<string, FieldSpec> {
  const out: Record<string, FieldSpec> = {}
  for (const [name, v] of Object.entries(input)) {
    const to = ignitionName(name)
    if ('unsupported' in v) out[name] = { to, type: S, since: v.since ?? 0, unsupported: v.unsupported }
    else if ('type' in v) out[name] = { to, type: v.type, since: v.since ?? 0 }
    else out[name] = { to, type: v, since: 0 }
  }
  return out
}
const obj = (f: Record<string, FieldInput>): FieldKind => ({ kind: 'object', fields: fields(f) })

const verification = obj({ hash: S })
const httpHeaders = { type: list(obj({ name: S, value: S })), since: 1 }
/** A Butane resource: exactly one of source/inline/local. */
const resource: FieldKind = {
  kind: 'resource',
  fields: fields({ source: S, inline: S, local: S, compression: S, http_headers: httpHeaders, verification }),
}
const owner = obj({ id: I, name: S })
const NOT_TREES = 'storage.trees is not translated by pxebox; list the files with contents.local instead'
const NOT_MOUNT_UNIT = 'with_mount_unit is not translated by pxebox; write the .mount unit under systemd.units'
const NOT_LOCAL = 'the *_local variants are not translated by pxebox; inline the text instead'

/** The whole Butane document (minus `variant` and `version`, handled by the translator). */
export const BUTANE_ROOT: FieldKind = obj({
  ignition: obj({
    config: obj({ merge: list(resource), replace: resource }),
    timeouts: obj({ http_response_headers: I, http_total: I }),
    security: obj({ tls: obj({ certificate_authorities: list(resource) }) }),
    proxy: { type: obj({ http_proxy: S, https_proxy: S, no_proxy: list(S) }), since: 1 },
  }),
  storage: obj({
    disks: list(
      obj({
        device: S,
        wipe_table: B,
        partitions: list(
          obj({
            label: S,
            number: I,
            size_mib: I,
            start_mib: I,
            type_guid: S,
            guid: S,
            wipe_partition_entry: B,
            should_exist: B,
            resize: { type: B, since: 2 },
          }),
        ),
      }),
    ),
    raid: list(obj({ name: S, level: S, devices: list(S), spares: I, options: list(S) })),
    filesystems: list(
      obj({
        device: S,
        format: S,
        path: S,
        wipe_filesystem: B,
        label: S,
        uuid: S,
        options: list(S),
        mount_options: { type: list(S), since: 1 },
        with_mount_unit: { unsupported: NOT_MOUNT_UNIT },
      }),
    ),
    files: list(
      obj({ path: S, overwrite: B, contents: resource, append: list(resource), mode: I, user: owner, group: owner }),
    ),
    directories: list(obj({ path: S, overwrite: B, mode: I, user: owner, group: owner })),
    links: list(obj({ path: S, overwrite: B, user: owner, group: owner, target: S, hard: B })),
    luks: {
      since: 2,
      type: list(
        obj({
          name: S,
          device: S,
          key_file: resource,
          label: S,
          uuid: S,
          options: list(S),
          wipe_volume: B,
          discard: { type: B, since: 4 },
          open_options: { type: list(S), since: 4 },
          clevis: obj({
            tang: list(obj({ url: S, thumbprint: S, advertisement: { type: S, since: 4 } })),
            tpm2: B,
            threshold: I,
            custom: obj({ pin: S, config: S, needs_network: B }),
          }),
        }),
      ),
    },
    trees: { unsupported: NOT_TREES, since: 1 },
  }),
  systemd: obj({
    units: list(
      obj({
        name: S,
        enabled: B,
        mask: B,
        contents: S,
        contents_local: { unsupported: NOT_LOCAL },
        dropins: list(obj({ name: S, contents: S, contents_local: { unsupported: NOT_LOCAL } })),
      }),
    ),
  }),
  passwd: obj({
    users: list(
      obj({
        name: S,
        password_hash: S,
        ssh_authorized_keys: list(S),
        ssh_authorized_keys_local: { unsupported: NOT_LOCAL, since: 3 },
        uid: I,
        gecos: S,
        home_dir: S,
        no_create_home: B,
        primary_group: S,
        groups: list(S),
        no_user_group: B,
        no_log_init: B,
        shell: S,
        should_exist: { type: B, since: 2 },
        system: B,
      }),
    ),
    groups: list(obj({ name: S, gid: I, password_hash: S, should_exist: { type: B, since: 2 }, system: B })),
  }),
  kernel_arguments: { type: obj({ should_exist: list(S), should_not_exist: list(S) }), since: 3 },
  boot_device: { unsupported: 'boot_device (LUKS/mirrored root) is not translated by pxebox; run butane and serve the .ign', since: 2 },
  grub: { unsupported: 'grub users are not translated by pxebox; run butane and serve the .ign', since: 4 },
})

/** A Butane variant/version pxebox translates, and the Ignition spec it produces (butane docs/specs.md table). */
export interface ButaneTarget {
  variant: 'fcos' | 'flatcar'
  version: string
  ignition: '3.0.0' | '3.1.0' | '3.2.0' | '3.3.0' | '3.4.0'
  minor: number
}

/** docs/specs.md: "Each version of the Butane specification corresponds to a version of the Ignition specification". */
export const BUTANE_TARGETS: readonly ButaneTarget[] = [
  { variant: 'fcos', version: '1.0.0', ignition: '3.0.0', minor: 0 },
  { variant: 'fcos', version: '1.1.0', ignition: '3.1.0', minor: 1 },
  { variant: 'fcos', version: '1.2.0', ignition: '3.2.0', minor: 2 },
  { variant: 'fcos', version: '1.3.0', ignition: '3.2.0', minor: 2 },
  { variant: 'fcos', version: '1.4.0', ignition: '3.3.0', minor: 3 },
  { variant: 'fcos', version: '1.5.0', ignition: '3.4.0', minor: 4 },
  { variant: 'flatcar', version: '1.0.0', ignition: '3.3.0', minor: 3 },
  { variant: 'flatcar', version: '1.1.0', ignition: '3.4.0', minor: 4 },
]

/** Fields a variant refuses even though the base spec has them (butane config/flatcar/v1_*: ErrClevisSupport). */
export const VARIANT_FORBIDDEN: Readonly<Record<ButaneTarget['variant'], Readonly<Record<string, string>>>> = {
  fcos: {},
  flatcar: { 'storage.luks[].clevis': 'clevis is not supported on the flatcar variant' },
}
