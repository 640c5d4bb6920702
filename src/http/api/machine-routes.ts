/**
 * `/v1/machines`: the machine list (stuck and failed first), one machine, its timeline, operator labels, re-arm,
 * forget, and the installed callback.
 *
 * The installed callback (`POST` or `GET /v1/machines/<mac>/installed`) is called by the installer or the installed
 * system, which holds no API token. It is accepted without one only from an IP address pxebox has seen that MAC use
 * on the wire (`deps.addressesOf`: DHCP from that address with that chaddr, or the address tracker's bindings), so
 * another host on the VLAN cannot switch a machine to local boot by knowing its MAC. The record's `ips` are NOT that
 * evidence: they include addresses of HTTP requests whose `mac=` query label merely claimed the MAC (and TFTP
 * `<mac>/` path prefixes), so `GET /ipxe?mac=VICTIM` from an attacker would otherwise have qualified the attacker's
 * address. With the token the callback is accepted from anywhere (an operator marking a machine installed by hand).
 * GET is allowed because an Ignition `storage.files` entry or an iPXE `imgfetch` can only GET.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { Static } from '@sinclair/typebox'
import { normalizeMac } from '../../catalog/labels.js'
import { plainIpv4 } from '../../addresses/observed.js'
import { MachineViewSchema } from '../../machines/model.js'
import { MachineLabelError } from '../../machines/store.js'
import { checkToken } from './auth.js'
import type { ApiDeps } from './deps.js'
import {
  InstalledSchema,
  MACHINE_PAGE,
  MacParams,
  MachineListQuery,
  MachineListSchema,
  MachinePatchSchema,
  NoContent,
  TimelineSchema,
  responses,
} from './schemas.js'
import { findingsByMac, sortViews, viewOf } from './views.js'
import { allFindings } from './tracking-routes.js'

type MacReq = FastifyRequest<{ Params: Static<typeof MacParams> }>

/** Register the machine routes on the `/v1` plugin instance. */
export function registerMachineRoutes(api: FastifyInstance, deps: ApiDeps, now: () => number): void {
  const view = (mac: string) => {
    const r = deps.machines.get(mac)
    return r && viewOf(r, deps.store.get(), now(), deps.stuckAfterMs, findingsByMac(allFindings(deps)))
  }
  /** The canonical MAC from the path, or a 400 sent. */
  const macOf = (req: MacReq, reply: FastifyReply): string | undefined => {
    const mac = normalizeMac(req.params.mac)
    if (mac === undefined) void reply.code(400).send({ error: `"${req.params.mac}" is not a MAC address (use 52:54:00:12:34:56)` })
    return mac
  }
  const unknown = (reply: FastifyReply, mac: string) => reply.code(404).send({ error: `no machine ${mac} has been seen` })

  /**
   * Paged (issue 13 item 12): serializing and checking 10,000 full views took 0.62 s of event loop per request, and
   * four such requests delayed DHCP offers. A page is at most MACHINE_PAGE.maxLimit views; the statuses every
   * record needs for `counts` and the order are cheap next to that.
   */
  api.get<{ Querystring: Static<typeof MachineListQuery> }>(
    '/machines',
    {
      schema: {
        summary: 'Machines seen, failed and stuck first, one page at a time',
        description: `Pages of at most ${MACHINE_PAGE.maxLimit} (default ${MACHINE_PAGE.defaultLimit}); follow next_offset until it is absent.`,
        tags: ['machines'],
        querystring: MachineListQuery,
        response: responses({ 200: MachineListSchema }, [400, 401]),
      },
    },
    async (req, reply) => {
      // Views show timelines: the first seconds after a restart with many records, they are still being read.
      await deps.machines.timelines
      const limit = req.query.limit === undefined ? MACHINE_PAGE.defaultLimit : Number(req.query.limit)
      const offset = req.query.offset === undefined ? 0 : Number(req.query.offset)
      if (limit < 1 || limit > MACHINE_PAGE.maxLimit) {
        return reply.code(400).send({ error: `limit must be 1 to ${MACHINE_PAGE.maxLimit} (got ${limit}); page with offset` })
      }
      const state = deps.store.get()
      const t = now()
      const findings = findingsByMac(allFindings(deps))
      const all = deps.machines.list().map((r) => viewOf(r, state, t, deps.stuckAfterMs, findings))
      const counts: Record<string, number> = {}
      for (const v of all) counts[v.status] = (counts[v.status] ?? 0) + 1
      const wanted = req.query.status
      const matching = sortViews(wanted ? all.filter((v) => v.status === wanted) : all)
      const end = offset + limit
      return {
        stuck_after_seconds: deps.stuckAfterMs / 1000,
        counts,
        total: matching.length,
        offset,
        limit,
        ...(end < matching.length ? { next_offset: end } : {}),
        machines: matching.slice(offset, end),
      }
    },
  )

  api.get(
    '/machines/:mac',
    { schema: { summary: 'One machine: identity, status, current attempt', tags: ['machines'], params: MacParams, response: responses({ 200: MachineViewSchema }, [400, 401, 404]) } },
    async (req: MacReq, reply) => {
      const mac = macOf(req, reply)
      if (mac === undefined) return reply
      await deps.machines.timelines
      return view(mac) ?? unknown(reply, mac)
    },
  )

  api.get(
    '/machines/:mac/timeline',
    { schema: { summary: "One machine's boot timeline and past attempts", tags: ['machines'], params: MacParams, response: responses({ 200: TimelineSchema }, [400, 401, 404]) } },
    async (req: MacReq, reply) => {
      const mac = macOf(req, reply)
      if (mac === undefined) return reply
      await deps.machines.timelines
      const r = deps.machines.get(mac)
      if (!r) return unknown(reply, mac)
      return { mac, boots: r.boots, attempt_started: r.attempt_started, timeline: r.timeline, history: r.history }
    },
  )

  api.patch<{ Params: Static<typeof MacParams>; Body: Static<typeof MachinePatchSchema> }>(
    '/machines/:mac',
    {
      config: { access: 'write' },
      schema: {
        summary: 'Set or remove operator labels (null removes)',
        tags: ['machines'],
        params: MacParams,
        body: MachinePatchSchema,
        response: responses({ 200: MachineViewSchema }, [400, 401, 403, 404]),
      },
    },
    async (req, reply) => {
      const mac = macOf(req, reply)
      if (mac === undefined) return reply
      try {
        if (!(await deps.machines.setLabels(mac, req.body.labels))) return unknown(reply, mac)
      } catch (err) {
        if (err instanceof MachineLabelError) return reply.code(400).send({ error: err.message })
        throw err
      }
      return view(mac)
    },
  )

  api.post(
    '/machines/:mac/rearm',
    {
      config: { access: 'write' },
      schema: {
        summary: 'Forget the installed callback: a boot_once profile installs again on next boot',
        tags: ['machines'],
        params: MacParams,
        response: responses({ 200: MachineViewSchema }, [400, 401, 403, 404]),
      },
    },
    async (req: MacReq, reply) => {
      const mac = macOf(req, reply)
      if (mac === undefined) return reply
      if (!(await deps.machines.rearm(mac))) return unknown(reply, mac)
      req.log.info({ mac }, 'machine re-armed')
      return view(mac)
    },
  )

  api.delete(
    '/machines/:mac',
    {
      config: { access: 'write' },
      schema: { summary: 'Forget a machine record', tags: ['machines'], params: MacParams, response: responses({ 204: NoContent }, [400, 401, 403, 404]) },
    },
    async (req: MacReq, reply) => {
      const mac = macOf(req, reply)
      if (mac === undefined) return reply
      if (!(await deps.machines.forget(mac))) return unknown(reply, mac)
      return reply.code(204).send()
    },
  )

  const installed = async (req: MacReq, reply: FastifyReply) => {
    const mac = macOf(req, reply)
    if (mac === undefined) return reply
    const record = deps.machines.get(mac)
    const token = checkToken(req, deps.auth)
    if (token === 'wrong' || (token === 'missing' && record === undefined)) {
      return reply.code(token === 'wrong' ? 401 : 404).send({ error: token === 'wrong' ? 'wrong bearer token' : `no machine ${mac} has been seen` })
    }
    if (token !== 'ok') {
      if (record === undefined) return unknown(reply, mac)
      const ip = plainIpv4(req.ip)
      const seen = deps.addressesOf(mac)
      if (!seen.includes(ip)) {
        req.log.warn({ mac, ip, seen }, 'installed callback refused: not from the machine')
        return reply.code(403).send({
          error: `${ip} is not an address pxebox has seen ${mac} use in DHCP (${seen.join(', ') || 'none'}); call from the machine or with the API token`,
        })
      }
    }
    const r = await deps.machines.markInstalled(mac, token === 'ok' ? undefined : plainIpv4(req.ip))
    req.log.info({ mac, ip: req.ip }, 'machine reported installed')
    return { mac, installed_at: r.installed_at!, boots_local: view(mac)?.boots_local ?? false }
  }
  const installedSchema = {
    summary: 'Installed callback: from the machine itself (no token), or with the token',
    description: 'After this, a profile with boot_once: true answers /ipxe with a local-disk boot until re-armed.',
    tags: ['machines'],
    params: MacParams,
    response: responses({ 200: InstalledSchema }, [400, 401, 403, 404]),
  }
  api.post('/machines/:mac/installed', { config: { access: 'machine' }, schema: installedSchema }, installed)
  api.get('/machines/:mac/installed', { config: { access: 'machine' }, schema: installedSchema }, installed)
}
