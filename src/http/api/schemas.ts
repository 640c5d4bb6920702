/**
 * Schemas of the `/v1` API: every request body, parameter and response is one of these, validated on the way in
 * and on the way out (plugin.ts), and published as the OpenAPI document (openapi.ts).
 */
import { Type, type Static, type TSchema } from '@sinclair/typebox'
import { MachineViewSchema, PastAttemptSchema, TimelineEntrySchema } from '../../machines/model.js'

/** Every error answer: a sentence, plus the loader's list when there are several reasons. */
export const ErrorSchema = Type.Object(
  { error: Type.String(), errors: Type.Optional(Type.Array(Type.String())) },
  { additionalProperties: false },
)

/** `:mac` in any common spelling (52:54:00:12:34:56, 52-54-00-12-34-56, 5254.0012.3456). */
export const MacParams = Type.Object({ mac: Type.String({ minLength: 12, maxLength: 17 }) })

/** `:id` of a group or profile. */
export const IdParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 200 }) })

/** `GET /v1/machines` page size when `limit` is not given, and the largest `limit` accepted. */
export const MACHINE_PAGE = { defaultLimit: 200, maxLimit: 1000 } as const

/** GET /v1/machines: one page of the list, in the dashboard's order. */
export const MachineListSchema = Type.Object(
  {
    stuck_after_seconds: Type.Number(),
    /** Every machine by status, whatever the page and filter. */
    counts: Type.Record(Type.String(), Type.Integer()),
    /** Machines matching the filter (all pages). */
    total: Type.Integer({ minimum: 0 }),
    offset: Type.Integer({ minimum: 0 }),
    limit: Type.Integer({ minimum: 1 }),
    /** `offset` of the next page; absent on the last page. */
    next_offset: Type.Optional(Type.Integer({ minimum: 0 })),
    machines: Type.Array(MachineViewSchema),
  },
  { additionalProperties: false },
)

const DIGITS = '^[0-9]{1,9}$'

/** GET /v1/machines query: filter by status, page with offset and limit. */
export const MachineListQuery = Type.Object(
  {
    status: Type.Optional(Type.String({ description: 'failed, stuck, booting, ignored, local-boot or done' })),
    offset: Type.Optional(Type.String({ pattern: DIGITS, description: 'machines to skip (from next_offset of the previous page); default 0' })),
    limit: Type.Optional(
      Type.String({ pattern: DIGITS, description: `machines per page, 1 to ${MACHINE_PAGE.maxLimit}; default ${MACHINE_PAGE.defaultLimit}` }),
    ),
  },
  { additionalProperties: false },
)

/** GET /v1/machines/:mac/timeline */
export const TimelineSchema = Type.Object(
  {
    mac: Type.String(),
    boots: Type.Integer(),
    attempt_started: Type.String(),
    timeline: Type.Array(TimelineEntrySchema),
    history: Type.Array(PastAttemptSchema),
  },
  { additionalProperties: false },
)

/** PATCH /v1/machines/:mac: set labels (null removes one). */
export const MachinePatchSchema = Type.Object(
  {
    labels: Type.Record(Type.String({ pattern: '^[A-Za-z0-9._-]{1,63}$' }), Type.Union([Type.String({ maxLength: 256 }), Type.Null()]), {
      maxProperties: 32,
      description: 'a machine holds at most 32 labels of at most 256 characters',
    }),
  },
  { additionalProperties: false },
)

/** The installed callback's answer. */
export const InstalledSchema = Type.Object(
  { mac: Type.String(), installed_at: Type.String(), boots_local: Type.Boolean() },
  { additionalProperties: false },
)

/** A group as the boot store holds it. */
export const GroupViewSchema = Type.Object(
  {
    id: Type.String(),
    name: Type.Optional(Type.String()),
    profile: Type.String(),
    selector: Type.Record(Type.String(), Type.Array(Type.String())),
    metadata: Type.Record(Type.String(), Type.Unknown()),
    pxe: Type.Boolean(),
    boot_file: Type.Optional(Type.String()),
    chainload_ipxe: Type.Boolean(),
    /** First stage for UEFI x86-64 PXE (ipxe or shim-grub); absent: the profile's, else ipxe. */
    loader: Type.Optional(Type.String()),
    /** config.yaml entry, Matchbox file or API overlay file it came from. */
    source: Type.String(),
    /** Written through the API, so PUT/DELETE may change it. */
    managed_by_api: Type.Boolean(),
  },
  { additionalProperties: false },
)

/** A profile as the boot store holds it (initrds with their resolved iPXE names, args in final order). */
export const ProfileViewSchema = Type.Object(
  {
    id: Type.String(),
    name: Type.Optional(Type.String()),
    boot: Type.Optional(
      Type.Object(
        {
          kernel: Type.String(),
          initrd: Type.Array(Type.Object({ name: Type.String(), url: Type.String() }, { additionalProperties: false })),
          args: Type.Array(Type.String()),
        },
        { additionalProperties: false },
      ),
    ),
    ignition: Type.Optional(Type.String()),
    generic: Type.Optional(Type.String()),
    boot_once: Type.Boolean(),
    /** Default first stage of the groups using this profile (ipxe or shim-grub). */
    loader: Type.Optional(Type.String()),
    source: Type.String(),
    managed_by_api: Type.Boolean(),
  },
  { additionalProperties: false },
)

/** One MAC -> IP binding from the address tracker (src/addresses Binding). */
export const LeaseSchema = Type.Object({
  mac: Type.String(),
  ip: Type.String(),
  server: Type.Optional(Type.String()),
  firstSeen: Type.String(),
  lastSeen: Type.String(),
  hostname: Type.Optional(Type.String()),
  uuid: Type.Optional(Type.String()),
  source: Type.String(),
  state: Type.String(),
  leaseExpires: Type.Optional(Type.String()),
  machine: Type.String(),
})

/** A problem the address tracker sees (src/addresses Finding). */
export const FindingSchema = Type.Object({
  id: Type.String(),
  kind: Type.String(),
  ip: Type.Optional(Type.String()),
  macs: Type.Array(Type.String()),
  uuid: Type.Optional(Type.String()),
  server: Type.Optional(Type.String()),
  since: Type.String(),
  explanation: Type.String(),
  evidence: Type.Array(
    Type.Object({
      time: Type.String(),
      source: Type.String(),
      mac: Type.Optional(Type.String()),
      ip: Type.Optional(Type.String()),
      what: Type.String(),
    }),
  ),
})

/** GET /v1/leases: `available` is false when address tracking is not running. */
export const LeaseListSchema = Type.Object({ available: Type.Boolean(), leases: Type.Array(LeaseSchema) }, { additionalProperties: false })
/** GET /v1/findings */
export const FindingListSchema = Type.Object({ available: Type.Boolean(), findings: Type.Array(FindingSchema) }, { additionalProperties: false })

/** A lease as the tracker reports it. */
export type LeaseView = Static<typeof LeaseSchema>
/** A finding as the tracker reports it. */
export type FindingView = Static<typeof FindingSchema>

/** Response map with the shared error schema for each listed status. */
export function responses(ok: Record<number, TSchema>, errors: readonly number[]): Record<number, TSchema> {
  const out: Record<number, TSchema> = { ...ok }
  for (const code of errors) out[code] = ErrorSchema
  return out
}

/** The empty 204 answer. */
export const NoContent = Type.Null({ description: 'no content' })
