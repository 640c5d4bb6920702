// Both transfer socket implementations (native/udp.c and node:dgram) against plain dgram peers, IPv4 and IPv6: the
// peer's datagrams, a stranger's, sends with a length, close semantics, no descriptor left behind.
import t from 'tap'
import { createSocket, type Socket } from 'node:dgram'
import { once } from 'node:events'
import { readdirSync } from 'node:fs'
import { constants } from 'node:os'
import { openTransferSocket, type Sender } from '../../src/tftp/transfer-socket.js'
import { loadNative } from '../../src/host/native.js'

const openFds = () => readdirSync('/proc/self/fd').length

async function peerSocket(type: 'udp4' | 'udp6', address: string): Promise<Socket> {
  const s = createSocket(type)
  s.bind(0, address)
  await once(s, 'listening')
  return s
}

t.test('the native addon is built (npm run build builds it)', async (t) => {
  t.equal(loadNative().reason, undefined)
})

for (const impl of ['native', 'dgram'] as const) {
  for (const [type, address] of [['udp4', '127.0.0.1'], ['udp6', '::1']] as const) {
    t.test(`${impl} socket over ${type}`, async (t) => {
      const before = openFds()
      const peer = await peerSocket(type, address)
      const stranger = await peerSocket(type, address)
      const me: Sender = { address, port: peer.address().port }
      const sock = await openTransferSocket(type, address, me, impl === 'native' ? loadNative().addon : undefined)
      const got: { data: string; stranger?: Sender }[] = []
      let arrived: () => void = () => undefined
      sock.onPacket((packet, length, from) => {
        got.push({ data: packet.toString('latin1', 0, length), ...(from ? { stranger: from } : {}) })
        arrived()
      })
      const errors: Error[] = []
      sock.onError((err) => errors.push(err))
      const next = () => new Promise<void>((r) => (arrived = r))

      let wait = next()
      peer.send('ACK from the peer', sock.port, address)
      await wait
      t.same(got.at(-1), { data: 'ACK from the peer' }, "the peer's datagram, unmarked")
      wait = next()
      stranger.send('hello', sock.port, address)
      await wait
      t.same(got.at(-1), { data: 'hello', stranger: { address, port: stranger.address().port } }, "a stranger's, with its address")

      const reply = once(peer, 'message')
      sock.send(Buffer.from('DATA block and some slack'), 10)
      t.equal(((await reply)[0] as Buffer).toString(), 'DATA block', 'send honours the length')
      const error5 = once(stranger, 'message')
      sock.sendTo(Buffer.from('ERROR 5'), 7, { address, port: stranger.address().port })
      t.equal(((await error5)[0] as Buffer).toString(), 'ERROR 5')

      sock.close()
      sock.close()
      sock.send(Buffer.from('late'), 4) // after close: nothing sent, nothing thrown
      const count = got.length
      peer.send('after close', sock.port, address)
      await new Promise((r) => setTimeout(r, 100))
      t.equal(got.length, count, 'no packet handler runs after close')
      t.same(errors, [])
      peer.close()
      stranger.close()
      await new Promise((r) => setTimeout(r, 50)) // the native close completes on the next loop turn
      t.equal(openFds(), before, 'every descriptor closed')
    })
  }
}

t.test('native: a staged packet leaves on exactly its ACK, once', async (t) => {
  const peer = await peerSocket('udp4', '127.0.0.1')
  const sock = await openTransferSocket('udp4', '127.0.0.1', { address: '127.0.0.1', port: peer.address().port }, loadNative().addon)
  t.teardown(() => (sock.close(), peer.close()))
  const seen: { block: number; released: boolean }[] = []
  let arrived: () => void = () => undefined
  sock.onPacket((packet, length, _stranger, released) => {
    seen.push({ block: length >= 4 ? packet.readUInt16BE(2) : -1, released: released === true })
    arrived()
  })
  const ack = (block: number) => {
    const wait = new Promise<void>((r) => (arrived = r))
    peer.send(Buffer.from([0, 4, block >> 8, block & 255]), sock.port, '127.0.0.1')
    return wait
  }
  const received: string[] = []
  peer.on('message', (m: Buffer) => received.push(m.toString('latin1')))
  sock.stage!(Buffer.from('DATA 8 and slack'), 6, 7)
  await ack(6) // not the one it waits for
  await ack(7)
  await ack(7) // a duplicate: the stage was used up
  await new Promise((r) => setTimeout(r, 50))
  t.same(seen, [
    { block: 6, released: false },
    { block: 7, released: true },
    { block: 7, released: false },
  ])
  t.same(received, ['DATA 8'], 'sent once, with the staged length')
  sock.stage!(Buffer.from('DATA 9'), 6, 8)
  sock.stage!() // cleared
  await ack(8)
  await new Promise((r) => setTimeout(r, 50))
  t.same(received, ['DATA 8'], 'a cleared stage sends nothing')
})

