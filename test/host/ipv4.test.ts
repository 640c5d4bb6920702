import t from 'tap'
import { IPV4_PATTERN, intToIp, ipToInt, isIPv4 } from '../../src/host/ipv4.js'
import { parseIPv4 } from '../../src/dhcp/values.js'

// One IPv4 rule for the whole daemon (issue 14 item 5): the parser, the config schema's pattern and the DHCP codec
// accept and refuse the same strings.
const good = ['0.0.0.0', '10.0.0.2', '192.168.1.255', '255.255.255.255', '1.2.3.4']
const bad = ['', '1.2.3', '1.2.3.4.5', '256.0.0.1', '999.999.999.999', '010.0.0.1', '1.2.3.-1', ' 1.2.3.4', '1.2.3.4 ', 'a.b.c.d', '1..2.3', '0x1.2.3.4', '1.2.3.04', '::ffff:1.2.3.4']

t.test('the parser, the schema pattern and the DHCP codec agree', async (t) => {
  const pattern = new RegExp(IPV4_PATTERN)
  for (const ip of good) {
    t.ok(isIPv4(ip), `parser accepts ${ip}`)
    t.ok(pattern.test(ip), `pattern accepts ${ip}`)
    t.equal(intToIp(ipToInt(ip)!), ip, `${ip} round-trips`)
    t.equal(parseIPv4(ip).join('.'), ip, `codec encodes ${ip}`)
  }
  for (const ip of bad) {
    t.notOk(isIPv4(ip), `parser refuses ${JSON.stringify(ip)}`)
    t.notOk(pattern.test(ip), `pattern refuses ${JSON.stringify(ip)}`)
    t.throws(() => parseIPv4(ip), { code: 'ERR_DHCP_ENCODE' }, `codec refuses ${JSON.stringify(ip)}`)
  }
})

t.test('a seeded sweep: every 4-octet string the pattern accepts, the parser accepts, and back', async (t) => {
  const pattern = new RegExp(IPV4_PATTERN)
  let seed = 7
  const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed)
  const octet = () => [String(rand() % 300), '0' + String(rand() % 10), String(rand() % 256)][rand() % 3]!
  let mismatches = 0
  for (let i = 0; i < 20_000; i++) {
    const ip = [octet(), octet(), octet(), octet()].join('.')
    if (pattern.test(ip) !== isIPv4(ip)) mismatches++
  }
  t.equal(mismatches, 0)
})
