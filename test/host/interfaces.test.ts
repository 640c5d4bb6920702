import t from 'tap'
import { InterfaceError, pickAutoInterface, resolvePxeInterface, type LinkInfo } from '../../src/host/interfaces.js'
import type { DefaultRoute } from '../../src/host/default-route.js'

const link = (name: string, ...ipv4: string[]): LinkInfo => ({
  name,
  index: name.length,
  mtu: 1500,
  up: true,
  running: true,
  loopback: name === 'lo',
  ipv4: ipv4.map((a) => ({ address: a.split('/')[0]!, prefix: Number(a.split('/')[1]) })),
})
const lo = link('lo', '127.0.0.1/8')
const eth0 = link('eth0', '192.168.10.5/24')
const docker0 = link('docker0', '172.17.0.1/16')
const eth1 = link('eth1', '10.20.0.1/24')
const uplink = link('uplink', '198.51.100.7/24')
const route = (iface: string, metric = 0, gateway?: string): DefaultRoute => ({ iface, metric, ...(gateway ? { gateway } : {}) })

t.test('interface: auto on a box with one IPv4 interface picks it, as before', async (t) => {
  const r = resolvePxeInterface('auto', undefined, [lo, eth0], [])
  t.match(r, { name: 'eth0', address: '192.168.10.5', prefix: 24, others: [], chosenBy: /the only non-loopback interface/ })
})

t.test('interface: auto on a multi-homed box: the default route decides, and the reason names it', async (t) => {
  // README command 1 on a box that also runs Docker (issue 15): it used to refuse to start.
  const r = resolvePxeInterface('auto', undefined, [lo, eth0, docker0], [route('eth0', 100, '192.168.10.1')])
  t.match(r, { name: 'eth0', address: '192.168.10.5', others: ['docker0'] })
  t.equal(r.chosenBy, 'the default route leaves through it (via 192.168.10.1); other IPv4 interfaces: docker0')
  // The lowest metric wins; a route through an interface without IPv4 (or loopback) is not a candidate.
  t.equal(pickAutoInterface([lo, eth0, eth1, link('ppp0')], undefined, [route('ppp0', 0), route('eth1', 50), route('eth0', 100)]).name, 'eth1')
  // Two default routes through the same interface (two gateways) still decide.
  t.equal(pickAutoInterface([eth0, eth1], undefined, [route('eth1', 5, '10.20.0.254'), route('eth1', 5, '10.20.0.253')]).name, 'eth1')
})

t.test('interface: auto without a deciding default route: the only interface with a private address', async (t) => {
  const r = pickAutoInterface([lo, uplink, eth1], undefined, [])
  t.same(r, { name: 'eth1', reason: 'the only one with a private (RFC 1918) address (no default route)' })
  // Equal-metric default routes through two interfaces decide nothing; the private-address rule does.
  t.equal(pickAutoInterface([uplink, eth1], undefined, [route('uplink', 0), route('eth1', 0)]).name, 'eth1')
  // 172.16/12 is private up to 172.31; 172.32 is not.
  t.equal(pickAutoInterface([link('a', '172.31.255.1/24'), link('b', '172.32.0.1/24')], undefined, []).name, 'a')
})

t.test('interface: auto with `address:` set: the interface holding it', async (t) => {
  const r = resolvePxeInterface('auto', '10.20.0.1', [lo, eth0, eth1], [route('eth0')])
  t.match(r, { name: 'eth1', address: '10.20.0.1', chosenBy: 'it holds address 10.20.0.1' })
  t.throws(() => resolvePxeInterface('auto', '10.99.0.1', [lo, eth0, eth1], []), { name: 'InterfaceError', message: /no interface holds address 10\.99\.0\.1 \(this box has: eth0 192\.168\.10\.5\/24, eth1 10\.20\.0\.1\/24\)/ })
})

t.test('interface: auto where no rule decides: a clear error listing every candidate and why', async (t) => {
  const err = (() => {
    try {
      pickAutoInterface([lo, eth0, eth1], undefined, [])
    } catch (e) {
      return e
    }
    return undefined
  })()
  t.type(err, InterfaceError)
  t.equal(
    (err as Error).message,
    'interface: auto is ambiguous: this box has 2 interfaces with IPv4 (eth0 192.168.10.5/24, eth1 10.20.0.1/24), no default route through any of them, and 2 with a private address; set `interface:` to the PXE VLAN one',
  )
  t.throws(() => pickAutoInterface([uplink, link('uplink2', '203.0.113.9/24')], undefined, [route('uplink', 1), route('uplink2', 1)]), {
    message: /default routes of equal metric through uplink and uplink2, and none with a private address/,
  })
  t.throws(() => pickAutoInterface([lo], undefined, [route('lo')]), { message: /found no interface with an IPv4 address/ })
})

t.test('a named interface is taken as named, whatever the routes say', async (t) => {
  const r = resolvePxeInterface('eth1', undefined, [lo, eth0, eth1], [route('eth0')])
  t.match(r, { name: 'eth1', others: ['eth0'] })
  t.equal(r.chosenBy, undefined)
})
