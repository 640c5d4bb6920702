import t from 'tap'
import { inventoryLimits, parseInventoryQuery } from '../../src/boot/inventory.js'

const hex = (s: string | Buffer) => Buffer.from(s).toString('hex')

t.test('a report from snponly.efi under QEMU -smbios (as captured in the discovery draft)', async (t) => {
  const q =
    'mac=52-54-00-e2-2f-01&uuid=8d3c1f2e-0000-4000-8000-525400e22f01&manufacturer=50726f62652053797374656d7320496e632e' +
    '&product=5072c3bc667374616e642037202620636f2f783f793d7a23312b322533&serial=534e2d343731312041&asset=41535345542d30303432' +
    '&platform=efi&buildarch=x86_64&memsize=&net0=52-54-00-e2-2f-01&chip0=534e50&net1=&chip1=&net2=&chip2='
  t.strictSame(parseInventoryQuery(q), {
    facts: {
      mac: '52:54:00:e2:2f:01',
      uuid: '8d3c1f2e-0000-4000-8000-525400e22f01',
      manufacturer: 'Probe Systems Inc.',
      product: 'Pr\u00fcfstand 7 & co/x?y=z#1+2%3',
      serial: 'SN-4711 A',
      asset: 'ASSET-0042',
      platform: 'efi',
      buildarch: 'x86_64',
      nics: [{ index: 0, mac: '52:54:00:e2:2f:01', chip: 'SNP' }],
    },
    problems: [],
  })
})

t.test('memsize where a build reports it; padding and runs of spaces folded', async (t) => {
  const { facts, problems } = parseInventoryQuery(`memsize=16384&product=${hex('  PowerEdge   R650   ')}`)
  t.equal(facts.memsizeMb, 16384)
  t.equal(facts.product, 'PowerEdge R650')
  t.strictSame(problems, [])
})

t.test('hostile values: control, bidi and invalid UTF-8 bytes removed or replaced, text capped', async (t) => {
  const evil = Buffer.concat([Buffer.from('A\x1b[31mB\r\nC\u202eD\u200bE\0'), Buffer.from([0xff])])
  const { facts } = parseInventoryQuery(`serial=${hex(evil)}&product=${hex('x'.repeat(500))}&asset=${hex('\u00e9'.repeat(300))}`)
  t.equal(facts.serial, 'A [31mB CDE \ufffd', 'controls as spaces (folded), bidi and zero-width removed, bad UTF-8 as U+FFFD')
  t.equal(facts.product?.length, inventoryLimits.maxTextLength)
  t.equal(facts.asset, '\u00e9'.repeat(inventoryLimits.maxTextLength), 'capped by characters, multi-byte intact')
})

t.test('bad values are left out and named; parsing never throws', async (t) => {
  const q = [
    'mac=not-a-mac', 'uuid=1234', 'manufacturer=zz', 'product=abc', 'serial=%E0%A4%A', 'asset=0a0d00',
    'platform=EFI!', 'buildarch=' + 'x'.repeat(17), 'memsize=0', 'net0=52-54-00-e2-2f-01', 'chip0=%zz', 'net1=nope',
    'net8=52-54-00-e2-2f-09', 'Bad-Key=1', 'mac=52-54-00-e2-2f-01',
  ].join('&')
  const { facts, problems } = parseInventoryQuery(q)
  t.strictSame(facts, { nics: [{ index: 0, mac: '52:54:00:e2:2f:01' }] }, 'net8 is past maxNics; the repeated mac loses to the first')
  t.strictSame(problems, [
    'parameter name "bad-key" ignored',
    'mac: "not-a-mac" is not a MAC address',
    'uuid: "1234" is not a UUID',
    'manufacturer: "zz" is not of the expected form',
    'product: "abc" is not of the expected form',
    'serial: bad percent-encoding "%E0%A4%A"',
    'asset: nothing printable in it',
    'platform: "EFI!" is not of the expected form',
    `buildarch: "${'x'.repeat(17)}" is not of the expected form`,
    'memsize: 0 MiB is not a plausible memory size',
    'chip0: bad percent-encoding "%zz"',
    'net1: "nope" is not a MAC address',
  ])
})

t.test('size caps: a long query is cut, extra parameters are ignored', async (t) => {
  const long = parseInventoryQuery(`platform=efi&product=${'41'.repeat(5000)}`)
  t.equal(long.facts.platform, 'efi')
  t.equal(long.facts.product, undefined, 'the cut leaves an odd number of hex digits: refused, not half-decoded')
  t.match(long.problems[0], /query is 10021 characters, the cap is 4096/)
  const many = parseInventoryQuery([...Array.from({ length: 70 }, (_, i) => `x${i}=1`), 'platform=efi'].join('&'))
  t.equal(many.facts.platform, undefined, 'parameter 71 is not read')
  t.match(many.problems, ['71 parameters, only the first 64 read'])
})

t.test('seeded random queries: never a throw, every fact within its bounds', async (t) => {
  let x = 0x1234567
  const next = () => {
    x ^= x << 13
    x >>>= 0
    x ^= x >>> 17
    x ^= x << 5
    x >>>= 0
    return x
  }
  const pieces = ['mac=', 'uuid=', 'product=', 'serial=', 'net0=', 'chip0=', 'memsize=', '&', '=', '%', '%2', 'ff', '00', '1b', 'e2', '-', ':', 'zz', '9', '\u0000', '\u202e']
  for (let i = 0; i < 20_000; i++) {
    let q = ''
    for (let n = next() % 40; n > 0; n--) q += pieces[next() % pieces.length]
    const { facts } = parseInventoryQuery(q)
    for (const k of ['manufacturer', 'product', 'serial', 'asset'] as const) {
      const v = facts[k]
      if (v !== undefined && (v.length > inventoryLimits.maxTextLength || /[\x00-\x1f\u202e]/.test(v))) t.fail(`bad ${k} from ${JSON.stringify(q)}`)
    }
    if (facts.nics.length > inventoryLimits.maxNics) t.fail('too many NICs')
  }
  t.pass('20,000 random queries parsed')
})
