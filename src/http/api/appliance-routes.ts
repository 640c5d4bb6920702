/**
 * The fleet's view (issue 17), on a store shared by several appliances (etcd):
 * - `GET /v1/appliances`: the appliance registry (store/etcd-registry.ts): every appliance sharing this one's store,
 *   `up` while its heartbeat lease lives, `gone` after it expired.
 * - `GET /v1/fleet/machines`: every machine record in the shared store, whichever appliance wrote it, with the site
 *   and appliance that last saw it. `/v1/machines` stays this appliance's own view (timelines, status), which it
 *   builds from the events it sees; the fleet list is read from the store on each request and shows the record
 *   without its timeline (machines/records-store.ts keeps that in a document of its own).
 * Both answer `available: false` on the embedded store (one appliance, nothing shared).
 */
import { Type, type Static } from '@sinclair/typebox'
import { TypeCompiler } from '@sinclair/typebox/compiler'
import type { FastifyInstance } from 'fastify'
import { MACHINE_KIND } from '../../machines/records-store.js'
import type { ApiDeps } from './deps.js'
import { responses } from './schemas.js'

const ApplianceSchema = Type.Object({
  name: Type.String(),
  site: Type.String(),
  state: Type.Union([Type.Literal('up'), Type.Literal('gone')], { description: 'gone: no heartbeat within its lease TTL' }),
  interface: Type.String(),
  address: Type.String(),
  version: Type.String(),
  host: Type.String(),
  pid: Type.Integer(),
  started: Type.String({ description: 'ISO 8601' }),
  heartbeat: Type.String({ description: 'ISO 8601: the last heartbeat seen' }),
})

/** One machine of the fleet: the identity part of its record (machines/model.ts), no timeline. */
export const FleetMachineSchema = Type.Object({
  mac: Type.String(),
  site: Type.Optional(Type.String({ description: 'the site of the appliance that last saw it (config store.site)' })),
  appliance: Type.Optional(Type.String({ description: 'the appliance that last saw it (config store.name)' })),
  hostname: Type.Optional(Type.String()),
  serial: Type.Optional(Type.String()),
  arch: Type.Optional(Type.String()),
  group: Type.Optional(Type.String()),
  profile: Type.Optional(Type.String()),
  ips: Type.Array(Type.String()),
  first_seen: Type.String(),
  last_seen: Type.String(),
  boots: Type.Integer({ minimum: 0 }),
  installed_at: Type.Optional(Type.String()),
})

/** A fleet machine as `GET /v1/fleet/machines` lists it. */
export type FleetMachine = Static<typeof FleetMachineSchema>

// The stored document holds more (labels, inventory, counters): checked for the fields shown, the rest ignored. A
// document another appliance wrote (another pxebox version, or by hand with etcdctl) that lacks them is skipped and
// counted, never a 500 for the whole list.
const storedCheck = TypeCompiler.Compile(FleetMachineSchema)

/** The optional fields shown. */
const OPTIONAL_FIELDS = ['site', 'appliance', 'hostname', 'serial', 'arch', 'group', 'profile', 'installed_at'] as const

/** The fields shown, copied out of a stored record that passed storedCheck. */
function fleetMachine(r: FleetMachine): FleetMachine {
  const out: FleetMachine = { mac: r.mac, ips: [...r.ips], first_seen: r.first_seen, last_seen: r.last_seen, boots: r.boots }
  for (const k of OPTIONAL_FIELDS) {
    const v = r[k]
    if (v !== undefined) out[k] = v
  }
  return out
}

/** Fleet order: by site, then the most recently seen first, then MAC. */
function fleetOrder(a: FleetMachine, b: FleetMachine): number {
  const site = (a.site ?? '').localeCompare(b.site ?? '')
  if (site !== 0) return site
  if (a.last_seen !== b.last_seen) return a.last_seen < b.last_seen ? 1 : -1
  return a.mac < b.mac ? -1 : a.mac > b.mac ? 1 : 0
}

/** Register the fleet routes on the `/v1` plugin instance. */
export function registerApplianceRoutes(api: FastifyInstance, deps: ApiDeps): void {
  api.get(
    '/appliances',
    {
      schema: {
        summary: 'The appliances sharing this store (etcd), up or gone',
        tags: ['fleet'],
        response: responses({ 200: Type.Object({ available: Type.Boolean(), appliances: Type.Array(ApplianceSchema) }) }, [401]),
      },
    },
    () => {
      const list = deps.appliances?.()
      return { available: list !== undefined, appliances: [...(list ?? [])] }
    },
  )

  api.get(
    '/fleet/machines',
    {
      schema: {
        summary: "Every machine in the shared store (etcd), with the site and appliance that last saw it; no timelines (each appliance's /v1/machines has its own)",
        tags: ['fleet'],
        response: responses(
          {
            200: Type.Object({
              available: Type.Boolean(),
              current: Type.Boolean({ description: 'false while the shared store does not answer: the list is the local copy as last seen' }),
              machines: Type.Array(FleetMachineSchema),
              skipped: Type.Integer({ minimum: 0, description: 'stored records left out because they lack the fields shown' }),
            }),
          },
          [401, 503],
        ),
      },
    },
    async () => {
      if (deps.sharedStore === undefined) return { available: false, current: true, machines: [], skipped: 0 }
      // Read before the list: a list that began while etcd was down is never called current.
      const current = deps.storeUp?.() ?? true
      const machines: FleetMachine[] = []
      let skipped = 0
      for (const e of await deps.sharedStore.list(MACHINE_KIND)) {
        if (storedCheck.Check(e.value) && e.value.mac === e.id) machines.push(fleetMachine(e.value))
        else skipped++
      }
      return { available: true, current: current && (deps.storeUp?.() ?? true), machines: machines.sort(fleetOrder), skipped }
    },
  )
}
