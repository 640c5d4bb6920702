/**
 * The syslog receiver over real loopback sockets: util-linux `logger -n` lines arrive parsed with their source
 * address, and every kind of bad datagram is dropped and counted by reason while the receiver keeps going.
 */
import t, { type Test } from 'tap'
import { execFile } from 'node:child_process'
import { createSocket, type Socket } from 'node:dgram'
import { promisify } from 'node:util'
import { startSyslogServer, type SyslogServer, type SyslogServerOptions } from '../../src/syslog/server.js'
import type { SyslogMessage } from '../../src/syslog/message.js'

const run = promisify(execFile)

interface Received {
  message: SyslogMessage
  source: string
}

async function receiver(t: Test, opts: Partial<SyslogServerOptions> = {}, handler?: (m: SyslogMessage, s: string) => void) {
  const got: Received[] = []
  const server = await startSyslogServer({ address: '127.0.0.1', port: 0, ...opts }, handler ?? ((message, source) => got.push({ message, source })))
  t.teardown(() => server.close())
  return { server, got }
}

async function sender(t: Test, address = '127.0.0.1'): Promise<Socket> {
  const s = createSocket(address.includes(':') ? 'udp6' : 'udp4')
  await new Promise<void>((resolve) => s.bind(0, address, resolve))
  t.teardown(() => s.close())
  return s
}

async function sendAll(s: Socket, lines: Array<string | Buffer>, server: SyslogServer, host = '127.0.0.1'): Promise<void> {
  for (const l of lines) await new Promise<void>((resolve, reject) => s.send(l, server.address.port, host, (err) => (err ? reject(err) : resolve())))
}

/** Waits until the receiver has seen `n` datagrams in all (loopback does not lose them at this rate). */
async function until(server: SyslogServer, n: number): Promise<void> {
  const deadline = Date.now() + 5000
  while (server.counters.received < n) {
    if (Date.now() > deadline) throw new Error(`receiver saw ${server.counters.received} datagrams, expected ${n}`)
    await new Promise((r) => setTimeout(r, 10))
  }
}

t.test(`util-linux logger -n -d lines arrive parsed (${'logger'})`, async (t) => {
  const version = (await run('logger', ['--version'])).stdout.trim()
  t.comment(version)
  const { server, got } = await receiver(t)
  const port = String(server.address.port)
  const base = ['-n', '127.0.0.1', '-P', port, '-d', '-t', 'pxebox-test']
  await run('logger', [...base, '-p', 'local0.warning', 'default format'])
  await run('logger', [...base, '--rfc5424', '-p', 'daemon.err', '--msgid', 'M1', 'rfc5424 line'])
  await run('logger', [...base, '--rfc3164', '-i', 'rfc3164 line'])
  await until(server, 3)
  t.equal(got.length, 3)
  const [a, b, c] = got.map((g) => g.message)
  t.match(a, { format: 'rfc5424', facility: 16, severity: 4, app: 'pxebox-test', message: 'default format' }, 'util-linux 2.38 defaults to RFC 5424')
  t.match(b, { format: 'rfc5424', facility: 3, severity: 3, app: 'pxebox-test', msgId: 'M1', message: 'rfc5424 line' })
  t.match(c, { format: 'rfc3164', facility: 1, severity: 5, app: 'pxebox-test', procId: /^\d+$/, message: 'rfc3164 line' })
  t.match(a?.timestamp, /^\d{4}-\d\d-\d\dT/)
  t.ok(got.every((g) => g.source === '127.0.0.1'), 'the source address is handed on')
  t.equal(server.kernelDrops(), 0, 'nothing dropped by the kernel')
  t.strictSame(server.counters, {
    received: 3,
    accepted: 3,
    dropped: { rate_source: 0, rate_global: 0, oversized: 0, malformed: 0, handler_error: 0 },
  })
})

