// bind_to_lease: a bound profile's /ignition, /generic and /metadata go only to an address pxebox saw the MAC use in
// DHCP traffic (observedAddresses fed with the proxy's boot events); the addressesOf dependency as the tracker will
// wire it; and the address book's own rules (no trust in HTTP labels, unusable addresses, bounds, ageing).
import t, { type Test } from 'tap'
import { Writable } from 'node:stream'
import { pino } from 'pino'
import { buildApp } from '../../src/http/app.js'
import { loadBootState } from '../../src/catalog/state.js'
import { leaseBindingRefusal, observedAddresses, plainIpv4 } from '../../src/addresses/observed.js'
import { memoryEvents, type BootEvent } from '../../src/machines/events.js'

const MAC = '52:54:00:0b:0b:01'
const dhcp = (mac: string | undefined, ip: string, time = '2024-01-01T00:00:00Z'): BootEvent => ({
  time,
  kind: 'dhcp',
  ...(mac !== undefined ? { mac } : {}),
  ip,
  step: 'ack',
  outcome: 'ok',
  detail: { port: 4011 },
})

async function boundApp(t: Test, addressesOf?: (mac: string) => readonly string[]) {
  const dir = t.testdir({ 'secret.ign': '{"ignition":{"version":"3.4.0"},"passwd":{"users":[{"name":"core","passwordHash":"$y$secret"}]}}', 'env.txt': 'TOKEN={{ .token }}\n' })
  const r = await loadBootState({
    profiles: { bound: { ignition: 'secret.ign', generic: 'env.txt', bind_to_lease: true }, open: { ignition: 'secret.ign' } },
    groups: [
      { id: 'bound', profile: 'bound', selector: { mac: MAC }, metadata: { token: 't0ken' } },
      { id: 'open', profile: 'open', selector: { mac: '52:54:00:0b:0b:02' } },
      { id: 'bound-by-uuid', profile: 'bound', selector: { uuid: '4c4c4544-0042-3510-8052-b4c04f4b4e32' }, metadata: { token: 'u' } },
    ],
    ignitionDir: dir,
    genericDir: dir,
  })
  if (!r.ok) throw new Error(r.errors.join('\n'))
  const state = r.state
  const lines: Record<string, unknown>[] = []
  const logger = pino(
    { level: 'info' },
    new Writable({
      write(chunk: Buffer, _e, cb) {
        for (const l of chunk.toString().split('\n')) if (l) lines.push(JSON.parse(l) as Record<string, unknown>)
        cb()
      },
    }),
  )
  const events = memoryEvents()
  const app = buildApp({ store: { get: () => state }, assetsDir: dir, publicUrl: 'http://10.213.9.1:8080', logger, events, version: '1', ...(addressesOf ? { addressesOf } : {}) })
  t.teardown(() => app.close())
  return { app, lines, events }
}

t.test('served to the address DHCP showed the MAC using, refused (403 + log) to any other', async (t) => {
  const book = observedAddresses()
  const { app, lines, events } = await boundApp(t, (mac) => book.addressesOf(mac))

  const before = await app.inject({ url: `/ignition?mac=${MAC}`, remoteAddress: '10.213.9.50' })
  t.equal(before.statusCode, 403)
  t.equal(before.body, `this profile is bound to the lease (bind_to_lease): pxebox has seen no DHCP traffic from ${MAC} carrying an address\n`)
  t.notMatch(before.body, /secret/)
  t.match(lines.at(-1), { level: 40, msg: 'bound config refused', group: 'bound', ip: '10.213.9.50' })
  t.match(events.events.at(-1), { step: 'ignition', outcome: 'not-bound-address', detail: { status: 403 } })

  // iPXE's ProxyDHCP REQUEST to 4011 comes from its lease; a broadcast from 0.0.0.0 proves nothing.
  book.record(dhcp(MAC, '0.0.0.0'))
  book.record(dhcp(MAC, '10.213.9.50'))
  const ok = await app.inject({ url: `/ignition?mac=${MAC.replace(/:/g, '-')}`, remoteAddress: '10.213.9.50' })
  t.equal(ok.statusCode, 200)
  t.match(ok.body, /\$y\$secret/)
  const okV6Mapped = await app.inject({ url: `/ignition?mac=${MAC}`, remoteAddress: '::ffff:10.213.9.50' })
  t.equal(okV6Mapped.statusCode, 200, 'a dual-stack socket sees the same IPv4 peer as ::ffff:a.b.c.d')

  const other = await app.inject({ url: `/ignition?mac=${MAC}`, remoteAddress: '10.213.9.66' })
  t.equal(other.statusCode, 403)
  t.equal(other.body, `this profile is bound to the lease (bind_to_lease): 10.213.9.66 is not an address pxebox has seen ${MAC} use\n`)
  const noMac = await app.inject({ url: '/ignition?uuid=4c4c4544-0042-3510-8052-b4c04f4b4e32', remoteAddress: '10.213.9.50' })
  t.equal(noMac.statusCode, 403, 'a bound group matched without a mac label: nothing to check the address against')
  t.equal(noMac.body, 'this profile is bound to the lease (bind_to_lease) and the request names no mac\n')

  // The generic file and /metadata carry the same group metadata: bound too.
  t.equal((await app.inject({ url: `/generic?mac=${MAC}`, remoteAddress: '10.213.9.66' })).statusCode, 403)
  t.equal((await app.inject({ url: `/metadata?mac=${MAC}`, remoteAddress: '10.213.9.66' })).statusCode, 403)
  const gen = await app.inject({ url: `/generic?mac=${MAC}`, remoteAddress: '10.213.9.50' })
  t.equal(gen.statusCode, 200)
  t.equal(gen.body, 'TOKEN=t0ken\n')
  t.match((await app.inject({ url: `/metadata?mac=${MAC}`, remoteAddress: '10.213.9.50' })).body, /^TOKEN=t0ken$/m)

  // Profiles without bind_to_lease serve whoever asks.
  t.equal((await app.inject({ url: '/ignition?mac=52:54:00:0b:0b:02', remoteAddress: '10.213.9.99' })).statusCode, 200)
})

