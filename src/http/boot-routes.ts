/**
 * Matchbox-compatible boot endpoints: `/boot.ipxe` (and `/boot.ipxe.0`), `/ipxe`, `/ignition`, `/generic`,
 * `/metadata`. Each reads the machine's labels from the query string, asks the current BootState which group and
 * profile it belongs to, and answers; a miss is a 404 with a one-line reason, or for `/ipxe` with discovery on the
 * holding script (boot/discovery-script.ts) that reports to `/discovery/report` and polls. Every hit becomes a
 * BootEvent.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { BootEvent } from '../machines/events.js'
import { labelsFromQuery, type Labels } from '../catalog/labels.js'
import { renderIpxeScript } from '../boot/ipxe-script.js'
import { collectVariables, renderEnvFile } from '../catalog/metadata.js'
import { templateKey, type BootMatch } from '../catalog/state.js'
import { renderGenericFor, renderIgnitionFor, type RenderAnswer } from '../boot/renderers.js'
import { leaseBindingRefusal } from '../addresses/observed.js'
import type { HttpContext } from './context.js'
import { localBootScript } from '../boot/local-boot.js'
import { holdingScript } from '../boot/discovery-script.js'
import { parseInventoryQuery } from '../boot/inventory.js'

const TEXT = 'text/plain; charset=utf-8'
/** `/discovery/report`'s answer body: iPXE stores it as an image, the holding script frees it at once. */
export const REPORT_RECEIVED = 'pxebox: inventory received\n'

/** The query string exactly as sent (Matchbox exposes it to templates as request.raw_query). */
function rawQuery(req: FastifyRequest): string {
  const url = req.raw.url ?? ''
  const q = url.indexOf('?')
  return q >= 0 ? url.slice(q + 1) : ''
}

function describeLabels(labels: Labels): string {
  const parts = Object.entries(labels).map(([k, v]) => `${k}=${v}`)
  return parts.length > 0 ? parts.join(' ') : '(no labels)'
}

