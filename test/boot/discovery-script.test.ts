import t from 'tap'
import { chainBackQuery, holdingScript, HoldingScriptError, INVENTORY_QUERY, type HoldingScriptInput } from '../../src/boot/discovery-script.js'
import { parseInventoryQuery } from '../../src/boot/inventory.js'

const input: HoldingScriptInput = {
  publicUrl: 'http://10.213.47.1:8080/',
  dashboardUrl: 'http://10.213.47.1:8080/ui/#machine=52:54:00:e2:2f:01',
  pollSeconds: 10,
  syslogAddress: '10.213.47.1',
  labels: { mac: '52:54:00:e2:2f:01', uuid: '8d3c1f2e-0000-4000-8000-525400e22f01', serial: 'SN-4711 A', arch: 'x86_64', platform: 'efi' },
}

const nics = Array.from({ length: 8 }, (_, i) => `net${i}=\${net${i}/mac:hexhyp}&chip${i}=\${net${i}/chip:hexraw}`).join('&')
const report =
  'http://10.213.47.1:8080/discovery/report?mac=${mac:hexhyp}&uuid=${uuid}&manufacturer=${manufacturer:hexraw}' +
  '&product=${product:hexraw}&serial=${serial:hexraw}&asset=${asset:hexraw}&platform=${platform}&buildarch=${buildarch}' +
  `&memsize=\${memsize}&${nics}`

t.test('golden: the holding script for a machine with labels from the bootstrap', async (t) => {
  t.equal(
    holdingScript(input),
    [
      '#!ipxe',
      'set syslog 10.213.47.1',
      'echo',
      'echo pxebox: this machine matches no group yet, so it waits here.',
      'echo MAC: 52:54:00:e2:2f:01',
      'echo UUID: 8d3c1f2e-0000-4000-8000-525400e22f01',
      'echo Serial: ${serial}',
      'echo Model: ${manufacturer} ${product}',
      'echo To boot it, assign it to a group in the pxebox dashboard:',
      'echo http://10.213.47.1:8080/ui/#machine=52:54:00:e2:2f:01',
      'echo (or add a group selecting mac 52:54:00:e2:2f:01 to config.yaml). It will then boot by itself.',
      `imgfetch --name pxebox-report ${report} && imgfree pxebox-report || echo pxebox: could not send the inventory`,
      ':poll',
      'echo pxebox: asking again in 10 s',
      'sleep 10',
      'chain --replace --autofree http://10.213.47.1:8080/ipxe?mac=52-54-00-e2-2f-01&uuid=8d3c1f2e-0000-4000-8000-525400e22f01&serial=SN-4711%20A&arch=x86_64&platform=efi || goto poll',
      '',
    ].join('\n'),
  )
})

t.test('golden: no syslog, no labels, a custom report path', async (t) => {
  const script = holdingScript({ ...input, syslogAddress: undefined, labels: {}, reportPath: '/v1/discovery', pollSeconds: 30 })
  t.notMatch(script, /set syslog/)
  t.match(script, 'echo MAC: ${mac}\necho UUID: ${uuid}\n')
  t.match(script, 'imgfetch --name pxebox-report http://10.213.47.1:8080/v1/discovery?mac=${mac:hexhyp}&')
  t.match(script, '\nsleep 30\nchain --replace --autofree http://10.213.47.1:8080/ipxe || goto poll\n')
})

t.test('hostile label values never reach the script: only round-trippable ones are sent back', async (t) => {
  const labels = {
    mac: '52:54:00:e2:2f:01',
    hostname: 'evil ${x} || shell',
    domain: 'a&b=c',
    rack: 'row 1',
    note: 'line\nbreak',
    'bad key': 'v',
    model: 'Pr\u00fcfstand',
  }
  const { query, dropped } = chainBackQuery(labels)
  t.equal(query, 'mac=52-54-00-e2-2f-01&rack=row%201')
  t.strictSame(dropped.sort(), ['bad key', 'domain', 'hostname', 'model', 'note'])
  const script = holdingScript({ ...input, labels })
  t.notMatch(script, /evil|shell|a&b|line\nbreak|Pr\u00fcf/)
  // Every `${` in the script is one of ours: iPXE settings, never a label value.
  for (const m of script.matchAll(/\$\{([^}]*)\}/g)) t.match(m[1], /^[a-z0-9/-]+(:[a-z]+)?$/, `expansion ${m[0]}`)
})