t.test('native: bad arguments are JS errors, not crashes', async (t) => {
  const addon = loadNative().addon!
  t.throws(() => addon.udpOpen(false, 'not an address', () => undefined), /not an IP address/)
  t.throws(() => addon.udpOpen(false, '::1', () => undefined), /not an IP address of that family/)
  t.throws(() => addon.udpSend({} as never, Buffer.alloc(1), 1), /UDP handle/)
  const [handle] = addon.udpOpen(false, '127.0.0.1', () => undefined)
  t.throws(() => addon.udpSend(handle, Buffer.alloc(1), 1), /before udpSetPeer/)
  t.throws(() => addon.udpSetPeer(handle, '127.0.0.1', 70000), /port/)
  addon.udpSetPeer(handle, '127.0.0.1', 9)
  t.throws(() => addon.udpSend(handle, Buffer.alloc(1), 2), /length within it/)
  t.throws(() => addon.udpStage(handle, Buffer.alloc(4), 4, 70000), /ackBlock/)
  addon.udpClose(handle)
  t.equal(addon.udpSend(handle, Buffer.alloc(1), 1), constants.errno.EBADF, 'a closed socket reports EBADF')
})

t.test('native: a failed bind is a Node-style system error, and leaves no descriptor behind', async (t) => {
  const addon = loadNative().addon!
  const before = openFds()
  // 10.213.255.254 is on no interface of this box (the tests' own range), so bind(2) fails after socket(2) succeeded.
  t.throws(() => addon.udpOpen(false, '10.213.255.254', () => undefined), {
    code: 'EADDRNOTAVAIL',
    errno: constants.errno.EADDRNOTAVAIL,
    syscall: 'bind',
    message: /^bind: /,
  })
  t.equal(openFds(), before, 'the socket was closed')
})

t.test('native: a run answers each exact ACK with the next block from the file, and hands anything else to JS', async (t) => {
  const peer = await peerSocket('udp4', '127.0.0.1')
  const sock = await openTransferSocket('udp4', '127.0.0.1', { address: '127.0.0.1', port: peer.address().port }, loadNative().addon)
  t.teardown(() => (sock.close(), peer.close()))
  const seen: { block: number; ranTo?: number }[] = []
  let arrived: () => void = () => undefined
  sock.onPacket((packet, length, _stranger, _released, ranTo) => {
    seen.push({ block: length >= 4 ? packet.readUInt16BE(2) : -1, ...(ranTo === undefined ? {} : { ranTo }) })
    arrived()
  })
  const received: string[] = []
  let gotData: () => void = () => undefined
  peer.on('message', (m: Buffer) => {
    received.push(`${m.readUInt16BE(0)}:${m.readUInt16BE(2)}:${m.toString('latin1', 4)}`)
    gotData()
  })
  const ack = (block: number, expect: 'data' | 'js') => {
    const wait = new Promise<void>((r) => (expect === 'data' ? (gotData = r) : (arrived = r)))
    peer.send(Buffer.from([0, 4, block >> 8, block & 255]), sock.port, '127.0.0.1')
    return wait
  }
  const file = Buffer.from('abcdefghijklmnopqrst') // blksize 8: blocks "abcdefgh", "ijklmnop", "qrst"
  sock.run!(file, 8, 1, 3)
  t.same(sock.runState!(false)?.sent, 1)
  await ack(1, 'data')
  await ack(2, 'data')
  t.same(received, ['3:2:ijklmnop', '3:3:qrst'], 'DATA 2 and 3 from the file, header and bytes')
  t.same(seen, [], 'JS heard nothing of the ACKs the run answered')
  await ack(3, 'js')
  t.same(seen, [{ block: 3, ranTo: 3 }], 'the last ACK ends the run and reaches JS with how far it got')
  t.equal(sock.runState!(false), undefined, 'no run after it ended')

  // A duplicate mid-run ends it too; runState(true) stops one without a datagram.
  sock.run!(file, 8, 0, 3)
  await ack(0, 'data')
  t.same(received.at(-1), '3:1:abcdefgh', 'sentBlock 0 (the OACK): ACK 0 brings DATA 1')
  await ack(0, 'js')
  t.same(seen.at(-1), { block: 0, ranTo: 1 })
  sock.run!(file, 8, 2, 3)
  const state = sock.runState!(true)
  t.equal(state?.sent, 2)
  t.ok(state !== undefined && state.idleMs >= 0 && state.idleMs < 1000, 'idle time since the run last moved')
  t.equal(sock.runState!(false), undefined, 'stopped')
  await ack(2, 'js')
  t.same(seen.at(-1), { block: 2 }, 'a stopped run answers nothing: the ACK reaches JS plainly')
})

