import { createSocket, type Socket } from 'node:dgram'
import t, { type Test } from 'tap'
import { decode, encode, getOption, messageType, startDhcpServer, usableRelayAddress, type DhcpPacket } from '../../src/dhcp/index.js'
import { startProxyDhcp, type ProxyDhcpOptions, type ProxyDhcpService } from '../../src/boot/dhcp-service.js'
import { memoryEvents } from '../../src/machines/events.js'
import { captureFrames, frame } from './fixtures.js'
import { mutate, rng } from './mutate.js'

const frames = captureFrames()

/** A loopback test client: its socket and the replies it has decoded so far. */
interface Client {
  socket: Socket
  port: number
  replies: DhcpPacket[]
  waitFor: (match: (p: DhcpPacket) => boolean, ms?: number) => Promise<DhcpPacket>
}

/** A UDP "client" on loopback that collects decoded replies. */
async function client(): Promise<Client> {
  const socket = createSocket('udp4')
  const replies: DhcpPacket[] = []
  let wake: () => void = () => {}
  socket.on('message', (msg) => {
    replies.push(decode(msg))
    wake()
  })
  await new Promise<void>((r) => socket.bind(0, '127.0.0.1', () => r()))
  const waitFor = (match: (p: DhcpPacket) => boolean, ms = 3000) =>
    new Promise<DhcpPacket>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no matching reply within ${ms} ms (got ${replies.length})`)), ms)
      const check = () => {
        const found = replies.find(match)
        if (found !== undefined) {
          clearTimeout(timer)
          resolve(found)
        }
      }
      wake = check
      check()
    })
  return { socket, port: socket.address().port, replies, waitFor }
}

/**
 * The proxy DHCP service on loopback with its replies sent to client `c`, closed with the client when `t` ends.
 * `options` sets what a test varies (lookup, pinning, events, onPacket) over these defaults.
 */
async function proxyFor(t: Test, c: Client, options: Partial<ProxyDhcpOptions>): Promise<ProxyDhcpService> {
  const svc = await startProxyDhcp({
    interfaceName: 'lo',
    address: '127.0.0.1',
    pinning: 'auto',
    httpBaseUrl: 'http://127.0.0.1:8080',
    lookup: () => ({ pxe: true, chainloadIpxe: false }),
    chainloadedRecently: () => false,
    events: memoryEvents(),
    // Loopback has no broadcast: replies that would go to 255.255.255.255:68 go to the test client instead.
    ports: { dhcp: 0, pxe: 0, client: c.port },
    broadcastAddress: '127.0.0.1',
    ...options,
  })
  t.teardown(async () => {
    await svc.close()
    c.socket.close()
  })
  return svc
}

const send = (s: Socket, buf: Buffer, port: number) =>
  new Promise<void>((resolve, reject) => s.send(buf, port, '127.0.0.1', (err) => (err ? reject(err) : resolve())))

t.test('a running server survives 2,000 mutated packets and still answers a valid DISCOVER and 4011 REQUEST', async (t) => {
  const c = await client()
  const events = memoryEvents()
  const svc = await proxyFor(t, c, { events })
  t.equal(svc.pinned, true, 'pinned to lo with SO_BINDTOIFINDEX')
  const next = rng(42)
  const sources = frames.filter((f) => f.dstPort === 67 || f.dstPort === 4011).map((f) => f.payload)
  for (let i = 0; i < 2000; i++) {
    const buf = mutate(sources[next() % sources.length] as Buffer, next)
    // Replies to relayed requests go to giaddr: keep it 0 so no mutated packet makes the server send off loopback.
    if (buf.length >= 28) buf.fill(0, 24, 28)
    await send(c.socket, buf, i % 2 === 0 ? svc.ports.dhcp : svc.ports.pxe)
  }
  // Mutated packets that still decode may be answered too; look for the offer to frame 1's xid only, after them.
  await new Promise((r) => setTimeout(r, 200))
  c.replies.length = 0
  await send(c.socket, frame(frames, 1).payload, svc.ports.dhcp)
  const offer = await c.waitFor((r) => r.xid === 0xe2f80e04 && messageType(r) === 2)
  t.pass('valid DISCOVER answered after the fuzzing')
  t.equal(messageType(offer), 2)
  t.equal(offer.file, 'snponly.efi')
  t.equal(getOption(offer.options, 54)?.toString('hex'), '7f000001')
  await send(c.socket, frame(frames, 6).payload, svc.ports.pxe)
  const ack = await c.waitFor((r) => r.xid === 0xf843bb20)
  t.equal(messageType(ack), 5, '4011 REQUEST answered with an ACK, unicast back to the source')
  t.ok(events.events.some((e) => e.step === 'offer' && e.mac === '52:54:00:e2:e0:01' && e.detail.boot_file === 'snponly.efi'))
  t.ok(events.events.some((e) => e.step === 'ack'))
})

t.test('a throwing handler is logged and dropped; udhcpc gets nothing; no event for it', async (t) => {
  const c = await client()
  let calls = 0
  const server = await startDhcpServer(
    { interfaceName: 'lo', address: '127.0.0.1', pinning: 'off', ports: { dhcp: 0, pxe: 0, client: c.port }, broadcastAddress: '127.0.0.1' },
    (req) => {
      calls++
      if (calls === 1) throw new Error('boom')
      return { ...req.packet, op: 2, layout: undefined }
    },
  )
  t.teardown(async () => {
    await server.close()
    c.socket.close()
  })
  await send(c.socket, frame(frames, 1).payload, server.ports.dhcp)
  await send(c.socket, frame(frames, 1).payload, server.ports.dhcp)
  await c.waitFor(() => true)
  t.equal(calls, 2)
  t.equal(c.replies.length, 1)

  const events = memoryEvents()
  const c2 = await client()
  const svc = await proxyFor(t, c2, { lookup: () => ({ pxe: false, chainloadIpxe: false, group: 'off' }), events })
  await send(c2.socket, frame(frames, 15).payload, svc.ports.dhcp)
  await send(c2.socket, frame(frames, 1).payload, svc.ports.dhcp)
  await new Promise((r) => setTimeout(r, 300))
  t.equal(c2.replies.length, 0, 'udhcpc and the pxe:false machine get no reply')
  t.same(
    events.events.map((e) => [e.step, e.outcome]),
    [['ignore', 'pxe disabled for this machine (group off)']],
    'one ignore event, for the PXE client only',
  )
})

t.test('a giaddr no relay can have (broadcast, multicast, loopback, our own address) is dropped and counted, never a destination', async (t) => {
  const c = await client()
  const seen: DhcpPacket[] = []
  // Pinned to lo (proxyFor's pinning: auto): even the old code's broadcast reply could not leave loopback.
  const svc = await proxyFor(t, c, { onPacket: (p) => void seen.push(p) })
  const bad = ['127.0.0.1', '255.255.255.255', '224.0.0.251', '0.1.2.3', '240.0.0.1', '127.0.0.9']
  for (const giaddr of bad) {
    const buf = Buffer.from(frame(frames, 1).payload)
    Buffer.from(giaddr.split('.').map(Number)).copy(buf, 24)
    await send(c.socket, buf, svc.ports.dhcp)
  }
  await new Promise((r) => setTimeout(r, 300))
  t.same(seen.filter((p) => p.op === 2).map((p) => p.yiaddr), [], 'the server never received its own reply (giaddr = our address made it reply to itself)')
  t.equal(c.replies.length, 0, 'no reply anywhere')
  t.equal(svc.drops.giaddr, bad.length, 'each one counted')
  t.same(
    ['10.0.0.1', '192.168.1.254', '223.255.255.1', '127.0.0.1', '255.255.255.255', '239.1.1.1', '0.0.0.5', '10.0.0.2'].map((g) => usableRelayAddress(g, '10.0.0.2')),
    [true, true, true, false, false, false, false, false],
  )
})

t.test('a burst larger than one receive batch, with oversized and malformed datagrams in it: every DISCOVER answered, every event recorded, the oversized counted', async (t) => {
  const c = await client()
  const events = memoryEvents()
  const svc = await proxyFor(t, c, { pinning: 'off', events })
  const burst: Buffer[] = []
  for (let i = 0; i < 45; i++) {
    const buf = Buffer.from(frame(frames, 1).payload)
    buf.writeUInt32BE(0x5eed0000 + i, 4) // xid
    buf[33] = i // last byte of chaddr: a distinct machine each
    burst.push(buf)
    if (i % 10 === 0) burst.push(Buffer.alloc(3000, 0x63), Buffer.from('not dhcp'))
  }
  // Sent back to back: they queue at the server socket and come in as full batches of 32 and the rest.
  await Promise.all(burst.map((b) => send(c.socket, b, svc.ports.dhcp)))
  for (let i = 0; i < 45; i++) await c.waitFor((p) => p.xid === 0x5eed0000 + i)
  t.equal(c.replies.length, 45, 'one offer per DISCOVER, nothing for the others')
  t.equal(svc.drops.oversized, 5, 'each 3,000-byte datagram counted as oversized')
  t.equal(svc.drops.send, 0)
  t.equal(events.events.filter((e) => e.step === 'offer').length, 45, 'every offer on the timeline')
})

t.test('pinning failure: refuses on a multi-homed box unless interface_pinning is off', async (t) => {
  const failing = async () => {
    throw new Error('Protocol not available')
  }
  const base = { interfaceName: 'lo', address: '127.0.0.1', ports: { dhcp: 0, pxe: 0 }, bindToInterface: failing }
  await t.rejects(
    startDhcpServer({ ...base, pinning: 'auto', listInterfaces: () => ['eth0', 'eth1'] }, () => undefined),
    {
      code: 'ERR_DHCP_SERVER_START',
      message:
        'cannot pin the DHCP socket to lo (SO_BINDTOIFINDEX: Protocol not available), and this box has other IPv4 ' +
        'interfaces (eth0, eth1): pxebox would answer PXE clients on all of them. Run pxebox in a network namespace ' +
        'holding only the PXE interface, or set dhcp.interface_pinning: off to accept answering on every interface.',
    },
  )
  const single = await startDhcpServer({ ...base, pinning: 'auto', listInterfaces: () => [] }, () => undefined)
  t.equal(single.pinned, false, 'single-homed: starts unpinned')
  await single.close()
  const off = await startDhcpServer({ ...base, pinning: 'off', listInterfaces: () => ['eth0', 'eth1'] }, () => undefined)
  t.equal(off.pinned, false, 'pinning off: starts unpinned')
  await off.close()
})

t.test('encode of a reply is what goes on the wire', async (t) => {
  // Guard for the test above: the loopback client decodes exactly what encode produced.
  const p = decode(frame(frames, 3).payload)
  t.same(decode(encode(p)), p)
})
