/**
 * The fleet's view (issue 17), on a store shared by several appliances (etcd):
 * - `GET /v1/appliances`: the appliance registry (store/etcd-registry.ts): every appliance sharing this one's store,
 *   `up` while its heartbeat lease lives, `gone` after it expired.
 * - `GET /v1/fleet/machines`: the machine records in the shared store, whichever appliance wrote them, with the site
 *   and appliance that last saw each, a page at a time in MAC order (`limit`, `after` = the previous page's `next`):
 *   a fleet of 100,000 machines is ~60 MB of JSON, too much for one answer or one dashboard render. `/v1/machines`
 *   stays this appliance's own view (timelines, status), which it builds from the events it sees; the fleet list is
 *   read from the store on each request (Store.page: on etcd, from the outage layer's local copy) and shows the
 *   record without its timeline (machines/records-store.ts keeps that in a document of its own).
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

/** `GET /v1/fleet/machines` page size when `limit` is not given, and the largest `limit` accepted. */
export const FLEET_PAGE = { defaultLimit: 500, maxLimit: 1000 } as const

const FleetMachinesQuery = Type.Object(
  {
    limit: Type.Optional(Type.String({ pattern: '^[0-9]{1,9}$', description: `records per page, 1 to ${FLEET_PAGE.maxLimit}; default ${FLEET_PAGE.defaultLimit}` })),
    after: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9_@:.-]{1,200}$', description: "the previous page's `next`: records whose MAC sorts after it" })),
  },
  { additionalProperties: false },
)

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

  api.get<{ Querystring: Static<typeof FleetMachinesQuery> }>(
    '/fleet/machines',
    {
      schema: {
        summary: "The machines in the shared store (etcd), with the site and appliance that last saw each, a page at a time; no timelines (each appliance's /v1/machines has its own)",
        description: `In MAC order, pages of at most ${FLEET_PAGE.maxLimit} records (default ${FLEET_PAGE.defaultLimit}); pass \`next\` as \`after\` until it is absent.`,
        tags: ['fleet'],
        querystring: FleetMachinesQuery,
        response: responses(
          {
            200: Type.Object({
              available: Type.Boolean(),
              current: Type.Boolean({ description: 'false while the shared store does not answer: the list is the local copy as last seen' }),
              machines: Type.Array(FleetMachineSchema),
              skipped: Type.Integer({ minimum: 0, description: "this page's stored records left out because they lack the fields shown" }),
              next: Type.Optional(Type.String({ description: 'pass as `after` for the next page; absent on the last page' })),
            }),
          },
          [400, 401, 503],
        ),
      },
    },
    async (req, reply) => {
      const limit = req.query.limit === undefined ? FLEET_PAGE.defaultLimit : Number(req.query.limit)
      if (limit < 1 || limit > FLEET_PAGE.maxLimit) return reply.code(400).send({ error: `limit must be 1 to ${FLEET_PAGE.maxLimit} (got ${limit}); page with after=<next>` })
      if (deps.sharedStore === undefined) return { available: false, current: true, machines: [], skipped: 0 }
      // Read before the page: a page that began while etcd was down is never called current.
      const current = deps.storeUp?.() ?? true
      const page = await deps.sharedStore.page(MACHINE_KIND, { limit, ...(req.query.after === undefined ? {} : { after: req.query.after }) })
      const machines: FleetMachine[] = []
      let skipped = 0
      for (const e of page.entries) {
        if (storedCheck.Check(e.value) && e.value.mac === e.id) machines.push(fleetMachine(e.value))
        else skipped++
      }
      return { available: true, current: current && (deps.storeUp?.() ?? true), machines, skipped, ...(page.next === undefined ? {} : { next: page.next }) }
    },
  )
}
