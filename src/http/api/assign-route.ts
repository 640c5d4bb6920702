/**
 * `POST /v1/machines/<mac>/assign {"group": "<id>"}`: put a machine (typically one waiting in the discovery holding
 * script) into a group, through the API-written overlay (catalog/overlay.ts), so it boots that group's profile on
 * its next poll of `/ipxe`.
 *
 * A group's selector is one set of labels, so the MAC cannot simply be added to a group that selects something else
 * (`product: X` AND `mac: M` would match nothing new). The assignment therefore goes to a MAC-list group:
 * - the chosen group itself when it is API-written and selects by `mac` alone (its list is extended);
 * - else the overlay group `<id>.assigned`, created with the chosen group's profile, metadata and PXE settings, and
 *   extended on later assignments.
 * The MAC is then taken out of any other API-written MAC-list group, so a reassignment does not leave two groups of
 * equal weight matching it (matching would pick the smaller id, not the operator's latest choice).
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { Type, type Static } from '@sinclair/typebox'
import { normalizeMac } from '../../catalog/labels.js'
import type { Group } from '../../catalog/model.js'
import type { GroupInput } from '../../catalog/model-schema.js'
import type { BootOverlay } from '../../catalog/overlay.js'
import { MachineViewSchema } from '../../machines/model.js'
import type { ApiDeps } from './deps.js'
import { MacParams, responses } from './schemas.js'
import { viewOf } from './views.js'

/** Body of an assignment. */
export const AssignBodySchema = Type.Object({ group: Type.String({ minLength: 1, maxLength: 200 }) }, { additionalProperties: false })

/** Suffix of the MAC-list group an assignment creates beside a group that selects other labels. */
export const ASSIGNED_SUFFIX = '.assigned'

/** A group that selects by MAC alone, written through the API (so an assignment may change it). */
function macListGroup(g: Group, overlay: BootOverlay): boolean {
  const keys = Object.keys(g.selector)
  return keys.length === 1 && keys[0] === 'mac' && overlay.has('group', g.id)
}

/** The group as config.yaml's shape, with `macs` as its selector. */
function groupInput(g: Group, id: string, macs: readonly string[], name?: string): GroupInput {
  const label = name ?? g.name
  return {
    id,
    ...(label !== undefined ? { name: label } : {}),
    profile: g.profile,
    selector: { mac: [...macs] },
    ...(Object.keys(g.metadata).length > 0 ? { metadata: structuredClone(g.metadata) as GroupInput['metadata'] } : {}),
    ...(g.pxe ? {} : { pxe: false }),
    ...(g.bootFile !== undefined ? { boot_file: g.bootFile } : {}),
    ...(g.chainloadIpxe ? { chainload_ipxe: true } : {}),
  }
}

/** Register the assign route on the `/v1` plugin instance. */
export function registerAssignRoute(api: FastifyInstance, deps: ApiDeps, now: () => number): void {
  api.post(
    '/machines/:mac/assign',
    {
      config: { access: 'write' },
      schema: {
        summary: 'Assign a machine to a group (creates or extends an API-written group selecting its MAC)',
        tags: ['machines'],
        params: MacParams,
        body: AssignBodySchema,
        response: responses({ 200: MachineViewSchema }, [400, 401, 403, 404, 409, 422, 501]),
      },
    },
    async (req: FastifyRequest<{ Params: Static<typeof MacParams>; Body: Static<typeof AssignBodySchema> }>, reply: FastifyReply) => {
      const overlay = deps.overlay
      if (!overlay) return reply.code(501).send({ error: 'this pxebox has no data_dir overlay for API-written groups' })
      const mac = normalizeMac(req.params.mac)
      if (mac === undefined) return reply.code(400).send({ error: `"${req.params.mac}" is not a MAC address` })
      const state = deps.store.get()
      const chosen = state.group(req.body.group)
      if (!chosen) return reply.code(404).send({ error: `no group "${req.body.group}"` })

      const targetId = macListGroup(chosen, overlay) ? chosen.id : `${chosen.id}${ASSIGNED_SUFFIX}`
      const existing = state.group(targetId)
      if (existing && !macListGroup(existing, overlay)) {
        return reply.code(409).send({ error: `group "${targetId}" exists and does not select by MAC alone through the API; cannot add a MAC to it` })
      }
      // Out of every other MAC-list group first: two MAC-list groups both holding it would not load (the matcher's
      // tie check), and the latest choice must be the one that matches.
      for (const g of state.groups) {
        if (g.id === targetId || !macListGroup(g, overlay) || !g.selector['mac']!.includes(mac)) continue
        const rest = g.selector['mac']!.filter((m) => m !== mac)
        const edit = rest.length > 0 ? await overlay.putGroup(groupInput(g, g.id, rest)) : await overlay.remove('group', g.id)
        if (!edit.ok) return reply.code(edit.status).send({ error: `cannot take ${mac} out of group "${g.id}": ${edit.errors[0] ?? 'refused'}`, errors: edit.errors })
      }
      const macs = existing?.selector['mac'] ?? []
      if (!macs.includes(mac)) {
        const input = existing
          ? groupInput(existing, targetId, [...macs, mac])
          : groupInput(chosen, targetId, [mac], `machines assigned to ${chosen.id} from the dashboard or API`)
        const edit = await overlay.putGroup(input)
        if (!edit.ok) return reply.code(edit.status).send({ error: edit.errors[0] ?? 'refused', errors: edit.errors })
      }
      req.log.info({ mac, group: chosen.id, via: targetId }, 'machine assigned')
      await deps.machines.timelines
      const record = deps.machines.get(mac)
      if (!record) return reply.code(404).send({ error: `assigned through group "${targetId}", but pxebox has no record of ${mac} yet` })
      return viewOf(record, deps.store.get(), now(), deps.stuckAfterMs)
    },
  )
}