t.test('malformed and oversized datagrams are counted and dropped; the next good line still arrives', async (t) => {
  const { server, got } = await receiver(t, { maxLineBytes: 512 })
  const s = await sender(t)
  await sendAll(s, ['<999>bad pri', '<13>1 - host', Buffer.alloc(0), Buffer.alloc(513, 0x41), Buffer.alloc(4000, 0x41), '<13>1 - host app - - - fine'], server)
  await until(server, 6)
  t.equal(got.length, 1)
  t.equal(got[0]?.message.message, 'fine')
  t.strictSame(server.counters.dropped, { rate_source: 0, rate_global: 0, oversized: 2, malformed: 3, handler_error: 0 })
  t.equal(server.counters.accepted, 1)
})

t.test('a throwing handler is counted, and the receiver keeps serving', async (t) => {
  let calls = 0
  const { server } = await receiver(t, {}, (m) => {
    calls++
    if (m.message === 'boom') throw new Error('handler bug')
  })
  const s = await sender(t)
  await sendAll(s, ['<13>boom', '<13>after'], server)
  await until(server, 2)
  t.equal(calls, 2)
  t.equal(server.counters.dropped.handler_error, 1)
  t.equal(server.counters.accepted, 1)
})

t.test('per-source bucket: a burst then nothing until time refills it; other sources unaffected', async (t) => {
  let now = 0
  const { server, got } = await receiver(t, { perSource: { ratePerSecond: 10, burst: 5 }, now: () => now })
  const loud = await sender(t, '127.0.0.2')
  const quiet = await sender(t, '127.0.0.3')
  await sendAll(loud, Array.from({ length: 8 }, (_, i) => `<13>loud ${i}`), server)
  await until(server, 8)
  t.equal(got.length, 5, 'the burst passes')
  t.equal(server.counters.dropped.rate_source, 3)
  await sendAll(quiet, ['<13>quiet'], server)
  await until(server, 9)
  t.equal(got.at(-1)?.source, '127.0.0.3', 'another source has its own bucket')
  now += 200 // 10/s for 0.2 s: two tokens back
  await sendAll(loud, ['<13>a', '<13>b', '<13>c'], server)
  await until(server, 12)
  t.strictSame(got.slice(-2).map((g) => g.message.message), ['a', 'b'])
  t.equal(server.counters.dropped.rate_source, 4)
  t.equal(server.trackedSources, 2)
})

t.test('global bucket caps all sources together', async (t) => {
  const { server, got } = await receiver(t, { global: { ratePerSecond: 1, burst: 4 }, now: () => 0 })
  for (let i = 0; i < 3; i++) {
    const s = await sender(t, `127.0.0.${10 + i}`)
    await sendAll(s, ['<13>x', '<13>y'], server)
  }
  await until(server, 6)
  t.equal(got.length, 4)
  t.equal(server.counters.dropped.rate_global, 2)
})

t.test('source bookkeeping is bounded by maxSources', async (t) => {
  const { server } = await receiver(t, { maxSources: 3 })
  for (let i = 0; i < 6; i++) await sendAll(await sender(t, `127.0.0.${20 + i}`), ['<13>x'], server)
  await until(server, 6)
  t.equal(server.trackedSources, 3)
  t.equal(server.counters.accepted, 6)
})

t.test('an IPv6 dual-stack socket reports IPv4 senders as plain IPv4', async (t) => {
  const { server, got } = await receiver(t, { address: '::' })
  const s = await sender(t)
  await sendAll(s, ['<13>v4 over v6'], server, '127.0.0.1')
  await until(server, 1)
  t.equal(got[0]?.source, '127.0.0.1')
})

t.test('close() resolves closed with undefined; a second close is harmless', async (t) => {
  const server = await startSyslogServer({ address: '127.0.0.1', port: 0 }, () => {})
  await server.close()
  await server.close()
  t.equal(await server.closed, undefined)
})

t.test('binding a taken port rejects with the OS error', async (t) => {
  const { server } = await receiver(t)
  await t.rejects(startSyslogServer({ address: '127.0.0.1', port: server.address.port }, () => {}), { code: 'EADDRINUSE' })
})
