/**
 * Issue 20, HTTP side: `/ipxe` holds a machine no group matches (discovery.mode hold), the holding script's report
 * lands in the machine record as its inventory (status `discovered`, shown by the API), polls do not open new boot
 * attempts, reported facts are selector labels, and `POST /v1/machines/<mac>/assign` puts the machine into a group
 * through the overlay so its next poll boots the profile. Plus the serial sent as `${serial:hexraw}` by /boot.ipxe.
 */
import t from 'tap'
import { operatorApp, PUBLIC, TOKEN } from './api/fixture.js'
import { holdingScript } from '../../src/boot/discovery-script.js'

const AUTH = { authorization: `Bearer ${TOKEN}` }
const MAC = '52:54:00:77:00:01'
const HYP = MAC.replace(/:/g, '-')
const hex = (s: string) => Buffer.from(s, 'utf8').toString('hex')
/** What iPXE sends after expanding INVENTORY_QUERY on a QEMU q35 VM with -smbios type=1,... (values as measured). */
const REPORT =
  `/discovery/report?mac=${HYP}&uuid=8d3c1f2e-0000-4000-8000-525400770001&manufacturer=${hex('QEMU')}` +
  `&product=${hex('PowerEdge R650')}&serial=${hex('SN & 42=x')}&asset=&platform=efi&buildarch=x86_64&memsize=` +
  `&net0=${HYP}&chip0=${hex('SNP')}&net1=&chip1=`
const POLL = `/ipxe?mac=${HYP}&uuid=8d3c1f2e-0000-4000-8000-525400770001&arch=x86_64&platform=efi`

t.test('discovery hold: the holding script, the report stored as inventory, status discovered, one attempt', async (t) => {
  const o = await operatorApp(t, { token: TOKEN, noDefaultGroup: true, discovery: { pollSeconds: 7 } })
  const first = await o.app.inject({ url: POLL })
  t.equal(first.statusCode, 200)
  t.equal(
    first.body,
    holdingScript({
      publicUrl: PUBLIC,
      dashboardUrl: `${PUBLIC}/ui/`,
      pollSeconds: 7,
      labels: { mac: MAC, uuid: '8d3c1f2e-0000-4000-8000-525400770001', arch: 'x86_64', platform: 'efi' },
    }),
  )
  t.match(first.body, `chain --replace --autofree ${PUBLIC}/ipxe?mac=${HYP}&uuid=8d3c1f2e-0000-4000-8000-525400770001&arch=x86_64&platform=efi || goto poll`)
  t.match(first.body, 'sleep 7\n')

  const report = await o.app.inject({ url: REPORT })
  // iPXE 2019 reads a body without Content-Length until the connection closes: a 204 stalled the VM for the
  // keep-alive time-out (72 s). The answer must say how long it is.
  t.equal(report.statusCode, 200)
  t.equal(report.headers['content-length'], String(Buffer.byteLength(report.body)), 'the report answer has a Content-Length')
  t.equal(report.body, 'pxebox: inventory received\n')
  for (let i = 0; i < 5; i++) t.equal((await o.app.inject({ url: POLL })).statusCode, 200)

  const m = (await o.app.inject({ url: `/v1/machines/${MAC}` })).json()
  t.equal(m.status, 'discovered')
  t.same(m.inventory, {
    mac: MAC,
    uuid: '8d3c1f2e-0000-4000-8000-525400770001',
    manufacturer: 'QEMU',
    product: 'PowerEdge R650',
    serial: 'SN & 42=x',
    platform: 'efi',
    buildarch: 'x86_64',
    nics: [{ index: 0, mac: MAC, chip: 'SNP' }],
  })
  t.equal(m.serial, 'SN & 42=x', 'the record serial is the decoded one, not hex')
  t.equal(m.boots, 1, 'polls do not open new attempts')
  // One line before the report and one for the five polls after it, not a line per poll.
  t.equal(m.timeline.filter((e: { step: string }) => e.step === 'hold').length, 2, 'the polls are one line that moves')
  t.match(m.summary, /^discovered: QEMU PowerEdge R650, serial SN & 42=x, 1 NIC; waiting/)
  t.ok(m.timeline.some((e: { step: string; what: string }) => e.step === 'report' && e.what === 'reported QEMU PowerEdge R650, serial SN & 42=x, 1 NIC'))

  const bad = await o.app.inject({ url: '/discovery/report?mac=nonsense&product=zz' })
  t.equal(bad.statusCode, 400, 'a report without a valid MAC is refused')
})

t.test('discovery exit (no discovery settings): /ipxe for an unknown machine is the 404 it was', async (t) => {
  const o = await operatorApp(t, { token: TOKEN, noDefaultGroup: true })
  const r = await o.app.inject({ url: POLL })
  t.equal(r.statusCode, 404)
  t.match(r.body, /^no group matches/)
})

