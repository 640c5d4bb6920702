/**
 * Machine records: what pxebox knows about one machine (keyed by the MAC it boots from) and the boot timeline built
 * from the DHCP, TFTP and HTTP events. The schemas describe both the record kept in `data_dir` and what the API
 * returns, so a record read back from disk is checked against the same shape it was written in.
 */
import { Type, type Static } from '@sinclair/typebox'

/**
 * The boot stages in the order a network install passes them. `tftp` covers the first-stage loader however it came
 * (TFTP, or HTTP for UEFI HTTP boot); `script` is the iPXE script (`/boot.ipxe` or `/ipxe`); `installed` is the
 * optional callback the installer or the installed system makes.
 */
export const STAGES = ['dhcp', 'tftp', 'script', 'kernel', 'initrd', 'ignition', 'installed'] as const

/** One boot stage. */
export type Stage = (typeof STAGES)[number]

/** One of `values` (a union of literals: checkable by typebox's Value as well as Ajv). */
function OneOf<T extends string>(values: readonly T[]) {
  return Type.Union(values.map((v) => Type.Literal(v)))
}

/** Schema of a stage name. */
export const StageSchema = OneOf(STAGES)

/** One thing a machine did, as shown on its timeline. */
export const TimelineEntrySchema = Type.Object(
  {
    time: Type.String({ description: 'ISO 8601' }),
    /** `pxebox`: a conclusion pxebox drew from what it did not see (MachineStore.recordDiagnosis). */
    source: OneOf(['dhcp', 'tftp', 'http', 'api', 'pxebox'] as const),
    /** The event's step as the service recorded it: offer, ack, file, script, ipxe, kernel, initrd, ignition, ... */
    step: Type.String(),
    /** The boot stage this entry reached, when it is one. */
    stage: Type.Optional(StageSchema),
    outcome: Type.String({ description: "'ok' or a short failure reason" }),
    ip: Type.Optional(Type.String()),
    /** One human line: the file, path or decision. */
    what: Type.String(),
  },
  { additionalProperties: false },
)

/** One syslog line a machine sent (installer, boot target, iPXE builds with a syslog console). */
export const LogLineSchema = Type.Object(
  {
    time: Type.String({ description: 'ISO 8601, when pxebox received it' }),
    /** 0 emerg .. 7 debug (RFC 5424 table 2). */
    severity: Type.Integer({ minimum: 0, maximum: 7 }),
    /** The sender's APP-NAME or RFC 3164 tag, when it gave one. */
    app: Type.Optional(Type.String({ maxLength: 48 })),
    /** The text, control characters escaped (syslog/message.ts), cut to RECORD_LIMITS.whatLength. */
    text: Type.String(),
  },
  { additionalProperties: false },
)

/** Syslog lines kept per machine (`log`): an installer's last screens, ~60 KB at most per record. */
export const MAX_LOG_LINES = 200

/** A syslog line in a machine record. */
export type LogLine = Static<typeof LogLineSchema>

/** A finished (superseded) boot attempt, kept briefly so a reinstall loop is visible. */
export const PastAttemptSchema = Type.Object(
  {
    started: Type.String(),
    ended: Type.String(),
    /** Furthest stage reached; absent when none was. */
    reached: Type.Optional(StageSchema),
    /** 'ok' or the failure of its last stage entry. */
    outcome: Type.String(),
  },
  { additionalProperties: false },
)

/**
 * Bounds on one stored record (issue 13 item 9), stated in config.example.yaml: identity values a request claims
 * (uuid, serial, hostname, arch) longer than `identityLength` are not stored; a timeline line is cut at `whatLength`;
 * a record holds at most `labels` operator labels of at most `labelValueLength` characters. With MAX_ENTRIES timeline
 * entries and MAX_HISTORY past attempts that keeps a record under ~40 KB whatever clients send.
 */
export const RECORD_LIMITS = { identityLength: 128, whatLength: 256, labels: 32, labelValueLength: 256 } as const

/** One network interface a discovered machine reported (iPXE numbers them net0, net1, ...). */
export const NicFactSchema = Type.Object(
  {
    index: Type.Integer({ minimum: 0, maximum: 63 }),
    mac: Type.String({ pattern: '^([0-9a-f]{2}:){5}[0-9a-f]{2}$' }),
    /** iPXE's `${netN/chip}`: the driver ("virtio-net"), or "SNP" under UEFI snponly.efi. */
    chip: Type.Optional(Type.String({ maxLength: 128 })),
  },
  { additionalProperties: false },
)

/**
 * What a machine waiting in the holding script reported of itself (issue 20; boot/inventory.ts parses it). Every
 * field optional: iPXE builds and firmware report different subsets (Debian's 2019 builds leave memsize empty).
 */
export const InventorySchema = Type.Object(
  {
    mac: Type.Optional(Type.String()),
    uuid: Type.Optional(Type.String({ maxLength: 36 })),
    manufacturer: Type.Optional(Type.String({ maxLength: 128 })),
    product: Type.Optional(Type.String({ maxLength: 128 })),
    serial: Type.Optional(Type.String({ maxLength: 128 })),
    asset: Type.Optional(Type.String({ maxLength: 128 })),
    /** "efi" or "pcbios". */
    platform: Type.Optional(Type.String({ maxLength: 16 })),
    /** The iPXE build's arch ("x86_64", "i386" for BIOS ROMs even on 64-bit hardware, "arm64"). */
    buildarch: Type.Optional(Type.String({ maxLength: 16 })),
    memsizeMb: Type.Optional(Type.Integer({ minimum: 1 })),
    nics: Type.Array(NicFactSchema, { maxItems: 64 }),
  },
  { additionalProperties: false },
)

