/**
 * `/v1/leases` and `/v1/findings`: the address tracker's binding table and findings (duplicate addresses, strays,
 * multi-NIC boots, rogue DHCP servers). Answer `available: false` with empty lists when tracking is not running.
 */
import type { FastifyInstance } from 'fastify'
import type { ApiDeps } from './deps.js'
import { FindingListSchema, LeaseListSchema, responses } from './schemas.js'

/** Register the tracking routes on the `/v1` plugin instance. */
export function registerTrackingRoutes(api: FastifyInstance, deps: ApiDeps): void {
  api.get(
    '/leases',
    { schema: { summary: 'MAC -> IP bindings seen on the PXE VLAN', tags: ['addresses'], response: responses({ 200: LeaseListSchema }, [401]) } },
    () => {
      const tracking = deps.tracking?.()
      return { available: tracking !== undefined, leases: [...(tracking?.leases() ?? [])] }
    },
  )
  api.get(
    '/findings',
    { schema: { summary: 'Address problems on the PXE VLAN, with evidence', tags: ['addresses'], response: responses({ 200: FindingListSchema }, [401]) } },
    () => {
      const tracking = deps.tracking?.()
      return { available: tracking !== undefined, findings: [...(tracking?.findings() ?? [])] }
    },
  )
}
