// writeChunk (src/http/static-files.ts), the write under both asset body paths (sendfile.ts, copyRange), against a
// real HTTP server and client over 127.0.0.1.
import t from 'tap'
import { once } from 'node:events'
import { createServer, type ServerResponse } from 'node:http'
import { connect, type AddressInfo } from 'node:net'
import { writeChunk } from '../../src/http/static-files.js'

/** Settles `p` into a word within `ms`, or 'pending': a write that never settles must fail the test, not hang it. */
function outcome(p: Promise<void>, ms: number): Promise<'resolved' | 'rejected' | 'pending'> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<'pending'>((resolve) => (timer = setTimeout(() => resolve('pending'), ms)))
  return Promise.race([p.then(() => 'resolved' as const, () => 'rejected' as const), late]).finally(() => clearTimeout(timer))
}

t.test('a write after the socket is destroyed, before the response hears of it, settles (rejects)', async (t) => {
  // The interleaving that hung 'a client that vanishes mid-body' under the ASan build: Node has destroyed the socket
  // (it read the client's reset), but the response's 'close' comes one loop turn later, so res.destroyed is still
  // false, the body loop's check passes, and OutgoingMessage._writeRaw drops the write and its callback without a
  // word (nodejs/node#36673, Node 20). The request then hung, holding its file handle and dup()ed descriptor.
  const settled: Promise<'resolved' | 'rejected' | 'pending'>[] = []
  const server = createServer((req, res: ServerResponse) => {
    res.writeHead(200, { 'content-length': '1000000' })
    void writeChunk(res, Buffer.alloc(1000)).then(() => {
      req.socket.destroy()
      t.equal(res.destroyed, false, 'the response has not heard of it yet (the window this test is about)')
      settled.push(outcome(writeChunk(res, Buffer.alloc(1000)), 5000))
    })
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => server.close())
  const client = connect((server.address() as AddressInfo).port, '127.0.0.1')
  client.on('error', () => undefined).resume()
  client.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n')
  await once(client, 'close')
  while (settled.length === 0) await new Promise((r) => setTimeout(r, 10))
  t.equal(await settled[0], 'rejected', 'the write rejects (within 5 s), so the caller ends the body and frees what it holds')
})

t.test('a write on a live response resolves once the socket has taken it', async (t) => {
  const server = createServer((_req, res) => {
    res.writeHead(200, { 'content-length': '5' })
    void writeChunk(res, Buffer.from('hello')).then(
      () => res.end(),
      (err: unknown) => t.fail(`write failed: ${String(err)}`),
    )
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => server.close())
  const res = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`)
  t.equal(await res.text(), 'hello')
})
