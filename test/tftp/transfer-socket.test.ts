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
