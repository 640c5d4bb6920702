import t, { type Test } from 'tap'
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { buildApp } from '../../src/http/app.js'
import { loadBootState, type BootState } from '../../src/catalog/state.js'
import { memoryEvents } from '../../src/machines/events.js'
import type { GroupInput, ProfileInput } from '../../src/catalog/model-schema.js'

const PUBLIC = 'http://10.213.0.2:8080'

const profiles: Record<string, ProfileInput> = {
  // BIOS: Debian netboot style, one initrd, no name given.
  'debian-bios': {
    boot: { kernel: '/assets/debian/linux', initrd: ['/assets/debian/initrd.gz'], args: ['console=ttyS0', 'priority=critical'] },
    generic: 'debian.cfg',
  },
  // EFI: FCOS live with Typhoon's --name main / initrd=main pair and an absolute rootfs URL.
  'fcos-efi': {
    boot: {
      kernel: '/assets/fcos/kernel-x86_64',
      initrd: ['--name main /assets/fcos/initramfs.x86_64.img'],
      args: ['initrd=main', 'coreos.live.rootfs_url=http://10.213.0.2:8080/assets/fcos/rootfs.img', 'coreos.inst.install_dev=/dev/sda', 'coreos.inst.ignition_url=http://10.213.0.2:8080/ignition?uuid=${uuid}&mac=${mac:hexhyp}'],
    },
    ignition: 'fcos.ign',
  },
  // Two initrds from elsewhere, one named, plus a stale initrd= reference (Typhoon cached_install pattern).
  'multi': {
    boot: { kernel: 'http://mirror.example/vmlinuz', initrd: ['http://mirror.example/a/initrd.img?x=1', '--name fw http://mirror.example/firmware.cpio'], args: ['initrd=main', 'quiet'] },
  },
  'ign-only': { ignition: 'old.ign' },
  'butane': { ignition: 'node.bu' },
}

const groups: GroupInput[] = [
  { id: 'bios', profile: 'debian-bios', selector: { platform: 'pcbios' }, metadata: { role: 'worker', net: { dns: '10.213.0.1', search: ['a.example', 'b.example'] } } },
  { id: 'efi', profile: 'fcos-efi', selector: { platform: 'efi', arch: ['x86_64', 'arm64'] } },
  { id: 'multi', profile: 'multi', selector: { mac: '52:54:00:00:00:aa' } },
  { id: 'ign-only', profile: 'ign-only', selector: { mac: '52:54:00:00:00:bb' } },
  { id: 'butane', profile: 'butane', selector: { mac: '52:54:00:00:00:cc' } },
]

