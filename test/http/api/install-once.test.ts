import t from 'tap'
import { operatorApp, TOKEN } from './fixture.js'
import type { BootEvent } from '../../../src/machines/events.js'

const MAC = '52:54:00:00:09:04'
const Q = `/ipxe?mac=52-54-00-00-09-04&uuid=&serial=&hostname=&domain=&arch=x86_64&platform=efi`

/** What the proxyDHCP service records when iPXE's REQUEST to port 4011 arrives from `ip` with chaddr `mac`. */
const dhcpFrom = (mac: string, ip: string): BootEvent => ({
  time: new Date().toISOString(),
  kind: 'dhcp',
  mac,
  ip,
  step: 'ack',
  outcome: 'ok',
  detail: { port: 4011, arch: 7, client_class: 'iPXE' },
})

t.test('boot_once end to end by inject: installer, installed callback, local boot, re-arm, installer again', async (t) => {
  const o = await operatorApp(t, { token: TOKEN })
  const ip = '10.213.9.14'
  o.feed([dhcpFrom(MAC, ip)])
  const first = await o.app.inject({ url: Q, remoteAddress: ip })
  t.equal(first.statusCode, 200)
  t.match(first.body, /^#!ipxe\n/)
  t.match(first.body, /kernel http:\/\/10\.213\.9\.2:8080\/assets\/fcos\/kernel /, 'first boot: the installer')
  // The installer downloads its kernel and initrd and fetches Ignition (recorded as timeline stages).
  t.equal((await o.app.inject({ url: '/assets/fcos/kernel', remoteAddress: ip })).statusCode, 200)
  t.equal((await o.app.inject({ url: '/assets/fcos/initramfs.img', remoteAddress: ip })).statusCode, 200)
  t.equal((await o.app.inject({ url: '/ignition?mac=52-54-00-00-09-04', remoteAddress: ip })).statusCode, 200)

  const done = await o.app.inject({ method: 'POST', url: `/v1/machines/${MAC}/installed`, remoteAddress: ip })
  t.equal(done.statusCode, 200)
  t.equal(done.json().boots_local, true)

  const second = await o.app.inject({ url: Q, remoteAddress: ip })
  t.equal(second.statusCode, 200)
  const installedAt = o.machines.get(MAC)!.installed_at!
  t.equal(
    second.body,
    [
      '#!ipxe',
      `# pxebox: ${MAC} reported installed at ${installedAt}; profile "installer" has boot_once: true.`,
      `# To install again: POST /v1/machines/${MAC}/rearm`,
      `echo pxebox: ${MAC} is installed, booting from local disk`,
      'iseq ${platform} efi && goto local_efi ||',
      'sanboot --no-describe --drive 0x80 ||',
      'exit',
      ':local_efi',
      'exit 1',
      '',
    ].join('\n'),
  )
  const view = (await o.app.inject({ url: `/v1/machines/${MAC}` })).json()
  t.equal(view.status, 'local-boot')
  t.equal(view.boots, 1, 'no DHCP seen between: still the same attempt')
  t.same(view.timeline.map((e: { step: string }) => e.step), ['ack', 'ipxe', 'kernel', 'initrd', 'ignition', 'installed', 'local-boot'])

  // Another machine of a profile without boot_once never gets the local boot even after a callback.
  const other = '52:54:00:00:77:01'
  o.feed([dhcpFrom(other, '10.213.9.77')])
  await o.app.inject({ url: `/ipxe?mac=${other}`, remoteAddress: '10.213.9.77' })
  await o.app.inject({ method: 'POST', url: `/v1/machines/${other}/installed`, remoteAddress: '10.213.9.77' })
  t.match((await o.app.inject({ url: `/ipxe?mac=${other}`, remoteAddress: '10.213.9.77' })).body, /^kernel /m)

  t.equal((await o.app.inject({ method: 'POST', url: `/v1/machines/${MAC}/rearm` })).statusCode, 401, 're-arm needs the token')
  const rearm = await o.app.inject({ method: 'POST', url: `/v1/machines/${MAC}/rearm`, headers: { authorization: `Bearer ${TOKEN}` } })
  t.equal(rearm.statusCode, 200)
  t.equal(rearm.json().installed_at, undefined)
  const third = await o.app.inject({ url: Q, remoteAddress: ip })
  t.match(third.body, /kernel http:\/\/10\.213\.9\.2:8080\/assets\/fcos\/kernel /, 're-armed: the installer again')
})

t.test('install state survives a restart (new stores over the same data_dir)', async (t) => {
  const o = await operatorApp(t, { token: TOKEN })
  const ip = '10.213.9.14'
  o.feed([dhcpFrom(MAC, ip)])
  await o.app.inject({ url: Q, remoteAddress: ip })
  t.equal((await o.app.inject({ method: 'POST', url: `/v1/machines/${MAC}/installed`, remoteAddress: ip })).statusCode, 200)
  await o.app.close()
  await o.machines.close()
  const again = await operatorApp(t, { token: TOKEN, dir: o.dir })
  const r = await again.app.inject({ url: Q, remoteAddress: ip })
  t.match(r.body, /booting from local disk/)
})

t.test('another host cannot mark a machine installed by claiming its MAC in a query label or a TFTP path prefix', async (t) => {
  const o = await operatorApp(t, { token: TOKEN })
  const victimIp = '10.213.9.14'
  const attacker = '10.213.9.66'
  o.feed([dhcpFrom(MAC, victimIp)])
  t.equal((await o.app.inject({ url: Q, remoteAddress: victimIp })).statusCode, 200)
  // The attack: the attacker's address appears next to the victim's MAC in HTTP and TFTP traffic it sends itself.
  t.equal((await o.app.inject({ url: Q, remoteAddress: attacker })).statusCode, 200)
  o.feed([{ time: new Date().toISOString(), kind: 'tftp', mac: MAC, ip: attacker, step: 'file', outcome: 'ok', detail: { file: `${MAC}/ipxe.efi` } }])
  t.ok(o.machines.get(MAC)!.ips.includes(attacker), 'the record shows the claimed address (display only)')
  for (const method of ['POST', 'GET'] as const) {
    const r = await o.app.inject({ method, url: `/v1/machines/${MAC}/installed`, remoteAddress: attacker })
    t.equal(r.statusCode, 403, `${method} from the attacker refused`)
    t.match(r.json().error, /10\.213\.9\.66 is not an address pxebox has seen 52:54:00:00:09:04 use in DHCP \(10\.213\.9\.14\)/)
  }
  t.equal(o.machines.get(MAC)!.installed_at, undefined, 'the victim is not marked installed')
  t.match((await o.app.inject({ url: Q, remoteAddress: victimIp })).body, /kernel http:\/\/10\.213\.9\.2:8080\/assets\/fcos\/kernel /, 'the victim still gets its installer')
  // The legitimate callback, from the address the MAC used in DHCP, still works (README "Install once").
  const ok = await o.app.inject({ method: 'POST', url: `/v1/machines/${MAC}/installed`, remoteAddress: victimIp })
  t.equal(ok.statusCode, 200)
  t.equal(ok.json().boots_local, true)
  t.match((await o.app.inject({ url: Q, remoteAddress: victimIp })).body, /booting from local disk/)
})
