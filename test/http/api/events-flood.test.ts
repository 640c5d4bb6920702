/**
 * Issue 13 item 2: `/v1/events` under abuse, on a real HTTP server with real sockets. Streams that never read must
 * not make pxebox buffer without bound: they are closed and counted once their queue passes the per-stream cap,
 * readers that keep up keep their stream, streams beyond the limit get a 503, and a boot request made during the
 * flood is still answered promptly (bound: 2 s, generous; before the fan-out every stream rendered every change).
 */
import t from 'tap'
import { connect, type Socket } from 'node:net'
import { operatorApp, bootEvents } from './fixture.js'
import type { BootEvent } from '../../../src/machines/events.js'

const QUEUE_CAP = 64 * 1024
const MAX_STREAMS = 40
const SILENT = 30
const BURST_MACHINES = 150

const mac = (i: number) => `52:54:00:13:${((i >> 8) & 0xff).toString(16).padStart(2, '0')}:${(i & 0xff).toString(16).padStart(2, '0')}`
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** Parse one Prometheus sample. */
function sample(text: string, name: string): number {
  const m = new RegExp(`^${name.replace(/[{}"]/g, (c) => `\\${c}`)} (\\d+)$`, 'm').exec(text)
  return m ? Number(m[1]) : NaN
}

t.test('SSE flood: silent streams are dropped and counted, queued bytes stay bounded, readers and boot requests go on', async (t) => {
  const o = await operatorApp(t, { maxEventStreams: MAX_STREAMS, maxEventQueuedBytes: QUEUE_CAP })
  await o.app.listen({ host: '127.0.0.1', port: 0 })
  const port = (o.app.server.address() as { port: number }).port
  const base = `http://127.0.0.1:${port}`

  // SILENT raw sockets that send the request and never read a byte.
  const silent: Socket[] = []
  t.teardown(() => silent.forEach((s) => s.destroy()))
  for (let i = 0; i < SILENT; i++) {
    const s = connect(port, '127.0.0.1')
    s.pause()
    s.on('error', () => {})
    s.write('GET /v1/events HTTP/1.1\r\nHost: pxebox\r\n\r\n')
    silent.push(s)
  }
  // One dashboard that reads everything.
  const ac = new AbortController()
  t.teardown(() => ac.abort())
  const reader = await fetch(`${base}/v1/events`, { signal: ac.signal })
  t.equal(reader.status, 200)
  let received = 0
  let readerEnded = false
  void (async () => {
    try {
      for await (const chunk of reader.body!) received += (chunk as Uint8Array).byteLength
    } catch {}
    readerEnded = true
  })()
  let open = 0
  for (let i = 0; i < 100 && open < SILENT + 1; i++) {
    await sleep(20)
    open = sample(await (await fetch(`${base}/metrics`)).text(), 'pxebox_event_streams')
  }
  t.equal(open, SILENT + 1, 'every stream attached')

  // Fill the limit, then one more is refused with a clear 503.
  const extra: AbortController[] = []
  t.teardown(() => extra.forEach((a) => a.abort()))
  for (let i = open; i < MAX_STREAMS; i++) {
    const a = new AbortController()
    extra.push(a)
    t.equal((await fetch(`${base}/v1/events`, { signal: a.signal })).status, 200)
  }
  const refused = await fetch(`${base}/v1/events`)
  t.equal(refused.status, 503)
  t.match(((await refused.json()) as { error: string }).error, /too many event streams: 40 are open \(api\.max_event_streams\)/)
  extra.forEach((a) => a.abort())

  // The flood: bursts of machine changes, each machine's timeline (and view) growing every round.
  let maxQueued = 0
  let slowDropped = 0
  let worstBootMs = 0
  const start = Date.now() - 3600_000
  for (let round = 0; round < 200 && slowDropped < SILENT; round++) {
    const events: BootEvent[] = []
    for (let i = 0; i < BURST_MACHINES; i++) {
      const e = bootEvents(mac(i), `10.213.13.${(i % 250) + 1}`, 1, start + round * 1000)[0]!
      events.push({ ...e, detail: { ...e.detail, round, padding: 'x'.repeat(64) } })
    }
    o.feed(events)
    const t0 = Date.now()
    const boot = await fetch(`${base}/boot.ipxe`)
    worstBootMs = Math.max(worstBootMs, Date.now() - t0)
    t.equal(boot.status, 200)
    await boot.text()
    await sleep(250)
    const m = await (await fetch(`${base}/metrics`)).text()
    maxQueued = Math.max(maxQueued, sample(m, 'pxebox_event_stream_queued_bytes'))
    slowDropped = sample(m, 'pxebox_event_streams_ended_total{reason="slow_reader"}')
  }
  t.equal(slowDropped, SILENT, 'every silent stream was closed as a slow reader, and counted')
  const m = await (await fetch(`${base}/metrics`)).text()
  t.equal(sample(m, 'pxebox_event_streams_ended_total{reason="refused"}'), 1, 'the refusal is counted')
  // Bound: each open stream holds at most the cap plus one batch (150 views, well under 1 MiB).
  t.ok(maxQueued <= (SILENT + 1) * (QUEUE_CAP + 1024 * 1024), `queued bytes stayed bounded (max ${maxQueued})`)
  t.ok(worstBootMs < 2000, `/boot.ipxe answered within 2 s during the flood (worst ${worstBootMs} ms)`)
  t.notOk(readerEnded, 'the reading dashboard keeps its stream')
  t.ok(received > 100_000, `the reading dashboard got the changes (${received} bytes)`)
  t.equal(sample(m, 'pxebox_event_streams'), 1, 'only the reader is left')
})
