// The batched UDP socket of the DHCP server (native/udp-batch.c through src/host/batch-udp.ts): a burst comes in as
// full batches of 32 with one JS call each, an oversized datagram is reported and not handed on, replies queued in a
// batch leave together and one refused datagram (EACCES, EAGAIN) is counted without holding back the others.
import t, { type Test } from 'tap'
import { createSocket, type Socket } from 'node:dgram'
import { loadNative } from '../../src/host/native.js'
import { openBatchUdp, type BatchUdpHandlers } from '../../src/host/batch-udp.js'

const addon = loadNative().addon
const skip = addon?.batchOpen === undefined ? 'needs the native addon (npm run build)' : false
const turn = () => new Promise((r) => setImmediate(r))

/** A loopback dgram peer collecting what it receives. */
async function peer(t: Test): Promise<{ socket: Socket; port: number; got: Buffer[]; until: (n: number, ms?: number) => Promise<void> }> {
  const socket = createSocket('udp4')
  const got: Buffer[] = []
  socket.on('message', (m) => got.push(m))
  await new Promise<void>((r) => socket.bind(0, '127.0.0.1', r))
  t.teardown(() => socket.close())
  const until = async (n: number, ms = 3000): Promise<void> => {
    const end = Date.now() + ms
    while (got.length < n && Date.now() < end) await new Promise((r) => setTimeout(r, 5))
  }
  return { socket, port: socket.address().port, got, until }
}

/** Sends `bufs` back to back from `s` and resolves once all left (they then sit in the receiver's queue). */
const sendAll = (s: Socket, bufs: Buffer[], port: number) =>
  Promise.all(bufs.map((b) => new Promise<void>((resolve, reject) => s.send(b, port, '127.0.0.1', (e) => (e ? reject(e) : resolve())))))

const handlers = (over: Partial<BatchUdpHandlers>): BatchUdpHandlers => ({
  datagram: () => {},
  oversized: () => {},
  sendFailed: () => {},
  error: (err) => {
    throw err
  },
  ...over,
})

t.test('addon: a burst of 40 datagrams arrives as a full batch of 32 and one of 8, each one JS call; lengths and sources are right', { skip }, async (t) => {
  const a = addon!
  const batches: number[] = []
  const seen: string[] = []
  let meta: Int32Array | undefined
  let recv: Uint8Array | undefined
  const [handle, port, fd, recvArray, recvMeta] = a.batchOpen!('127.0.0.1', 0, false, (count) => {
    batches.push(count)
    for (let i = 0; i < count; i++) {
      const length = meta![i * 3] as number
      seen.push(`${Buffer.from(recv!.buffer, recv!.byteOffset + i * 2048, length).toString()}:${(meta![i * 3 + 1] as number) >>> 0}:${meta![i * 3 + 2]}`)
    }
  })
  meta = recvMeta
  recv = recvArray
  t.teardown(() => a.batchClose!(handle))
  t.ok(port > 0 && fd > 2, 'bound to an ephemeral port with its own descriptor')
  const p = await peer(t)
  // Stop the loop from reading between sends: the 40 datagrams are all queued before the socket's first wake-up.
  await sendAll(p.socket, Array.from({ length: 40 }, (_, i) => Buffer.from(`d${i}`)), port)
  for (let i = 0; i < 50 && seen.length < 40; i++) await turn()
  t.same(batches, [32, 8], 'one call per recvmmsg: a full batch, then the rest')
  t.same(seen, Array.from({ length: 40 }, (_, i) => `d${i}:${0x7f000001}:${p.port}`), 'every datagram, in order, with its source')
})

t.test('addon: a datagram larger than the 2,048-byte slot is reported with length -1 (cut, not handed on)', { skip }, async (t) => {
  const a = addon!
  const lengths: number[] = []
  let meta: Int32Array | undefined
  const [handle, port, , , recvMeta] = a.batchOpen!('127.0.0.1', 0, false, (count) => {
    for (let i = 0; i < count; i++) lengths.push(meta![i * 3] as number)
  })
  meta = recvMeta
  t.teardown(() => a.batchClose!(handle))
  const p = await peer(t)
  await sendAll(p.socket, [Buffer.alloc(2048, 1), Buffer.alloc(2049, 2), Buffer.alloc(9000, 3), Buffer.alloc(0)], port)
  for (let i = 0; i < 50 && lengths.length < 4; i++) await turn()
  t.same(lengths, [2048, -1, -1, 0])
})

