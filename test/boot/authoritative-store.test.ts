/**
 * Authoritative DHCP with the Store-backed lease book, on the wire (loopback, loopback-dhcp.ts): two servers over one
 * store hand 300 clients distinct addresses, and with the store unreachable a server stays silent to new clients
 * (saying why once, not per packet) while it keeps ACKing the renewals of the leases it holds.
 */
import { Writable } from 'node:stream'
import { join } from 'node:path'
import t from 'tap'
import { pino } from 'pino'
import type { AuthoritativeDhcpService } from '../../src/boot/authoritative-service.js'
import { CLAIM_KIND, LEASE_KIND } from '../../src/addresses/store-lease-book.js'
import { DhcpOptionCode, ipv4Option, messageType } from '../../src/dhcp/index.js'
import { openSqliteStore, type Store } from '../../src/store/index.js'
import type { LeaseRecord } from '../../src/addresses/lease-log.js'
import { DhcpMessageType as T, clientPacket, macOf } from '../addresses/packets.js'
import { failingStore } from '../helpers/failing-store.js'
import { SERVER, client, lease, next, server, tmp, type Client } from './loopback-dhcp.js'

async function sqlite(t: { teardown(fn: () => unknown): void }): Promise<Store> {
  const store = await openSqliteStore({ file: join(tmp(t), 'pxebox.db') })
  t.teardown(() => store.close())
  return store
}

/**
 * Servers A and B over `range`, each with its own loopback client and its lease book in `storeA`/`storeB` (the same
 * store, seen through failingStore with the watch delay a test wants); all closed when `t` ends.
 */
async function twoServers(
  t: { teardown(fn: () => unknown): void },
  range: { start: string; end: string },
  storeA: Store,
  storeB: Store,
): Promise<{ a: AuthoritativeDhcpService; b: AuthoritativeDhcpService; ca: Client; cb: Client }> {
  let portA = 0
  let portB = 0
  const ca = await client(() => portA)
  const cb = await client(() => portB)
  const a = await server(tmp(t), ca.port, range, { leaseBook: { book: 'store', store: storeA } })
  const b = await server(tmp(t), cb.port, range, { leaseBook: { book: 'store', store: storeB } })
  portA = a.ports.dhcp
  portB = b.ports.dhcp
  t.teardown(async () => {
    await a.close()
    await b.close()
    ca.socket.close()
    cb.socket.close()
  })
  return { a, b, ca, cb }
}

/** DISCOVER then REQUEST; what came back to the REQUEST (or that the DISCOVER went unanswered). */
async function dora(c: Client, mac: string): Promise<{ result: 'ack' | 'nak' | 'no offer' | 'no reply'; ip?: string }> {
  const offer = await c.ask(clientPacket({ type: T.DISCOVER, mac, xid: next() }), 3000)
  if (offer === undefined) return { result: 'no offer' }
  const reply = await c.ask(clientPacket({ type: T.REQUEST, mac, xid: next(), requested: offer.yiaddr, server: ipv4Option(offer, DhcpOptionCode.SERVER_ID) ?? '' }), 3000)
  if (reply === undefined) return { result: 'no reply' }
  return messageType(reply) === T.ACK ? { result: 'ack', ip: reply.yiaddr } : { result: 'nak' }
}

t.test('two servers over one store, 300 clients split across both: every client ACKed, no address twice, every ACK in the store', async (t) => {
  const store = await sqlite(t)
  const range = { start: '10.213.51.10', end: '10.213.52.200' }
  // Each server sees the other's grants 20 ms late, as over etcd; both pools scan from the range start.
  const { ca, cb } = await twoServers(t, range, failingStore(store, { watchDelayMs: 20 }), failingStore(store, { watchDelayMs: 20 }))

  const acked = new Map<string, string>()
  let naks = 0
  let nextClient = 0
  await Promise.all(
    Array.from({ length: 40 }, async () => {
      while (nextClient < 300) {
        const i = nextClient++
        const mac = macOf(3000 + i)
        for (let attempt = 0; attempt < 20 && !acked.has(mac); attempt++) {
          const r = await dora(i % 2 === 0 ? ca : cb, mac)
          if (r.result === 'ack') acked.set(mac, r.ip as string)
          if (r.result === 'nak') naks++
        }
      }
    }),
  )
  t.equal(acked.size, 300, 'every client ACKed')
  t.equal(new Set(acked.values()).size, 300, 'no address ACKed to two clients')
  t.ok(naks > 0, `the servers raced: ${naks} NAKs for an address the other claimed first`)
  const leases = new Map((await store.list(LEASE_KIND)).map((e) => [e.id, (e.value as LeaseRecord).ip]))
  const claims = new Map((await store.list(CLAIM_KIND)).map((e) => [e.id, (e.value as { mac: string }).mac]))
  t.same([...acked].filter(([mac, ip]) => leases.get(mac) !== ip || claims.get(ip) !== mac), [], 'every ACKed lease is in the store, its address claimed by it')
})