t.test('native: a run counts blocks past 65535 and wraps them on the wire', async (t) => {
  const peer = await peerSocket('udp4', '127.0.0.1')
  const sock = await openTransferSocket('udp4', '127.0.0.1', { address: '127.0.0.1', port: peer.address().port }, loadNative().addon)
  t.teardown(() => (sock.close(), peer.close()))
  const file = Buffer.alloc(65540 * 8)
  for (let block = 65534; block <= 65538; block++) file.writeUInt32BE(block, (block - 1) * 8)
  const received: number[][] = []
  let gotData: () => void = () => undefined
  peer.on('message', (m: Buffer) => {
    received.push([m.readUInt16BE(2), m.readUInt32BE(4)])
    gotData()
  })
  sock.onPacket(() => t.fail('no ACK should reach JS'))
  const ack = (wire: number) => {
    const wait = new Promise<void>((r) => (gotData = r))
    peer.send(Buffer.from([0, 4, wire >> 8, wire & 255]), sock.port, '127.0.0.1')
    return wait
  }
  sock.run!(file, 8, 65534, 65541)
  await ack(65534)
  await ack(65535)
  await ack(0)
  t.same(received, [[65535, 65535], [0, 65536], [1, 65537]], 'wire numbers wrap, the file position does not')
  t.equal(sock.runState!(false)?.sent, 65537)
})

t.test('native: udpRun refuses arguments that do not describe the file', async (t) => {
  const addon = loadNative().addon!
  const [handle] = addon.udpOpen(false, '127.0.0.1', () => undefined)
  t.teardown(() => addon.udpClose(handle))
  t.throws(() => addon.udpRun!(handle, Buffer.alloc(20), 8, 1, 3), /before udpSetPeer/)
  addon.udpSetPeer(handle, '127.0.0.1', 9)
  t.throws(() => addon.udpRun!(handle, Buffer.alloc(20), 8, 1, 4), /totalBlocks/, 'a block count that is not the file size')
  t.throws(() => addon.udpRun!(handle, Buffer.alloc(20), 8, 4, 3), /sentBlock/, 'a sent block past the last')
  t.throws(() => addon.udpRun!(handle, Buffer.alloc(20), 8, 1.5, 3), /sentBlock/)
  t.throws(() => addon.udpRun!(handle, Buffer.alloc(20), 4, 1, 6), /blksize/, 'blksize under 8 (RFC 2348)')
  addon.udpRun!(handle, Buffer.alloc(20), 8, 1, 3)
  t.equal(addon.udpRunState!(handle, true)?.[0], 1, 'valid arguments start a run')
  t.throws(() => addon.udpRunState!({} as never, false), /UDP handle/)
  t.equal(addon.udpRunState!(handle, false), null)
})
