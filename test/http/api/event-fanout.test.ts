/**
 * The `/v1/events` fan-out's broadcast (issue 13: the valid client's DHCP offer p99 under bench/abuse's 350 SSE
 * streams). A batch is encoded to bytes once and the same Buffer is written to every stream: written as a string it
 * was encoded again per stream. The streams are written a few per event-loop turn, so a broadcast to hundreds of
 * streams never holds the loop in one turn, and two broadcasts in flight reach every stream in order. Real HTTP
 * responses on a real server, read by real sockets.
 */
import t from 'tap'
import http, { type ServerResponse } from 'node:http'
import { connect, type Socket } from 'node:net'
import { createEventFanout } from '../../../src/http/api/event-fanout.js'

const STREAMS = 100
const PER_TURN = 8
const frame = (mac: string): string => `event: machine\ndata: {"mac":"${mac}","name":"büro-${mac}"}\n\n`

t.test('a batch is encoded once, written a few streams per loop turn, and every stream gets the batches in order', async (t) => {
  const listeners = new Set<(mac: string) => void>()
  const fanout = createEventFanout({
    subscribe: (l) => {
      listeners.add(l)
      return () => listeners.delete(l)
    },
    render: frame,
    maxStreams: STREAMS,
    maxQueuedBytes: 1 << 20,
    maxBatchMachines: 200,
    coalesceMs: 0,
    keepaliveMs: 3_600_000,
    streamsPerTurn: PER_TURN,
    logger: { info: () => undefined },
  })
  // Every write any response is given, with the loop turn it was made in.
  let turn = 0
  let spinning = true
  const spin = (): void => {
    turn++
    if (spinning) setImmediate(spin)
  }
  setImmediate(spin)
  const writes: { res: ServerResponse; chunk: unknown; turn: number }[] = []
  const server = http.createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' })
    const write = res.write.bind(res) as (chunk: unknown) => boolean
    res.write = ((chunk: unknown) => {
      writes.push({ res, chunk, turn })
      return write(chunk)
    }) as typeof res.write
    fanout.attach(res)
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  const sockets: Socket[] = []
  t.teardown(async () => {
    spinning = false
    fanout.close()
    for (const s of sockets) s.destroy()
    await new Promise((r) => server.close(r))
  })
  const port = (server.address() as { port: number }).port
  const received: string[] = []
  for (let i = 0; i < STREAMS; i++) {
    const s = connect(port, '127.0.0.1')
    received.push('')
    s.setEncoding('utf8')
    s.on('data', (d: string) => (received[i] += d))
    s.write('GET /v1/events HTTP/1.1\r\nHost: pxebox\r\n\r\n')
    sockets.push(s)
  }
  for (let i = 0; i < 500 && fanout.stats().streams < STREAMS; i++) await new Promise((r) => setTimeout(r, 10))
  t.equal(fanout.stats().streams, STREAMS, 'every stream attached')

  // The first batch; the second change comes in once the first broadcast has begun, so both are in flight together.
  for (const l of listeners) l('52:54:00:00:00:01')
  while (writes.length === 0) await new Promise((r) => setImmediate(r))
  for (const l of listeners) l('52:54:00:00:00:02')
  const expected = frame('52:54:00:00:00:01') + frame('52:54:00:00:00:02')
  const bodyOf = (text: string): string => text.slice(text.indexOf('\r\n\r\n') + 4).replace(/^[0-9a-f]+\r\n|\r\n[0-9a-f]+\r\n|\r\n$/g, '')
  for (let i = 0; i < 500 && !received.every((r) => bodyOf(r) === expected); i++) await new Promise((r) => setTimeout(r, 10))

  const first = writes.filter((w) => typeof w.chunk !== 'string' && Buffer.from(w.chunk as Buffer).toString('utf8') === frame('52:54:00:00:00:01'))
  t.equal(first.length, STREAMS, 'the first batch was written to every stream as bytes, not as a string to encode per stream')
  t.equal(new Set(first.map((w) => w.chunk)).size, 1, 'one Buffer, shared by every stream')
  const turns = new Set(first.map((w) => w.turn)).size
  t.ok(turns >= STREAMS / PER_TURN, `the first broadcast was spread over ${turns} loop turns (${PER_TURN} streams per turn)`)
  t.ok(
    received.every((r) => bodyOf(r) === expected),
    'every stream received both batches, byte for byte and in order',
  )
})
