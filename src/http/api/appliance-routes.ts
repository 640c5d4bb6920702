/**
 * `GET /v1/appliances`: the fleet's appliance registry (store/etcd-registry.ts): every appliance sharing this one's
 * etcd store, `up` while its heartbeat lease lives, `gone` after it expired. `available: false` on the embedded
 * store (one appliance, no registry).
 */
import { Type } from '@sinclair/typebox'
import type { FastifyInstance } from 'fastify'
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

/** Register the registry route on the `/v1` plugin instance. */
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
}