/** A reported inventory. */
export type Inventory = Static<typeof InventorySchema>

/** The stored record of one machine. */
export const MachineRecordSchema = Type.Object(
  {
    mac: Type.String({ pattern: '^([0-9a-f]{2}:){5}[0-9a-f]{2}$' }),
    uuid: Type.Optional(Type.String()),
    serial: Type.Optional(Type.String()),
    hostname: Type.Optional(Type.String()),
    arch: Type.Optional(Type.String()),
    nic_vendor: Type.Optional(Type.String()),
    /**
     * Addresses of traffic attributed to this MAC, most recent first, at most 4. For display only: HTTP `mac=` labels
     * and TFTP `<mac>/` prefixes are claims, so these grant no trust (the installed callback checks the wire).
     */
    ips: Type.Array(Type.String()),
    group: Type.Optional(Type.String()),
    profile: Type.Optional(Type.String()),
    /** What the machine reported from the holding script (discovery), with the time of its last report. */
    inventory: Type.Optional(InventorySchema),
    reported_at: Type.Optional(Type.String()),
    /** Operator labels (set through the API). */
    labels: Type.Record(Type.String(), Type.String()),
    /** When the operator last set `labels`: two appliances' versions of a record merge labels by it (machines/merge.ts). */
    labels_at: Type.Optional(Type.String()),
    /**
     * When the install-once state (`installed_at`) was last set or cleared (installed callback, re-arm): two
     * appliances' versions merge it by this stamp, so a re-arm at one is not undone by the other's older copy.
     */
    install_state_at: Type.Optional(Type.String()),
    /** The site (config `store.site`) of the appliance that last saw it: with a shared etcd store, which one. */
    site: Type.Optional(Type.String({ maxLength: 63 })),
    /** The name (config `store.name`) of the appliance that last saw it: the fleet view says which one booted it. */
    appliance: Type.Optional(Type.String({ maxLength: 63 })),
    first_seen: Type.String(),
    last_seen: Type.String(),
    /** Boot attempts seen (an attempt starts with DHCP, or with an iPXE script after a finished attempt). */
    boots: Type.Integer({ minimum: 0 }),
    /** When the current attempt started. */
    attempt_started: Type.String(),
    /** The current attempt's entries, oldest first. */
    timeline: Type.Array(TimelineEntrySchema),
    /** Time of the last entry that reached a stage. */
    last_progress: Type.String(),
    history: Type.Array(PastAttemptSchema),
    /** The last syslog lines from this machine's address, oldest first (at most MAX_LOG_LINES). */
    log: Type.Optional(Type.Array(LogLineSchema)),
    /** Syslog lines dropped from `log` to keep it bounded, over the record's life. */
    log_dropped: Type.Optional(Type.Integer({ minimum: 0 })),
    /** Set by the installed callback; cleared by re-arm. A boot_once profile then boots the local disk. */
    installed_at: Type.Optional(Type.String()),
    /** Installed callbacks received over the record's life. */
    installs: Type.Integer({ minimum: 0 }),
    /** Attempts that fetched an installer kernel after an installed callback: a reinstall loop. */
    reinstalls: Type.Integer({ minimum: 0 }),
  },
  { additionalProperties: false },
)

/** A timeline entry. */
export type TimelineEntry = Static<typeof TimelineEntrySchema>
/** A superseded attempt. */
export type PastAttempt = Static<typeof PastAttemptSchema>
/** A stored machine record. */
export type MachineRecord = Static<typeof MachineRecordSchema>

/** Where a machine is, computed at read time from its record, the clock and its profile. */
export type MachineStatus = 'failed' | 'stuck' | 'discovered' | 'booting' | 'done' | 'local-boot' | 'ignored'

/** Status order in the machine list: the ones needing the operator first. */
export const STATUS_ORDER: readonly MachineStatus[] = ['failed', 'stuck', 'discovered', 'booting', 'ignored', 'local-boot', 'done']

/** A record plus what the operator asks of it: status, current stage, how long since progress. */
export const MachineViewSchema = Type.Composite([
  MachineRecordSchema,
  Type.Object({
    status: OneOf(STATUS_ORDER),
    /** Furthest stage reached in the current attempt. */
    stage: Type.Optional(StageSchema),
    /** The stage this machine's profile ends at (installed for boot_once profiles, else its last download). */
    final_stage: StageSchema,
    /** Where it failed or stopped, in words: `kernel: not found`, `no progress after initrd for 12 min`. */
    summary: Type.String(),
    seconds_since_progress: Type.Number(),
    /** boot_once profile and installed: `/ipxe` hands out a local-disk boot. */
    boots_local: Type.Boolean(),
    /**
     * Current findings naming this machine (`/v1/findings`), when there are any: why it cannot boot and what to set,
     * e.g. a site DHCP server's next-server for `loader: shim-grub`, or firmware that did not run iPXE.
     */
    findings: Type.Optional(Type.Array(Type.Object({ id: Type.String(), kind: Type.String(), explanation: Type.String() }))),
  }),
])

/** A machine as the API and dashboard show it. */
export type MachineView = Static<typeof MachineViewSchema>