t.test('addon: bad arguments throw TypeError/RangeError, never crash', { skip }, async (t) => {
  const a = addon!
  t.throws(() => a.batchOpen!('not-an-ip', 0, false, () => {}), TypeError)
  t.throws(() => a.batchOpen!('127.0.0.1', 70000, false, () => {}), TypeError)
  t.throws(() => a.batchOpen!('127.0.0.1', 0, false, 'x' as unknown as () => void), TypeError)
  t.throws(() => a.batchSend!({} as never, 1), TypeError)
  const [handle] = a.batchOpen!('127.0.0.1', 0, false, () => {})
  t.throws(() => a.batchSend!(handle, 33), RangeError, 'more than a batch')
  a.batchClose!(handle)
  a.batchClose!(handle)
  t.equal(a.batchSend!(handle, 0), 0, 'nothing to send after close is nothing dropped')
})

t.test('socket: replies queued in a batch leave together; a refused one (broadcast without SO_BROADCAST: EACCES) is counted, the others still go', { skip }, async (t) => {
  const p = await peer(t)
  const failed: string[] = []
  const got: string[] = []
  const socket = await openBatchUdp(
    addon,
    { address: '127.0.0.1', port: 0, broadcast: false },
    handlers({
      datagram: (msg, address, port) => {
        got.push(`${msg.toString()} from ${address}:${port}`)
        // Three replies per request: to the peer, to broadcast (refused: no SO_BROADCAST), to the peer again.
        socket.send(Buffer.from(`${msg.toString()}-a`), address, port)
        socket.send(Buffer.from(`${msg.toString()}-b`), '255.255.255.255', port)
        socket.send(Buffer.from(`${msg.toString()}-c`), address, port)
        socket.send(Buffer.from('x'), 'not-an-address', port)
      },
      sendFailed: (code, address) => failed.push(`${code} ${address}`),
    }),
  )
  t.teardown(() => socket.close())
  t.equal(socket.batched, true)
  await sendAll(p.socket, [Buffer.from('q1'), Buffer.from('q2')], socket.port)
  await p.until(4)
  t.same(got.sort(), [`q1 from 127.0.0.1:${p.port}`, `q2 from 127.0.0.1:${p.port}`])
  t.same(p.got.map(String).sort(), ['q1-a', 'q1-c', 'q2-a', 'q2-c'], 'the replies around the refused one were sent')
  t.same(failed.sort(), ['EACCES 255.255.255.255', 'EACCES 255.255.255.255', 'EINVAL not-an-address', 'EINVAL not-an-address'])
})

t.test('socket: more replies than a batch, and replies sent outside a batch, all leave', { skip }, async (t) => {
  const p = await peer(t)
  const socket = await openBatchUdp(addon, { address: '127.0.0.1', port: 0, broadcast: false }, handlers({}))
  t.teardown(() => socket.close())
  for (let i = 0; i < 70; i++) socket.send(Buffer.alloc(1000, i), '127.0.0.1', p.port) // 70 KB: also over the 64 KiB slab
  await p.until(70)
  t.equal(p.got.length, 70)
  t.same(p.got.map((b) => b[0]), Array.from({ length: 70 }, (_, i) => i), 'in order, each whole')
})

t.test('socket: EAGAIN on send (fault-injection build) drops and counts every datagram, no throw', { skip: addon?.failpoints === true ? skip : 'needs the fault-injection build (scripts/test-native-asan.sh)' }, async (t) => {
  const p = await peer(t)
  const failed: string[] = []
  const socket = await openBatchUdp(addon, { address: '127.0.0.1', port: 0, broadcast: false }, handlers({ sendFailed: (code) => failed.push(code) }))
  t.teardown(() => socket.close())
  process.env.PXEBOX_NATIVE_FAILPOINT = 'batchSend:eagain'
  try {
    for (let i = 0; i < 3; i++) socket.send(Buffer.from('r'), '127.0.0.1', p.port)
    await turn()
  } finally {
    delete process.env.PXEBOX_NATIVE_FAILPOINT
  }
  t.same(failed, ['EAGAIN', 'EAGAIN', 'EAGAIN'])
  socket.send(Buffer.from('after'), '127.0.0.1', p.port)
  await p.until(1)
  t.same(p.got.map(String), ['after'], 'the socket still sends once the queue drains')
})

t.test('without the addon the same interface runs on node:dgram', async (t) => {
  const p = await peer(t)
  const failed: string[] = []
  const socket = await openBatchUdp(
    undefined,
    { address: '127.0.0.1', port: 0, broadcast: false },
    handlers({
      datagram: (msg, address, port) => socket.send(Buffer.from(`re:${msg.toString()}`), address, port),
      sendFailed: (code) => failed.push(code),
    }),
  )
  t.teardown(() => socket.close())
  t.equal(socket.batched, false)
  await sendAll(p.socket, [Buffer.from('x')], socket.port)
  await p.until(1)
  t.same(p.got.map(String), ['re:x'])
  socket.send(Buffer.from('y'), '127.0.0.1', 0)
  for (let i = 0; i < 20 && failed.length === 0; i++) await new Promise((r) => setTimeout(r, 5))
  t.same(failed, ['EINVAL'], 'a port-0 destination is a counted send failure, not a throw')
})