t.test('without an addressesOf dependency nothing is known: bound profiles are refused', async (t) => {
  const { app } = await boundApp(t)
  const res = await app.inject({ url: `/ignition?mac=${MAC}`, remoteAddress: '127.0.0.1' })
  t.equal(res.statusCode, 403)
})

t.test('observedAddresses: DHCP evidence only, usable IPv4 only, newest first, bounded, ageing', async (t) => {
  let now = 1_000_000
  const book = observedAddresses({ maxMacs: 2, maxPerMac: 2, maxAgeMs: 10_000, now: () => now })
  book.record({ ...dhcp(MAC, '10.0.0.9'), kind: 'http' })
  book.record(dhcp(undefined, '10.0.0.9'))
  for (const ip of ['0.0.0.0', '255.255.255.255', '127.0.0.1', '224.0.0.1', 'fe80::1', 'nonsense']) book.record(dhcp(MAC, ip))
  t.same(book.addressesOf(MAC), [], 'HTTP labels, MAC-less events and unusable addresses are no evidence')

  book.record(dhcp(MAC, '10.0.0.1'))
  now += 1000
  book.record(dhcp(MAC, '::ffff:10.0.0.2'))
  t.same(book.addressesOf(MAC), ['10.0.0.2', '10.0.0.1'])
  now += 1000
  book.record(dhcp(MAC, '10.0.0.3'))
  t.same(book.addressesOf(MAC), ['10.0.0.3', '10.0.0.2'], 'maxPerMac drops the least recently seen')
  book.record(dhcp(MAC, '10.0.0.2'))
  t.same(book.addressesOf(MAC), ['10.0.0.2', '10.0.0.3'], 'seen again: most recent')

  now += 9500
  t.same(book.addressesOf(MAC), ['10.0.0.2', '10.0.0.3'])
  now += 1000
  t.same(book.addressesOf(MAC), [], 'not seen for maxAgeMs: no longer counts')

  book.record(dhcp('52:54:00:00:00:02', '10.0.0.4'))
  book.record(dhcp('52:54:00:00:00:03', '10.0.0.5'))
  t.same(book.addressesOf(MAC), [], 'maxMacs forgets the least recently seen MAC')
  t.same(book.addressesOf('52:54:00:00:00:03'), ['10.0.0.5'])
})

t.test('leaseBindingRefusal and plainIpv4', async (t) => {
  t.equal(plainIpv4('::ffff:10.1.2.3'), '10.1.2.3')
  t.equal(plainIpv4('::FFFF:10.1.2.3'), '10.1.2.3')
  t.equal(plainIpv4('::ffff:zz'), '::ffff:zz')
  t.equal(plainIpv4('2001:db8::1'), '2001:db8::1')
  const book = () => ['10.1.2.3']
  t.equal(leaseBindingRefusal(book, MAC, '10.1.2.3'), undefined)
  t.equal(leaseBindingRefusal(book, MAC, '::ffff:10.1.2.3'), undefined)
  t.match(leaseBindingRefusal(book, undefined, '10.1.2.3'), /request names no mac/)
  t.match(leaseBindingRefusal(book, MAC, '10.1.2.4'), /10\.1\.2\.4 is not an address/)
})
