import t from 'tap'
import { parseDefaultRoutes } from '../../src/host/default-route.js'

// /proc/net/route as Linux 6.1 prints it on x86 (addresses in host byte order: 192.0.2.1 is 010200C0), with a
// second default route of higher metric (a VPN or a backup uplink), a reject route and a link-scope route.
const captured = [
  'Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT                                                       ',
  'wg0\t00000000\t00000000\t0001\t0\t0\t600\t00000000\t0\t0\t0                                                                               ',
  'eth0\t00000000\t010200C0\t0003\t0\t0\t100\t00000000\t0\t0\t0                                                                               ',
  'eth1\t00000000\t00000000\t0201\t0\t0\t0\t00000000\t0\t0\t0                                                                               ',
  'eth0\t000200C0\t00000000\t0001\t0\t0\t100\t00FFFFFF\t0\t0\t0                                                                               ',
  '',
].join('\n')

t.test('default routes from /proc/net/route: up, not reject, lowest metric first, gateway decoded', async (t) => {
  t.same(parseDefaultRoutes(captured, true), [
    { iface: 'eth0', gateway: '192.0.2.1', metric: 100 },
    { iface: 'wg0', metric: 600 },
  ])
  // A big-endian host prints the same gateway as C0000201.
  t.same(parseDefaultRoutes(captured.replace('010200C0', 'C0000201'), false)[0], { iface: 'eth0', gateway: '192.0.2.1', metric: 100 })
})

t.test('no default route, an empty file or garbled lines: no routes, never a throw', async (t) => {
  t.same(parseDefaultRoutes(captured.split('\n').filter((l) => !/\t00000000\t.*\t00000000\t/.test(l)).join('\n'), true), [])
  t.same(parseDefaultRoutes('', true), [])
  t.same(parseDefaultRoutes('Iface\tDestination\neth0 00000000 zz 0003 0 0 0 00000000\neth0\t00000000\n\u0000\u0000', true), [])
})