async function setup(t: Test) {
  const dir = await mkdtemp(join(tmpdir(), 'pxebox-http-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  await mkdir(join(dir, 'ignition'))
  await mkdir(join(dir, 'generic'))
  await writeFile(join(dir, 'ignition', 'fcos.ign'), '{"ignition":{"version":"3.4.0"}}\n')
  await writeFile(join(dir, 'ignition', 'old.ign'), '{"ignition":{"version":"3.0.0"}}')
  await writeFile(join(dir, 'ignition', 'node.bu'), 'variant: fcos\nversion: 1.5.0\n')
  await writeFile(join(dir, 'generic', 'debian.cfg'), 'd-i debian-installer/locale string en_US\n')
  const r = await loadBootState({ profiles, groups, ignitionDir: join(dir, 'ignition'), genericDir: join(dir, 'generic') })
  if (!r.ok) throw new Error(r.errors.join('\n'))
  const state: BootState = r.state
  const events = memoryEvents()
  const app = buildApp({ store: { get: () => state }, assetsDir: dir, publicUrl: PUBLIC, events, version: '9.9.9' })
  t.teardown(() => app.close())
  return { app, events }
}

t.test('/boot.ipxe and /boot.ipxe.0 chain to /ipxe with identity variables', async (t) => {
  const { app, events } = await setup(t)
  const expected =
    '#!ipxe\n' +
    'chain http://10.213.0.2:8080/ipxe?mac=${mac:hexhyp}&uuid=${uuid}&serial_hex=${serial:hexraw}&hostname=${hostname:uristring}' +
    '&domain=${domain:uristring}&arch=${buildarch}&platform=${platform}\n'
  for (const url of ['/boot.ipxe', '/boot.ipxe.0']) {
    const res = await app.inject({ url })
    t.equal(res.statusCode, 200)
    t.equal(res.body, expected, url)
    t.match(res.headers['content-type'], /^text\/plain/)
  }
  t.equal(events.events[0]?.step, 'script')
})

t.test('/ipxe renders the exact script for a BIOS profile', async (t) => {
  const { app, events } = await setup(t)
  const res = await app.inject({ url: '/ipxe?mac=52-54-00-12-34-56&uuid=&serial=&hostname=&arch=i386&platform=pcbios' })
  t.equal(res.statusCode, 200)
  t.equal(
    res.body,
    '#!ipxe\n' +
      'kernel http://10.213.0.2:8080/assets/debian/linux initrd=initrd.gz console=ttyS0 priority=critical\n' +
      'initrd --name initrd.gz http://10.213.0.2:8080/assets/debian/initrd.gz\n' +
      'boot\n',
  )
  const e = events.events.at(-1)!
  t.match(e, { kind: 'http', step: 'ipxe', mac: '52:54:00:12:34:56', outcome: 'ok', detail: { group: 'bios', profile: 'debian-bios', status: 200 } })
})

t.test('/ipxe renders the exact script for an EFI profile (Typhoon --name main + initrd=main kept once)', async (t) => {
  const { app } = await setup(t)
  const res = await app.inject({ url: '/ipxe?mac=52-54-00-12-34-57&arch=x86_64&platform=efi' })
  t.equal(res.statusCode, 200)
  t.equal(
    res.body,
    '#!ipxe\n' +
      'kernel http://10.213.0.2:8080/assets/fcos/kernel-x86_64 initrd=main coreos.live.rootfs_url=http://10.213.0.2:8080/assets/fcos/rootfs.img ' +
      'coreos.inst.install_dev=/dev/sda coreos.inst.ignition_url=http://10.213.0.2:8080/ignition?uuid=${uuid}&mac=${mac:hexhyp}\n' +
      'initrd --name main http://10.213.0.2:8080/assets/fcos/initramfs.x86_64.img\n' +
      'boot\n',
  )
  const arm = await app.inject({ url: '/ipxe?arch=arm64&platform=efi' })
  t.equal(arm.statusCode, 200, 'list selector: arm64 is one of the accepted arches')
  const i386 = await app.inject({ url: '/ipxe?arch=i386&platform=efi' })
  t.equal(i386.statusCode, 404)
})

t.test('/ipxe: stale initrd= name binds to the first unnamed initrd; remote URLs untouched', async (t) => {
  const { app } = await setup(t)
  const res = await app.inject({ url: '/ipxe?mac=52:54:00:00:00:AA' })
  t.equal(
    res.body,
    '#!ipxe\n' +
      'kernel http://mirror.example/vmlinuz initrd=fw initrd=main quiet\n' +
      'initrd --name main http://mirror.example/a/initrd.img?x=1\n' +
      'initrd --name fw http://mirror.example/firmware.cpio\n' +
      'boot\n',
  )
})

t.test('no match: 404 with a one-line reason, logged as an event', async (t) => {
  const { app, events } = await setup(t)
  for (const url of ['/ipxe?mac=52:54:00:99:99:99', '/ignition?mac=52:54:00:99:99:99', '/generic?mac=nonsense', '/metadata']) {
    const res = await app.inject({ url })
    t.equal(res.statusCode, 404, url)
    t.match(res.body, /^no group matches .* \(5 groups, no default group\)\n$/, url)
    t.equal(res.body.split('\n').length, 2, 'one line')
  }
  t.match(events.events.at(0), { step: 'ipxe', outcome: 'no-match', mac: '52:54:00:99:99:99', detail: { status: 404 } })
  t.match(events.events.at(2), { step: 'generic', detail: { dropped: ['mac=nonsense'] } })
  const none = await app.inject({ url: '/ipxe?mac=52:54:00:00:00:bb' })
  t.equal(none.statusCode, 404)
  t.equal(none.body, 'profile "ign-only" (group "ign-only") has no boot kernel\n')
})

t.test('/ignition serves the profile Ignition JSON as written, Butane translated at load', async (t) => {
  const { app, events } = await setup(t)
  const ok = await app.inject({ url: '/ignition?uuid=&mac=52-54-00-00-00-01&platform=efi&arch=x86_64' })
  t.equal(ok.statusCode, 200)
  t.equal(ok.body, '{"ignition":{"version":"3.4.0"}}\n')
  t.match(ok.headers['content-type'], /^application\/json/)
  t.match(events.events.at(-1), { step: 'ignition', detail: { group: 'efi', template: 'fcos.ign' } })
  const old = await app.inject({ url: '/ignition?mac=52:54:00:00:00:bb' })
  t.equal(old.statusCode, 200)
  t.equal(old.body, '{"ignition":{"version":"3.0.0"}}')
  const bu = await app.inject({ url: '/ignition?mac=52:54:00:00:00:cc' })
  t.equal(bu.statusCode, 200)
  t.same(JSON.parse(bu.body), { ignition: { version: '3.4.0' } })
  const none = await app.inject({ url: '/ignition?platform=pcbios' })
  t.equal(none.statusCode, 404)
  t.equal(none.body, 'profile "debian-bios" (group "bios") has no ignition config\n')
})

t.test('/generic and /metadata', async (t) => {
  const { app } = await setup(t)
  const gen = await app.inject({ url: '/generic?platform=pcbios' })
  t.equal(gen.body, 'd-i debian-installer/locale string en_US\n')
  const md = await app.inject({ url: '/metadata?platform=pcbios&mac=52-54-00-12-34-56&hostname=n1' })
  t.equal(md.statusCode, 200)
  t.equal(
    md.body,
    'NET_DNS=10.213.0.1\n' +
      'NET_SEARCH=a.example,b.example\n' +
      'PLATFORM=pcbios\n' +
      'REQUEST_QUERY_HOSTNAME=n1\n' +
      'REQUEST_QUERY_MAC=52:54:00:12:34:56\n' +
      'REQUEST_QUERY_PLATFORM=pcbios\n' +
      'REQUEST_RAW_QUERY=platform=pcbios&mac=52-54-00-12-34-56&hostname=n1\n' +
      'ROLE=worker\n',
  )
  const md2 = await app.inject({ url: '/metadata?platform=efi&arch=arm64' })
  t.match(md2.body, /^ARCH=arm64\n/m, 'list selector: the value the machine sent')
})

t.test('GET / status page', async (t) => {
  const { app } = await setup(t)
  const res = await app.inject({ url: '/' })
  t.equal(res.statusCode, 200)
  t.match(res.body, /pxebox 9\.9\.9/)
  t.match(res.body, /5 groups, 5 profiles, default group: none/)
  t.match(res.body, /href="\/boot.ipxe"/)
  const missing = await app.inject({ url: '/nope' })
  t.equal(missing.statusCode, 404)
})