/** Register the boot endpoints on `app`. */
export function registerBootRoutes(app: FastifyInstance, ctx: HttpContext): void {
  const event = (req: FastifyRequest, step: string, status: number, outcome: string, labels: Labels, m?: BootMatch, extra: Record<string, unknown> = {}) => {
    const e: BootEvent = {
      time: new Date().toISOString(),
      kind: 'http',
      ...(labels['mac'] !== undefined ? { mac: labels['mac'] } : {}),
      ip: req.ip,
      step,
      outcome,
      detail: {
        path: req.url,
        status,
        ...(m ? { group: m.group.id, profile: m.profile.id } : {}),
        ...extra,
      },
    }
    ctx.events.record(e)
  }

  /**
   * Match or answer 404 (logged with the labels). A discovered machine's reported facts (manufacturer, product, ...)
   * are labels too, under what the request presents, so groups may select them. `hold`: with discovery on, a miss
   * gets the holding script instead of the 404.
   */
  const matchOr404 = (req: FastifyRequest, reply: FastifyReply, step: string, hold = false): { labels: Labels; match: BootMatch } | undefined => {
    const { labels: presented, dropped } = labelsFromQuery(req.query)
    const mac = presented['mac']
    const labels = mac !== undefined && ctx.factsOf ? { ...ctx.factsOf(mac), ...presented } : presented
    const state = ctx.store.get()
    const match = state.match(labels)
    if (match === undefined && hold && ctx.discovery && mac !== undefined) {
      const script = holdingScript({
        publicUrl: ctx.publicUrl,
        dashboardUrl: `${ctx.publicUrl}/ui/`,
        pollSeconds: ctx.discovery.pollSeconds,
        ...(ctx.syslogAddress !== undefined ? { syslogAddress: ctx.syslogAddress } : {}),
        // The poll presents what the machine presented, not the facts added here (those come from the record).
        labels: presented,
      })
      event(req, 'hold', 200, 'ok', labels, undefined, dropped.length > 0 ? { dropped } : {})
      void reply.type(TEXT).header('cache-control', 'no-store').send(script)
      return undefined
    }
    if (match === undefined) {
      const reason = `no group matches ${describeLabels(labels)} (${state.groupCount} groups, no default group)`
      ctx.logger.info({ labels, dropped, path: req.url, ip: req.ip }, 'no matching group')
      event(req, step, 404, 'no-match', labels, undefined, dropped.length > 0 ? { dropped } : {})
      void reply.code(404).type(TEXT).header('cache-control', 'no-store').send(`${reason}\n`)
      return undefined
    }
    ctx.remember(req.ip, labels['mac'], match)
    return { labels, match }
  }

  const fail = (req: FastifyRequest, reply: FastifyReply, step: string, status: number, reason: string, labels: Labels, m?: BootMatch) => {
    ctx.logger.info({ labels, path: req.url, ip: req.ip, group: m?.group.id, profile: m?.profile.id, reason }, 'boot request refused')
    event(req, step, status, reason, labels, m)
    return reply.code(status).type(TEXT).header('cache-control', 'no-store').send(`${reason}\n`)
  }

  const bootstrap = (req: FastifyRequest, reply: FastifyReply) => {
    const { labels } = labelsFromQuery(req.query)
    event(req, 'script', 200, 'ok', labels)
    return reply.type(TEXT).header('cache-control', 'no-store').send(ctx.bootstrap)
  }
  app.get('/boot.ipxe', bootstrap)
  // dnsmasq's pxe-service appends ".0" to the file name it is given.
  app.get('/boot.ipxe.0', bootstrap)

  app.get('/ipxe', (req, reply) => {
    const hit = matchOr404(req, reply, 'ipxe', true)
    if (!hit) return reply
    const { labels, match } = hit
    // boot_once: an installed machine boots its disk until an operator re-arms it (src/boot/local-boot.ts).
    const installedAt = match.profile.bootOnce && labels['mac'] !== undefined ? ctx.installedAt?.(labels['mac']) : undefined
    if (installedAt !== undefined) {
      event(req, 'local-boot', 200, 'ok', labels, match, { installed_at: installedAt })
      return reply.type(TEXT).header('cache-control', 'no-store').send(localBootScript(labels['mac']!, match.profile.id, installedAt))
    }
    if (!match.profile.boot) {
      return fail(req, reply, 'ipxe', 404, `profile "${match.profile.id}" (group "${match.group.id}") has no boot kernel`, labels, match)
    }
    ctx.logger.debug({ labels, group: match.group.id, profile: match.profile.id }, 'ipxe script')
    event(req, 'ipxe', 200, 'ok', labels, match)
    return reply.type(TEXT).header('cache-control', 'no-store').send(renderIpxeScript(match.profile.boot, ctx.publicUrl, ctx.syslogAddress))
  })

  /**
   * The holding script's inventory report (boot/discovery-script.ts INVENTORY_QUERY): parsed from the raw query
   * (boot/inventory.ts bounds and validates it) and recorded as an event carrying the facts, which the machine store
   * keeps in the record. Answers 200 with a one-line body (Content-Length set), never 204: Debian's iPXE (2019) reads
   * a response without Content-Length until the connection closes, so a 204 held the holding script in its
   * `imgfetch` for fastify's keep-alive time-out (72 s, seen in test/e2e/pxebox-discovery.test.ts), far beyond the
   * poll interval. No MAC: 400.
   */
  app.get('/discovery/report', (req, reply) => {
    const { facts, problems } = parseInventoryQuery(rawQuery(req))
    if (facts.mac === undefined) {
      ctx.logger.info({ ip: req.ip, problems }, 'inventory report without a MAC')
      return reply.code(400).type(TEXT).header('cache-control', 'no-store').send('the report names no valid mac\n')
    }
    if (problems.length > 0) ctx.logger.debug({ mac: facts.mac, ip: req.ip, problems }, 'inventory report: values left out')
    ctx.events.record({
      time: new Date().toISOString(),
      kind: 'http',
      mac: facts.mac,
      ip: req.ip,
      step: 'report',
      outcome: 'ok',
      detail: { path: '/discovery/report', status: 200, inventory: facts, ...(problems.length > 0 ? { problems } : {}) },
    })
    return reply.type(TEXT).header('cache-control', 'no-store').send(REPORT_RECEIVED)
  })

  /**
   * `bind_to_lease` profiles: only the address pxebox has seen this MAC use may fetch what is rendered from the
   * group's metadata (secrets live there and in the Ignition file). 403 with the reason otherwise.
   */
  const refusedByLease = (req: FastifyRequest, reply: FastifyReply, step: string, labels: Labels, match: BootMatch): boolean => {
    if (!match.profile.bindToLease) return false
    const refusal = leaseBindingRefusal(ctx.addressesOf, labels['mac'], req.ip)
    if (refusal === undefined) return false
    ctx.logger.warn({ labels, path: req.url, ip: req.ip, group: match.group.id, profile: match.profile.id, reason: refusal }, 'bound config refused')
    event(req, step, 403, 'not-bound-address', labels, match, { reason: refusal })
    void reply.code(403).type(TEXT).header('cache-control', 'no-store').send(`${refusal}\n`)
    return true
  }

  const templateRoute = (kind: 'ignition' | 'generic') => async (req: FastifyRequest, reply: FastifyReply) => {
    const hit = matchOr404(req, reply, kind)
    if (!hit) return reply
    const { labels, match } = hit
    const name = match.profile[kind]
    const state = ctx.store.get()
    const key = templateKey(kind, match.profile)
    const prepared = kind === 'ignition' ? state.ignition.get(key) : state.generic.get(key)
    // The state may have been swapped between match and lookup; a file missing from the new one is a 404 too.
    if (name === undefined || prepared === undefined) {
      return fail(req, reply, kind, 404, `profile "${match.profile.id}" (group "${match.group.id}") has no ${kind} config`, labels, match)
    }
    if (refusedByLease(req, reply, kind, labels, match)) return reply
    const rc = { group: match.group, labels, rawQuery: rawQuery(req), ...(req.headers.accept !== undefined ? { accept: req.headers.accept } : {}) }
    const answer: RenderAnswer =
      kind === 'ignition' ? await renderIgnitionFor(state.ignition.get(key)!, rc) : renderGenericFor(state.generic.get(key)!, name, rc)
    if (!answer.ok) {
      const reason = `cannot render ${kind} "${name}" for group "${match.group.id}": ${answer.reason}`
      const log = { labels, path: req.url, ip: req.ip, group: match.group.id, profile: match.profile.id, template: name, reason: answer.reason }
      if (answer.status === 500) ctx.logger.error(log, `${kind} render failed`)
      else ctx.logger.warn(log, `${kind} not served`)
      event(req, kind, answer.status, answer.outcome, labels, match, { template: name, error: answer.reason })
      return reply.code(answer.status).type(TEXT).header('cache-control', 'no-store').send(`${reason}\n`)
    }
    event(req, kind, 200, 'ok', labels, match, { template: name, ...(answer.version !== undefined ? { version: answer.version } : {}) })
    if (kind === 'ignition') void reply.header('vary', 'Accept')
    return reply.type(answer.contentType).header('cache-control', 'no-store').send(answer.body)
  }
  app.get('/ignition', templateRoute('ignition'))
  app.get('/generic', templateRoute('generic'))

  app.get('/metadata', (req, reply) => {
    const hit = matchOr404(req, reply, 'metadata')
    if (!hit) return reply
    const { labels, match } = hit
    if (refusedByLease(req, reply, 'metadata', labels, match)) return reply
    event(req, 'metadata', 200, 'ok', labels, match)
    const body = renderEnvFile(collectVariables(match.group, labels, rawQuery(req)))
    return reply.type(TEXT).header('cache-control', 'no-store').send(body)
  })
}
