/**
 * Authoritative mode under attack and on a full disk, with real UDP sockets on loopback (the server on high ports,
 * its "broadcast" replies sent to the test client's port): spoofed DECLINEs, two REQUESTs for one address back to
 * back, and a data_dir on a small tmpfs that fills up mid-burst.
 */
import { execFileSync } from 'node:child_process'
import { openSync, closeSync, unlinkSync, writeSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { messageType, type DhcpPacket } from '../../src/dhcp/index.js'
import { DhcpMessageType as T, clientPacket, macOf } from '../addresses/packets.js'
import { SERVER, client, lease, next, server, tmp } from './loopback-dhcp.js'

t.test('51 spoofed DECLINEs from random MACs block nothing; the holder renews; its own DECLINE counts', async (t) => {
  let port = 0
  const c = await client(() => port)
  const svc = await server(tmp(t), c.port)
  port = svc.ports.dhcp
  t.teardown(async () => {
    await svc.close()
    c.socket.close()
  })
  const holder = macOf(1)
  const held = await lease(c, holder)
  t.ok(held, `the holder got ${held}`)

  // The attack: every address of the pool, with and without our server id, from MACs that never held any of them.
  for (let i = 0; i < 51; i++) {
    const ip = `10.213.50.${10 + (i % 10)}`
    c.send(clientPacket({ type: T.DECLINE, mac: macOf(5000 + i), xid: next(), requested: ip, ...(i % 2 === 0 ? {} : { server: SERVER }) }))
  }
  // A DECLINE of the held address from the holder's MAC but for another server is not ours either.
  c.send(clientPacket({ type: T.DECLINE, mac: holder, xid: next(), requested: held as string, server: '10.213.50.1' }))
  await new Promise((r) => setTimeout(r, 300))

  const renew = await c.ask(clientPacket({ type: T.REQUEST, mac: holder, xid: next(), ciaddr: held as string, broadcast: true }))
  t.equal(renew && messageType(renew), T.ACK, 'the holder renewal is ACKed, not NAKed')
  const other = await lease(c, macOf(2))
  t.ok(other !== undefined && other !== held, `a new client still gets an address (${other})`)
  t.equal(svc.drops.decline, 52, 'every spoofed DECLINE counted as a drop')

  // The real thing: the holder declines its own address with our server id.
  c.send(clientPacket({ type: T.DECLINE, mac: holder, xid: next(), requested: held as string, server: SERVER }))
  await new Promise((r) => setTimeout(r, 200))
  t.equal(svc.drops.decline, 52, 'the holder DECLINE is accepted')
  t.notOk(svc.leases().some((l) => l.mac === holder), 'its lease ended')
  const again = await lease(c, holder)
  t.ok(again !== undefined && again !== held, `the declined ${held} is not offered again (got ${again})`)
})

t.test('two REQUESTs for one free address back to back: one ACK, one NAK', async (t) => {
  let port = 0
  const c = await client(() => port)
  const svc = await server(tmp(t), c.port)
  port = svc.ports.dhcp
  t.teardown(async () => {
    await svc.close()
    c.socket.close()
  })
  for (let round = 0; round < 3; round++) {
    const ip = `10.213.50.${12 + round}`
    const a = clientPacket({ type: T.REQUEST, mac: macOf(100 + round), xid: next(), requested: ip, server: SERVER })
    const b = clientPacket({ type: T.REQUEST, mac: macOf(200 + round), xid: next(), requested: ip, server: SERVER })
    const [ra, rb] = await Promise.all([c.ask(a), c.ask(b)]) // both datagrams leave before either reply
    const types = [ra, rb].map((r) => (r === undefined ? 'none' : messageType(r) === T.ACK ? 'ACK' : messageType(r) === T.NAK ? 'NAK' : 'other'))
    t.same(types, ['ACK', 'NAK'], `round ${round}: ${ip} ACKed once (${types.join(', ')})`)
    t.same(svc.leases().filter((l) => l.ip === ip).map((l) => l.mac), [a.chaddr], `round ${round}: one holder in the table`)
  }
})

const root = process.getuid?.() === 0
t.test('data_dir on a full tmpfs: no ACK without a durable lease; after a restart no ACKed lease is lost, none given twice', { skip: root ? false : 'needs root to mount a tmpfs' }, async (t) => {
  const dir = tmp(t)
  const mnt = join(dir, 'data')
  execFileSync('mkdir', [mnt])
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'pxebox-hard', mnt])
  let port = 0
  const c = await client(() => port)
  let svc = await server(mnt, c.port, { start: '10.213.50.10', end: '10.213.50.250' })
  port = svc.ports.dhcp
  t.teardown(async () => {
    await svc.close().catch(() => undefined)
    c.socket.close()
    execFileSync('umount', ['-l', mnt])
  })

  const acked: { mac: string; ip: string }[] = []
  const request = async (n: number): Promise<DhcpPacket | undefined> => {
    const mac = macOf(n)
    const ip = `10.213.50.${10 + n}`
    const r = await c.ask(clientPacket({ type: T.REQUEST, mac, xid: next(), requested: ip, server: SERVER }), 1000)
    if (r !== undefined && messageType(r) === T.ACK) acked.push({ mac, ip: r.yiaddr })
    return r
  }
  t.equal((await request(1)) && acked.length, 1, 'a lease before the disk fills: the log has a partly used page')

  // Fill the file system: the log can still grow inside its last page, then a line is cut at the page end.
  const filler = join(mnt, 'filler')
  const fd = openSync(filler, 'w')
  try {
    for (;;) writeSync(fd, Buffer.alloc(4096, 120))
  } catch (err) {
    t.equal((err as NodeJS.ErrnoException).code, 'ENOSPC', 'the tmpfs is full')
  } finally {
    closeSync(fd)
  }
  let silent = 0
  let n = 2
  for (; n < 200 && silent < 3; n++) silent = (await request(n)) === undefined ? silent + 1 : 0
  t.ok(acked.length > 1, `${acked.length} ACKs while the log page had room`)
  const dropped = svc.drops?.leaseWrite

  unlinkSync(filler)
  const full = acked.length
  for (let i = 0; i < 3; i++, n++) await request(n)
  const before = acked.length
  t.equal(before - full, 3, 'space freed: leases are ACKed again')

  await svc.close()
  svc = await server(mnt, c.port, { start: '10.213.50.10', end: '10.213.50.250' })
  port = svc.ports.dhcp
  const table = new Map(svc.leases().map((l) => [l.mac, l.ip]))
  t.same(acked.filter((a) => table.get(a.mac) !== a.ip), [], `all ${before} ACKed leases survive the restart`)
  t.same(svc.recovered.problems, [], 'no torn or corrupt record in the log')
  const twice: string[] = []
  for (const [i, a] of acked.entries()) {
    const r = await c.ask(clientPacket({ type: T.REQUEST, mac: macOf(9000 + i), xid: next(), requested: a.ip, server: SERVER }))
    if (r !== undefined && messageType(r) === T.ACK) twice.push(a.ip)
  }
  t.same(twice, [], 'no ACKed address is given to a second MAC')
  t.ok(dropped >= 3, `${dropped} REQUESTs not ACKed for want of space (counted)`)
})