t.test('a group selecting a reported fact picks the holding machine up on its next poll', async (t) => {
  const o = await operatorApp(t, { token: TOKEN, noDefaultGroup: true, discovery: { pollSeconds: 5 } })
  await o.app.inject({ url: POLL })
  await o.app.inject({ url: REPORT })
  const put = await o.app.inject({ method: 'PUT', url: '/v1/groups/r650', headers: AUTH, payload: { id: 'r650', profile: 'live', selector: { product: 'PowerEdge R650' } } })
  t.equal(put.statusCode, 200)
  const r = await o.app.inject({ url: POLL })
  t.equal(r.statusCode, 200)
  t.match(r.body, /^#!ipxe\nkernel http:\/\/10\.213\.9\.2:8080\/assets\/fcos\/kernel/)
  t.equal(o.machines.get(MAC)?.group, 'r650')
  const view = (await o.app.inject({ url: `/v1/machines/${MAC}` })).json()
  t.equal(view.status, 'booting', 'no longer discovered once it got a profile')
  // A query label wins over the stored fact: the machine's own claim now is what it is matched on.
  const other = await o.app.inject({ url: `${POLL}&product=Other` })
  t.match(other.body, /pxebox: this machine matches no group yet/)
})

t.test('assign: creates <group>.assigned with the MAC, the next poll boots its profile; reassigning moves it', async (t) => {
  const o = await operatorApp(t, { token: TOKEN, noDefaultGroup: true, discovery: { pollSeconds: 5 } })
  await o.app.inject({ url: POLL })
  await o.app.inject({ url: REPORT })
  const noToken = await o.app.inject({ method: 'POST', url: `/v1/machines/${MAC}/assign`, payload: { group: 'rack1' } })
  t.equal(noToken.statusCode, 401, 'writes need the token')
  const a = await o.app.inject({ method: 'POST', url: `/v1/machines/${HYP}/assign`, headers: AUTH, payload: { group: 'rack1' } })
  t.equal(a.statusCode, 200, a.body)
  const g = o.store.get().groups.find((x) => x.id === 'rack1.assigned')
  t.same(g?.selector, { mac: [MAC] })
  t.equal(g?.profile, 'installer')
  const boot = await o.app.inject({ url: POLL })
  t.match(boot.body, /^#!ipxe\nkernel http:\/\/10\.213\.9\.2:8080\/assets\/fcos\/kernel .*coreos\.inst\.install_dev=\/dev\/vda/)

  // A second machine extends the same group.
  const b = await o.app.inject({ method: 'POST', url: `/v1/machines/52:54:00:77:00:02/assign`, headers: AUTH, payload: { group: 'rack1' } })
  t.equal(b.statusCode, 404, 'assigned, but no record of that MAC yet')
  t.same(o.store.get().groups.find((x) => x.id === 'rack1.assigned')?.selector, { mac: [MAC, '52:54:00:77:00:02'] })

  // Reassigning to an API-written MAC-list group extends that one and takes the MAC out of the first.
  await o.app.inject({ method: 'PUT', url: '/v1/groups/lab', headers: AUTH, payload: { id: 'lab', profile: 'live', selector: { mac: ['52:54:00:77:00:09'] } } })
  const c = await o.app.inject({ method: 'POST', url: `/v1/machines/${MAC}/assign`, headers: AUTH, payload: { group: 'lab' } })
  t.equal(c.statusCode, 200)
  t.same(o.store.get().groups.find((x) => x.id === 'lab')?.selector, { mac: ['52:54:00:77:00:09', MAC] })
  t.same(o.store.get().groups.find((x) => x.id === 'rack1.assigned')?.selector, { mac: ['52:54:00:77:00:02'] })
  t.match((await o.app.inject({ url: POLL })).body, /^#!ipxe\nkernel http:\/\/10\.213\.9\.2:8080\/assets\/fcos\/kernel initrd=initramfs.img\n/, "the live profile now")

  t.equal((await o.app.inject({ method: 'POST', url: `/v1/machines/${MAC}/assign`, headers: AUTH, payload: { group: 'nope' } })).statusCode, 404)
})

t.test('/boot.ipxe sends the serial as hex; a serial with &, =, + and non-ASCII matches its group', async (t) => {
  const o = await operatorApp(t, { token: TOKEN, noDefaultGroup: true })
  const serial = 'A&B=C +é/1'
  await o.app.inject({ method: 'PUT', url: '/v1/groups/odd', headers: AUTH, payload: { id: 'odd', profile: 'live', selector: { serial } } })
  t.match((await o.app.inject({ url: '/boot.ipxe' })).body, '&serial_hex=${serial:hexraw}&')
  const r = await o.app.inject({ url: `/ipxe?mac=52-54-00-77-00-05&serial_hex=${hex(serial)}&platform=efi` })
  t.equal(r.statusCode, 200, r.body)
  t.equal(o.machines.get('52:54:00:77:00:05')?.serial, serial)
  t.equal((await o.app.inject({ url: '/ipxe?mac=52-54-00-77-00-05&serial_hex=zz' })).statusCode, 404, 'bad hex is dropped, not matched')
})
