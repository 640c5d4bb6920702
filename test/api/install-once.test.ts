import t from 'tap'
import { operatorApp, TOKEN } from './fixture.js'

const MAC = '52:54:00:00:09:04'
const Q = `/ipxe?mac=52-54-00-00-09-04&uuid=&serial=&hostname=&domain=&arch=x86_64&platform=efi`

t.test('boot_once end to end by inject: installer, installed callback, local boot, re-arm, installer again', async (t) => {
  const o = await operatorApp(t, { token: TOKEN })
  const ip = '10.213.9.14'
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
      ':local_efi',
      'exit',
      '',
    ].join('\n'),
  )
  const view = (await o.app.inject({ url: `/v1/machines/${MAC}` })).json()
  t.equal(view.status, 'local-boot')
  t.equal(view.boots, 1, 'no DHCP seen between: still the same attempt')
  t.same(view.timeline.map((e: { step: string }) => e.step), ['ipxe', 'kernel', 'initrd', 'ignition', 'installed', 'local-boot'])

  // Another machine of a profile without boot_once never gets the local boot even after a callback.
  const other = '52:54:00:00:77:01'
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
  await o.app.inject({ url: Q, remoteAddress: ip })
  t.equal((await o.app.inject({ method: 'POST', url: `/v1/machines/${MAC}/installed`, remoteAddress: ip })).statusCode, 200)
  await o.app.close()
  await o.machines.close()
  const again = await operatorApp(t, { token: TOKEN, dir: o.dir })
  const r = await again.app.inject({ url: Q, remoteAddress: ip })
  t.match(r.body, /booting from local disk/)
})