t.test('a mac or uuid label not in canonical form is printed as iPXE knows it', async (t) => {
  const script = holdingScript({ ...input, labels: { mac: 'x ${evil}', uuid: 'not-a-uuid' } })
  t.match(script, 'echo MAC: ${mac}\necho UUID: ${uuid}\n')
})

t.test('inputs that cannot be put into a script are refused', async (t) => {
  const bad: Array<[Partial<HoldingScriptInput>, RegExp]> = [
    [{ publicUrl: 'ftp://x' }, /publicUrl "ftp:\/\/x" is not a plain http\(s\) URL/],
    [{ publicUrl: 'http://x/${y}' }, /publicUrl/],
    [{ dashboardUrl: 'http://x/ui with space' }, /dashboardUrl .* has spaces, \$ or control characters/],
    [{ dashboardUrl: 'http://x/${net0/mac}' }, /dashboardUrl/],
    [{ pollSeconds: 0 }, /pollSeconds must be an integer 1-3600, got 0/],
    [{ pollSeconds: 1.5 }, /pollSeconds/],
    [{ pollSeconds: 3601 }, /pollSeconds/],
    [{ syslogAddress: '::1' }, /syslogAddress "::1" is not an IPv4 address/],
    [{ syslogAddress: '10.0.0.256' }, /syslogAddress/],
    [{ reportPath: 'report' }, /reportPath "report" must be a plain absolute path/],
    [{ reportPath: '/r?x=1' }, /reportPath/],
  ]
  for (const [patch, message] of bad) {
    t.throws(() => holdingScript({ ...input, ...patch }), { name: 'HoldingScriptError', code: 'ERR_HOLDING_SCRIPT', message }, JSON.stringify(patch))
  }
  t.ok(new HoldingScriptError('x') instanceof Error)
})

t.test('the inventory query and the parser agree on every parameter name', async (t) => {
  // Expand the query the way iPXE would for a QEMU machine (values measured in the discovery draft).
  const hex = (s: string) => Buffer.from(s).toString('hex')
  const values: Record<string, string> = {
    'mac:hexhyp': '52-54-00-e2-2f-02', uuid: '8d3c1f2e-0000-4000-8000-525400e22f02', 'manufacturer:hexraw': hex('QEMU'),
    'product:hexraw': hex('Standard PC (Q35 + ICH9, 2009)'), 'serial:hexraw': '', 'asset:hexraw': '', platform: 'efi',
    buildarch: 'x86_64', memsize: '', 'net0/mac:hexhyp': '52-54-00-e2-2f-02', 'net0/chip:hexraw': hex('SNP'),
    'net1/mac:hexhyp': '52-54-00-e2-2f-12', 'net1/chip:hexraw': hex('SNP'),
  }
  const expanded = INVENTORY_QUERY.replace(/\$\{([^}]+)\}/g, (_, name: string) => values[name] ?? '')
  t.strictSame(parseInventoryQuery(expanded), {
    facts: {
      mac: '52:54:00:e2:2f:02',
      uuid: '8d3c1f2e-0000-4000-8000-525400e22f02',
      manufacturer: 'QEMU',
      product: 'Standard PC (Q35 + ICH9, 2009)',
      platform: 'efi',
      buildarch: 'x86_64',
      nics: [
        { index: 0, mac: '52:54:00:e2:2f:02', chip: 'SNP' },
        { index: 1, mac: '52:54:00:e2:2f:12', chip: 'SNP' },
      ],
    },
    problems: [],
  })
})
