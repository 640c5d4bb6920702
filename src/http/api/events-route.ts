/**
 * `GET /v1/events`: server-sent events for the dashboard. Each machine change sends `event: machine` with the
 * machine's view (or `event: forget` with its MAC), coalesced per machine to at most one per `COALESCE_MS` so a
 * 40 MB kernel download or a rack power-on does not flood a laptop on a datacenter aisle's Wi-Fi; a burst of more
 * than `MAX_BATCH_MACHINES` machines is one `event: resync` (reload `/v1/machines`). The streams share one fan-out
 * (event-fanout.ts): each change is rendered once, streams are capped in number (`api.max_event_streams`, then 503)
 * and in queued bytes (`MAX_QUEUED_BYTES`, then the slow reader is closed and counted). A comment line every 15 s
 * keeps proxies and NAT from closing an idle stream.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { Type } from '@sinclair/typebox'
import type { ApiDeps } from './deps.js'
import { viewOf } from './views.js'
import { createEventFanout, type EventFanout } from './event-fanout.js'
import { responses } from './schemas.js'

const COALESCE_MS = 200
const KEEPALIVE_MS = 15_000
/** Streams open at once unless `api.max_event_streams` says otherwise. */
export const DEFAULT_MAX_EVENT_STREAMS = 64
/** Per stream: a few hundred machine views. A reader this far behind reloads the list faster than it would catch up. */
export const MAX_QUEUED_BYTES = 256 * 1024
/** Above this many machines in one window, a resync is cheaper for everyone than their views. */
export const MAX_BATCH_MACHINES = 200

/** Register the event stream on the `/v1` plugin instance; returns the fan-out (for stats). */
export function registerEventStream(api: FastifyInstance, deps: ApiDeps, now: () => number): EventFanout {
  const maxStreams = deps.maxEventStreams ?? DEFAULT_MAX_EVENT_STREAMS
  const fanout = createEventFanout({
    subscribe: (listener) => deps.machines.subscribe(listener),
    render: (mac) => {
      const r = deps.machines.get(mac)
      return r
        ? `event: machine\ndata: ${JSON.stringify(viewOf(r, deps.store.get(), now(), deps.stuckAfterMs))}\n\n`
        : `event: forget\ndata: ${JSON.stringify(mac)}\n\n`
    },
    maxStreams,
    maxQueuedBytes: deps.maxEventQueuedBytes ?? MAX_QUEUED_BYTES,
    maxBatchMachines: MAX_BATCH_MACHINES,
    coalesceMs: COALESCE_MS,
    keepaliveMs: KEEPALIVE_MS,
    logger: api.log,
  })
  // The server waits for open responses on close; end the streams first so SIGTERM stops within its promise.
  api.addHook('preClose', async () => fanout.close())

  api.get(
    '/events',
    {
      schema: {
        summary: 'Server-sent events: `machine` (a machine view as JSON), `forget` (a MAC), `resync` (reload /v1/machines)',
        description: `At most api.max_event_streams streams (503 beyond); a stream more than ${MAX_QUEUED_BYTES} bytes behind is closed (reconnect and reload).`,
        tags: ['machines'],
        produces: ['text/event-stream'],
        response: responses({ 200: Type.String({ description: 'text/event-stream' }) }, [401, 503]),
      },
    },
    (_req: FastifyRequest, reply: FastifyReply) => {
      // Attaching writes nothing (batches leave on a timer), so the headers below still go first.
      if (!fanout.attach(reply.raw)) {
        return reply
          .code(503)
          .header('retry-after', '10')
          .send({ error: `too many event streams: ${maxStreams} are open (api.max_event_streams); close a dashboard or raise the limit` })
      }
      reply.hijack()
      reply.raw.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-store',
        connection: 'keep-alive',
        'x-accel-buffering': 'no',
      })
      reply.raw.write('retry: 3000\n\n')
    },
  )
  return fanout
}
