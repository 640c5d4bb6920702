/**
 * `GET /v1/events`: server-sent events for the dashboard. Each machine change sends `event: machine` with the
 * machine's view (or `event: forget` with its MAC), coalesced per machine to at most one per `COALESCE_MS` so a
 * 40 MB kernel download or a rack power-on does not flood a laptop on a datacenter aisle's Wi-Fi. A comment line
 * every 15 s keeps proxies and NAT from closing an idle stream.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { Type } from '@sinclair/typebox'
import type { ApiDeps } from './plugin.js'
import { viewOf } from './views.js'

const COALESCE_MS = 200
const KEEPALIVE_MS = 15_000

/** Register the event stream on the `/v1` plugin instance. */
export function registerEventStream(api: FastifyInstance, deps: ApiDeps, now: () => number): void {
  const open = new Set<() => void>()
  // The server waits for open responses on close; end the streams first so SIGTERM stops within its promise.
  api.addHook('preClose', async () => {
    for (const end of [...open]) end()
  })

  api.get(
    '/events',
    {
      schema: {
        summary: 'Server-sent events: `machine` (a machine view as JSON) and `forget` (a MAC)',
        tags: ['machines'],
        produces: ['text/event-stream'],
        response: { 200: Type.String({ description: 'text/event-stream' }) },
      },
    },
    (req: FastifyRequest, reply: FastifyReply) => {
      reply.hijack()
      const res = reply.raw
      res.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-store',
        connection: 'keep-alive',
        'x-accel-buffering': 'no',
      })
      res.write('retry: 3000\n\n')
      const due = new Set<string>()
      let flushTimer: NodeJS.Timeout | undefined
      const flush = () => {
        flushTimer = undefined
        const state = deps.store.get()
        const t = now()
        for (const mac of due) {
          const r = deps.machines.get(mac)
          if (r) res.write(`event: machine\ndata: ${JSON.stringify(viewOf(r, state, t, deps.stuckAfterMs))}\n\n`)
          else res.write(`event: forget\ndata: ${JSON.stringify(mac)}\n\n`)
        }
        due.clear()
      }
      const unsubscribe = deps.machines.subscribe((mac) => {
        due.add(mac)
        flushTimer ??= setTimeout(flush, COALESCE_MS)
      })
      const keepalive = setInterval(() => res.write(': keepalive\n\n'), KEEPALIVE_MS)
      const end = () => {
        if (!open.delete(end)) return
        unsubscribe()
        clearInterval(keepalive)
        if (flushTimer) clearTimeout(flushTimer)
        res.end()
      }
      open.add(end)
      req.raw.on('close', end)
      res.on('error', end)
    },
  )
}
