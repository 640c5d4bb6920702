/**
 * `GET /v1/fleet/findings` (issue 17): every appliance's findings as each publishes them to the shared store
 * (addresses/findings-store.ts), with the appliance that raised it, its site, and whether that appliance is up or
 * gone in the registry (a gone appliance's last findings stay listed until it starts again and replaces them). Read
 * from this appliance's copy of the shared store on each request, like `/v1/fleet/machines`: during an outage the
 * copy's list as last seen, with `current: false`. `/v1/findings` stays this appliance's own, live.
 * `available: false` on the embedded store (one appliance, nothing shared).
 */
import { Type, type Static } from '@sinclair/typebox'
import { TypeCompiler } from '@sinclair/typebox/compiler'
import type { FastifyInstance } from 'fastify'
import { FINDING_KIND } from '../../addresses/findings-store.js'
import type { ApiDeps } from './deps.js'
import { FindingSchema, responses } from './schemas.js'

/** A stored finding: the finding and who raised it. */
const StoredFindingSchema = Type.Composite([
  FindingSchema,
  Type.Object({
    appliance: Type.String({ description: 'the appliance that raised it (config store.name)' }),
    site: Type.String({ description: "that appliance's site (config store.site)" }),
  }),
])

/** One finding of the fleet as `GET /v1/fleet/findings` lists it. */
export const FleetFindingSchema = Type.Composite([
  StoredFindingSchema,
  Type.Object({
    appliance_state: Type.Union([Type.Literal('up'), Type.Literal('gone'), Type.Literal('unknown')], {
      description: "the appliance's state in the registry (GET /v1/appliances); unknown: not listed there (yet)",
    }),
  }),
])

/** A fleet finding. */
export type FleetFinding = Static<typeof FleetFindingSchema>

// A document another appliance wrote (another pxebox version, or by hand with etcdctl) that lacks the fields shown is
// skipped and counted, never a 500 for the whole list.
const storedCheck = TypeCompiler.Compile(StoredFindingSchema)

/** The fields shown, copied out of a stored document that passed storedCheck (extra keys left behind). */
function shown(v: Static<typeof StoredFindingSchema>, state: FleetFinding['appliance_state']): FleetFinding {
  const out: FleetFinding = {
    id: v.id,
    kind: v.kind,
    macs: [...v.macs],
    since: v.since,
    explanation: v.explanation,
    evidence: v.evidence.map((e) => ({ time: e.time, source: e.source, what: e.what, ...(e.mac === undefined ? {} : { mac: e.mac }), ...(e.ip === undefined ? {} : { ip: e.ip }) })),
    appliance: v.appliance,
    site: v.site,
    appliance_state: state,
  }
  if (v.ip !== undefined) out.ip = v.ip
  if (v.uuid !== undefined) out.uuid = v.uuid
  if (v.server !== undefined) out.server = v.server
  return out
}

/** By site, appliance, kind, then id. */
function fleetOrder(a: FleetFinding, b: FleetFinding): number {
  for (const k of ['site', 'appliance', 'kind', 'id'] as const) {
    if (a[k] !== b[k]) return a[k] < b[k] ? -1 : 1
  }
  return 0
}

/** Register `GET /fleet/findings` on the `/v1` plugin instance. */
export function registerFleetFindingsRoute(api: FastifyInstance, deps: ApiDeps): void {
  api.get(
    '/fleet/findings',
    {
      schema: {
        summary: "Every appliance's findings in the shared store (etcd), with the appliance that raised each, its site and whether it is up",
        tags: ['fleet'],
        response: responses(
          {
            200: Type.Object({
              available: Type.Boolean(),
              current: Type.Boolean({ description: 'false while the shared store does not answer: the list is the local copy as last seen' }),
              findings: Type.Array(FleetFindingSchema),
              skipped: Type.Integer({ minimum: 0, description: 'stored documents left out because they lack the fields shown' }),
            }),
          },
          [401, 503],
        ),
      },
    },
    async () => {
      if (deps.sharedStore === undefined) return { available: false, current: true, findings: [], skipped: 0 }
      // Read before the list: a list that began while etcd was down is never called current.
      const current = deps.storeUp?.() ?? true
      const states = new Map((deps.appliances?.() ?? []).map((a) => [a.name, a.state]))
      const findings: FleetFinding[] = []
      let skipped = 0
      for (const e of await deps.sharedStore.list(FINDING_KIND)) {
        const v = e.value
        if (storedCheck.Check(v) && e.id.startsWith(`${v.appliance}@`)) findings.push(shown(v, states.get(v.appliance) ?? 'unknown'))
        else skipped++
      }
      return { available: true, current: current && (deps.storeUp?.() ?? true), findings: findings.sort(fleetOrder), skipped }
    },
  )
}
