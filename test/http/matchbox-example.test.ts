// The Matchbox-layout example under examples/matchbox (Typhoon's patterns) served end to end through buildApp.
import t from 'tap'
import { fileURLToPath } from 'node:url'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { buildApp } from '../../src/http/app.js'
import { createBootStore } from '../../src/catalog/boot-store.js'

const EXAMPLE = fileURLToPath(new URL('../../examples/matchbox', import.meta.url))
const PUBLIC = 'http://pxebox.example:8080'

t.test('examples/matchbox loads and boots machines the Typhoon way', async (t) => {
  const store = await createBootStore({ profiles: {}, groups: [], matchboxDir: EXAMPLE, watch: false })
  t.teardown(() => store.close())
  const app = buildApp({ store, assetsDir: join(EXAMPLE, 'assets'), publicUrl: PUBLIC, version: 'test' })
  t.teardown(() => app.close())
  t.equal(store.get().groups.length, 4)
  t.equal(store.get().profiles.size, 4)

  t.test('Fedora CoreOS live install: kernel args point back at /ignition', async (t) => {
    const res = await app.inject({ url: '/ipxe?mac=52-54-00-a1-9c-ae&uuid=&arch=x86_64&platform=efi' })
    t.equal(res.statusCode, 200)
    t.equal(
      res.body,
      '#!ipxe\n' +
        'kernel http://pxebox.example:8080/assets/fedora-coreos/fedora-coreos-40.20240616.3.0-live-kernel-x86_64 initrd=main ' +
        'coreos.live.rootfs_url=http://pxebox.example:8080/assets/fedora-coreos/fedora-coreos-40.20240616.3.0-live-rootfs.x86_64.img ' +
        'coreos.inst.install_dev=/dev/sda coreos.inst.ignition_url=http://pxebox.example:8080/ignition?uuid=${uuid}&mac=${mac:hexhyp} ' +
        'console=tty0 console=ttyS0,115200n8\n' +
        'initrd --name main http://pxebox.example:8080/assets/fedora-coreos/fedora-coreos-40.20240616.3.0-live-initramfs.x86_64.img\n' +
        'boot\n',
    )
    // What the installer then fetches, after iPXE expanded ${uuid} and ${mac:hexhyp}.
    const ign = await app.inject({ url: '/ignition?uuid=4c4c4544-0042-3510-8052-b4c04f4b4e32&mac=52-54-00-a1-9c-ae' })
    t.equal(ign.statusCode, 200)
    t.equal(ign.body, await readFile(join(EXAMPLE, 'ignition', 'fcos-node.ign'), 'utf8'))
    t.same(JSON.parse(ign.body).ignition, { version: '3.4.0' })
    const gen = await app.inject({ url: '/generic?mac=52:54:00:a1:9c:ae' })
    t.equal(gen.body, 'ROLE=controller\n')
    const md = await app.inject({ url: '/metadata?mac=52:54:00:a1:9c:ae' })
    t.match(md.body, /^ETCD_INITIAL_CLUSTER=node1=https:\/\/node1.example.com:2380\nETCD_NAME=node1\nHOSTNAME=node1.example.com\nK8S_ROLE=controller\nMAC=52:54:00:a1:9c:ae\n/)
  })

  t.test("Typhoon cached_install profile (initrd=main without --name) still names the initrd main", async (t) => {
    for (const mac of ['52-54-00-c3-61-77', '52-54-00-c3-61-78']) {
      const res = await app.inject({ url: `/ipxe?mac=${mac}` })
      t.equal(res.statusCode, 200, mac)
      t.match(res.body, /^kernel \S+ initrd=main coreos\.live\.rootfs_url=/m)
      t.match(res.body, /^initrd --name main http:\/\/pxebox.example:8080\/assets\/fedora-coreos\/fedora-coreos-40.20240616.3.0-live-initramfs.x86_64.img$/m)
    }
  })

  t.test('Flatcar two-stage: install profile by MAC, installed profile by MAC + os=installed', async (t) => {
    const pxe = await app.inject({ url: '/ipxe?mac=52-54-00-b2-2f-86&uuid=&arch=i386&platform=pcbios' })
    t.equal(
      pxe.body,
      '#!ipxe\n' +
        'kernel http://pxebox.example:8080/assets/flatcar/3815.2.5/flatcar_production_pxe.vmlinuz initrd=flatcar_production_pxe_image.cpio.gz ' +
        'flatcar.config.url=http://pxebox.example:8080/ignition?uuid=${uuid}&mac=${mac:hexhyp} flatcar.first_boot=yes console=tty0 console=ttyS0\n' +
        'initrd --name flatcar_production_pxe_image.cpio.gz http://pxebox.example:8080/assets/flatcar/3815.2.5/flatcar_production_pxe_image.cpio.gz\n' +
        'boot\n',
    )
    const stage1 = await app.inject({ url: '/ignition?uuid=&mac=52-54-00-b2-2f-86' })
    t.equal(stage1.body, await readFile(join(EXAMPLE, 'ignition', 'flatcar-install.ign'), 'utf8'))
    // The installer fetches with the kernel's colon MAC and os=installed.
    const stage2 = await app.inject({ url: '/ignition?mac=52:54:00:b2:2f:86&os=installed' })
    t.equal(stage2.body, await readFile(join(EXAMPLE, 'ignition', 'flatcar-worker.ign'), 'utf8'))
    // The installed profile has no network boot: if the disk boot fails and the machine PXE boots with os=installed
    // somehow, it gets a clear 404 rather than a reinstall.
    const noBoot = await app.inject({ url: '/ipxe?mac=52:54:00:b2:2f:86&os=installed' })
    t.equal(noBoot.statusCode, 404)
  })

  t.test('unknown machine: 404 (the example has no default group)', async (t) => {
    const res = await app.inject({ url: '/ipxe?mac=52-54-00-00-00-01' })
    t.equal(res.statusCode, 404)
  })
})