t.test('an address another server claimed: NAKed while this one has not heard of it, never offered once it has', async (t) => {
  const store = await sqlite(t)
  const range = { start: '10.213.54.10', end: '10.213.54.50' }
  // B hears of A's grants only after 500 ms.
  const { b, ca, cb } = await twoServers(t, range, store, failingStore(store, { watchDelayMs: 500 }))
  const first = await lease(ca, macOf(1))
  t.equal(first, '10.213.54.10', 'A leases the first address')
  const reply = await cb.ask(clientPacket({ type: T.REQUEST, mac: macOf(2), xid: next(), requested: first as string, server: SERVER }))
  t.equal(reply && messageType(reply), T.NAK, 'B, not yet aware, NAKs a REQUEST for it: its claim failed in the store')
  t.notOk(b.leases().some((l) => l.ip === first && l.mac === macOf(2)), 'and B holds no lease of it')
  await new Promise((r) => setTimeout(r, 700))
  t.ok(b.leases().some((l) => l.ip === first && l.mac === macOf(1)), 'once the watch delivered, B knows A\'s lease')
  const offer = await cb.ask(clientPacket({ type: T.DISCOVER, mac: macOf(3), xid: next(), requested: first as string }))
  t.ok(offer !== undefined && offer.yiaddr !== first, `B offers another address (${offer?.yiaddr}) even when asked for ${first}`)
})

t.test('store unreachable: new clients get no answer and one log line says why; a holder\'s renewal is ACKed and written later', async (t) => {
  const store = await sqlite(t)
  const failing = failingStore(store)
  const lines: { msg: string; unanswered?: number }[] = []
  const logger = pino({ level: 'info' }, new Writable({
    write(chunk, _enc, cb) {
      for (const l of String(chunk).split('\n')) if (l) lines.push(JSON.parse(l) as { msg: string })
      cb()
    },
  }))
  let port = 0
  const c = await client(() => port)
  const svc = await server(tmp(t), c.port, { start: '10.213.53.10', end: '10.213.53.50' }, { leaseBook: { book: 'store', store: failing }, logger, outageLogEveryMs: 60_000 })
  port = svc.ports.dhcp
  t.teardown(async () => {
    await svc.close()
    c.socket.close()
  })
  const holder = macOf(1)
  const held = await lease(c, holder)
  t.ok(held, `the holder got ${held} while the store was up`)

  failing.down = true
  const renew = await c.ask(clientPacket({ type: T.REQUEST, mac: holder, xid: next(), ciaddr: held as string, broadcast: true }))
  t.equal(renew && messageType(renew), T.ACK, 'the holder\'s renewal is ACKed')
  const answered = []
  for (let i = 0; i < 5; i++) answered.push(await c.ask(clientPacket({ type: T.DISCOVER, mac: macOf(100 + i), xid: next() }), 300))
  t.same(answered.filter((r) => r !== undefined), [], 'no OFFER to a new client')
  const direct = await c.ask(clientPacket({ type: T.REQUEST, mac: macOf(200), xid: next(), requested: '10.213.53.40', server: SERVER }), 500)
  t.equal(direct, undefined, 'a REQUEST for a free address without a committed write gets no ACK (and no NAK)')
  const why = lines.filter((l) => /lease store .* unreachable: no new address is handed out without a committed write/.test(l.msg))
  t.equal(why.length, 1, 'one line says why, not one per packet')
  t.equal(svc.drops.storeDown, 5, 'the unanswered DISCOVERs are counted')
  t.equal(svc.drops.leaseWrite, 1, 'the unACKed REQUEST too')
  const renewedAt = svc.leases().find((l) => l.mac === holder)?.at as number
  t.not(((await store.get(LEASE_KIND, holder))?.value as LeaseRecord).at, renewedAt, 'the renewal is not in the store yet')

  failing.down = false
  const end = Date.now() + 8000
  while (((await store.get(LEASE_KIND, holder))?.value as LeaseRecord).at !== renewedAt && Date.now() < end) await new Promise((r) => setTimeout(r, 50))
  t.equal(((await store.get(LEASE_KIND, holder))?.value as LeaseRecord).at, renewedAt, 'the queued renewal reached the store once it answered')
  t.ok(await lease(c, macOf(300)), 'new clients get addresses again')
})
