/**
 * `/v1/leases` and `/v1/findings`: the address tracker's binding table and findings (duplicate addresses, strays,
 * multi-NIC boots, rogue DHCP servers, a site next-server GRUB cannot use), and the boot side's findings (firmware did
 * not run iPXE). `available: false` says tracking is not running: its lists are then empty.
 */
import type { FastifyInstance } from 'fastify'
import type { ApiDeps } from './deps.js'
import { FindingListSchema, LeaseListSchema, responses, type FindingView } from './schemas.js'

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
    { schema: { summary: 'Address and boot problems on the PXE VLAN, with evidence', tags: ['addresses'], response: responses({ 200: FindingListSchema }, [401]) } },
    () => {
      const tracking = deps.tracking?.()
      return { available: tracking !== undefined, findings: allFindings(deps) }
    },
  )
}

/** The tracker's findings (when it runs) and the boot side's, for `/v1/findings` and the machine views. */
export function allFindings(deps: Pick<ApiDeps, 'tracking' | 'bootFindings'>): FindingView[] {
  return [...(deps.tracking?.()?.findings() ?? []), ...(deps.bootFindings?.() ?? [])]
}
