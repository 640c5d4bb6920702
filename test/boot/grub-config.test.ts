/**
 * GRUB configs for the Secure Boot chain (issue 19): golden text per profile shape, the quoting attack corpus, the
 * local-boot and unknown-machine configs, and every config file name GRUB and distributions try.
 */
import t from 'tap'
import { planBoot, type BootPlan } from '../../src/catalog/boot-plan.js'
import {
  expandIpxeVariables,
  grubAssetPath,
  grubBootstrapConfig,
  grubQuote,
  renderGrubBootConfig,
  renderGrubLocalBootConfig,
  renderGrubMessageConfig,
  type GrubMachine,
} from '../../src/boot/grub-config.js'
import { grubConfigIdentity, grubConfigSearchNames, ipMatchesGrubHex } from '../../src/boot/grub-config-names.js'

function plan(kernel: string, initrd: string[], args: string[]): BootPlan {
  const r = planBoot(kernel, initrd, args)
  if (!r.ok) throw new Error(r.errors.join('; '))
  return r.value
}

const machine: GrubMachine = { mac: '52:54:00:a1:00:01', uuid: '8d3c1f2e-0000-4000-8000-525400a10001', ip: '10.0.0.101' }
const target = { publicUrl: 'http://10.0.0.2:8080', server: '10.0.0.2' }

function render(p: BootPlan, m: GrubMachine = machine, tg: { publicUrl: string; server?: string } = target): string {
  const r = renderGrubBootConfig(p, m, tg, 'profile "x"')
  if (!r.ok) throw new Error(r.errors.join('; '))
  return r.value
}

t.test('golden: Fedora CoreOS live (examples/ignition/fcos-live-install.yaml)', async (t) => {
  const p = plan('/assets/fedora-coreos/fedora-coreos-live-kernel-x86_64', ['--name main /assets/fedora-coreos/fedora-coreos-live-initramfs.x86_64.img'], [
    'initrd=main',
    'coreos.live.rootfs_url=http://10.0.0.2:8080/assets/fedora-coreos/fedora-coreos-live-rootfs.x86_64.img',
    'coreos.inst.install_dev=/dev/sda',
    'coreos.inst.ignition_url=http://10.0.0.2:8080/ignition?mac=${mac:hexhyp}&stage=installed',
    'console=tty0',
    'console=ttyS0,115200n8',
  ])
  t.equal(
    render(p),
    [
      '# pxebox: generated for this machine; see GET /v1/machines/<mac> for what it fetched',
      `echo 'pxebox: 52:54:00:a1:00:01: profile "x"'`,
      'linux (tftp,10.0.0.2)/assets/fedora-coreos/fedora-coreos-live-kernel-x86_64' +
        ' coreos.live.rootfs_url=http://10.0.0.2:8080/assets/fedora-coreos/fedora-coreos-live-rootfs.x86_64.img' +
        ' coreos.inst.install_dev=/dev/sda' +
        // `?` is a GRUB wildcard and `&` a metacharacter: quoted. ${mac:hexhyp} filled in by pxebox.
        ` 'coreos.inst.ignition_url=http://10.0.0.2:8080/ignition?mac=52-54-00-a1-00-01&stage=installed'` +
        ' console=tty0 console=ttyS0,115200n8',
      'initrd (tftp,10.0.0.2)/assets/fedora-coreos/fedora-coreos-live-initramfs.x86_64.img',
      'boot',
      '',
    ].join('\n'),
  )
})

t.test('golden: Flatcar (Matchbox profile, absolute Ignition URL with uuid and mac), paths on $root', async (t) => {
  const p = plan('/assets/flatcar/3815.2.5/flatcar_production_pxe.vmlinuz', ['/assets/flatcar/3815.2.5/flatcar_production_pxe_image.cpio.gz'], [
    'initrd=flatcar_production_pxe_image.cpio.gz',
    'flatcar.config.url=http://pxebox.example:8080/ignition?uuid=${uuid}&mac=${mac:hexhyp}',
    'flatcar.first_boot=yes',
  ])
  t.equal(
    render(p, machine, { publicUrl: 'http://pxebox.example:8080/' }),
    [
      '# pxebox: generated for this machine; see GET /v1/machines/<mac> for what it fetched',
      `echo 'pxebox: 52:54:00:a1:00:01: profile "x"'`,
      'linux /assets/flatcar/3815.2.5/flatcar_production_pxe.vmlinuz' +
        ` 'flatcar.config.url=http://pxebox.example:8080/ignition?uuid=8d3c1f2e-0000-4000-8000-525400a10001&mac=52-54-00-a1-00-01'` +
        ' flatcar.first_boot=yes',
      'initrd /assets/flatcar/3815.2.5/flatcar_production_pxe_image.cpio.gz',
      'boot',
      '',
    ].join('\n'),
  )
})

t.test('golden: several initrds go on one initrd line; absolute URLs on pxebox map to TFTP; no initrd', async (t) => {
  const p = plan('http://10.0.0.2:8080/assets/k', ['--name main /assets/a.img', '--timeout 5000 http://10.0.0.2:8080/assets/fw.cpio extra'], ['initrd=main', 'quiet'])
  t.equal(render(p).split('\n').slice(2).join('\n'), 'linux (tftp,10.0.0.2)/assets/k quiet\ninitrd (tftp,10.0.0.2)/assets/a.img (tftp,10.0.0.2)/assets/fw.cpio\nboot\n')
  t.equal(render(plan('/assets/k', [], ['quiet'])).split('\n').slice(2).join('\n'), 'linux (tftp,10.0.0.2)/assets/k quiet\nboot\n', 'no initrd line')
  t.match(render(plan('/assets/k', ['--name main /assets/i.img'], ['initrd=other'])), / initrd=other\n/, 'an initrd= naming no initrd of the profile is the author\'s: kept')
})

t.test('assets GRUB cannot load are load-time errors naming the file', async (t) => {
  const cases: [string, RegExp][] = [
    ['http://mirror.example/k', /not under http:\/\/10\.0\.0\.2:8080\/assets\/: GRUB loads kernel and initrds over TFTP only/],
    ['/other/k', /not under/],
    ['/assets/k?v=1', /query, fragment or variable/],
    ['/assets/${buildarch}/k', /query, fragment or variable/],
    ['/assets/a/../../k', /\.\. path segment/],
    ['/assets//k', /empty/],
    ['tftp://10.0.0.2/k', /not under/],
  ]
  for (const [url, re] of cases) {
    const r = grubAssetPath(url, target.publicUrl)
    t.notOk(r.ok, url)
    if (!r.ok) t.match(r.errors.join('\n'), re, url)
  }
  const r = renderGrubBootConfig(plan('http://mirror.example/k', ['/other/i.img'], []), machine, target, 'p')
  t.notOk(r.ok)
  if (!r.ok) t.equal(r.errors.length, 2, 'kernel and initrd both reported')
})

t.test('quoting: no arg can inject a GRUB command or expand a GRUB variable', async (t) => {
  // What GRUB's lexer would do with each unquoted (manual, "Shell-like scripting"), and the word pxebox writes.
  const corpus: [string, string][] = [
    ['a b', `'a b'`], //                                  two words
    ['x;reboot', `'x;reboot'`], //                        command separator
    ['$root', `'$root'`], //                              variable expansion
    ['${prefix}/x', `'\${prefix}/x'`],
    ['a"b', `'a"b'`], //                                  double quotes still expand $
    ["it's", `'it'\\''s'`], //                            a ' cannot occur inside '...'
    ["'", `''\\'''`],
    ['a\\b', `'a\\b'`], //                                escape character
    ['{', `'{'`], ['}', `'}'`], //                        block delimiters
    ['a|b', `'a|b'`], ['a&b', `'a&b'`], ['a<b', `'a<b'`], ['a>b', `'a>b'`],
    ['*', `'*'`], ['a?', `'a?'`], ['[ab]', `'[ab]'`], //  wildcards (regexp module)
    ['#x', `'#x'`], //                                    comment at word start
    ['a\tb', `'a\tb'`], //                                tab separates words
    ['', `''`], //                                        an empty arg stays an arg
    ['console=ttyS0,115200n8', 'console=ttyS0,115200n8'],
  ]
  for (const [word, quoted] of corpus) t.equal(grubQuote(word), quoted, JSON.stringify(word))
  for (const bad of ['a\nreboot', 'a\rb', 'a\0b', 'a\x1bb', 'a\x7fb']) {
    t.throws(() => grubQuote(bad), /line break or control character/, JSON.stringify(bad))
  }
  // Through the renderer: the whole attack corpus lands on the linux line as literal words.
  const attack = ["x';reboot;echo '", '$(reboot)', '$root', 'a"; reboot; "', '}{', '\\']
  const r = renderGrubBootConfig({ kernel: '/assets/k', initrds: [], args: attack }, machine, target, 'p')
  t.ok(r.ok)
  if (r.ok) {
    const lines = r.value.split('\n')
    t.equal(lines.length, 5, 'still exactly comment, echo, linux, boot and the final newline')
    t.equal(lines[2], `linux (tftp,10.0.0.2)/assets/k 'x'\\'';reboot;echo '\\''' '$(reboot)' '$root' 'a"; reboot; "' '}{' '\\'`)
  }
  const nl = renderGrubBootConfig({ kernel: '/assets/k', initrds: [], args: ['}\nmenuentry x {'] }, machine, target, 'p')
  t.notOk(nl.ok, 'a newline in an arg (which planBoot already refuses) is refused here too')
  const label = renderGrubBootConfig({ kernel: '/assets/k', initrds: [], args: [] }, machine, target, 'profile "a\nreboot"')
  t.ok(label.ok && label.value.includes(`echo 'pxebox: 52:54:00:a1:00:01: profile "a?reboot"'`), 'a label from config cannot break the echo line')
})

t.test('iPXE variables: filled in from the machine, unknown ones refused', async (t) => {
  const ok = (arg: string, m: GrubMachine = machine) => {
    const r = expandIpxeVariables(arg, m)
    if (!r.ok) throw new Error(r.errors.join('; '))
    return r.value
  }
  t.equal(ok('${mac}|${mac:hex}|${mac:hexhyp}|${mac:hexraw}|${net0/mac:hexhyp}'), '52:54:00:a1:00:01|52:54:00:a1:00:01|52-54-00-a1-00-01|525400a10001|52-54-00-a1-00-01')
  t.equal(ok('${uuid}&${ip}&${buildarch}&${platform}'), '8d3c1f2e-0000-4000-8000-525400a10001&10.0.0.101&x86_64&efi')
  t.equal(ok('s=${serial:uristring}', { ...machine, serial: 'To be filled by O.E.M.' }), 's=To%20be%20filled%20by%20O.E.M.')
  t.equal(ok('h=${hostname}', { mac: machine.mac }), 'h=', 'known but unseen: empty, as iPXE expands an unset setting')
  t.equal(ok('no variables $here'), 'no variables $here', 'a bare $ is not an iPXE variable (and GRUB sees it quoted)')
  for (const bad of ['${next-server}', '${mac:ipv4}', '${uuid:hexhyp}', '${user-class}']) {
    const r = expandIpxeVariables(`x=${bad}`, machine)
    t.notOk(r.ok, bad)
    if (!r.ok) t.match(r.errors[0], `${bad} cannot be filled in for GRUB`)
  }
  t.equal(ok('a=${uuid}', { ...machine, uuid: "x';reboot" }), "a=x';reboot", 'values are data: the renderer quotes after filling in')
  const r = renderGrubBootConfig({ kernel: '/assets/k', initrds: [], args: ['a=${serial}'] }, { ...machine, serial: "';reboot;'" }, target, 'p')
  t.ok(r.ok && r.value.includes(`linux (tftp,10.0.0.2)/assets/k 'a='\\'';reboot;'\\'''\n`), 'a hostile serial number is quoted like any arg')
})

t.test('golden: local boot (install once) and unknown machine', async (t) => {
  t.equal(
    renderGrubLocalBootConfig('52:54:00:a1:00:01', 'fcos', '2026-11-27T15:00:00.000Z'),
    [
      `echo 'pxebox: 52:54:00:a1:00:01 reported installed at 2026-11-27T15:00:00.000Z; profile "fcos" has boot_once: true.'`,
      `echo 'pxebox: booting from local disk. To install again: POST /v1/machines/52:54:00:a1:00:01/rearm'`,
      'if search --no-floppy --file --set=root /EFI/BOOT/BOOTX64.EFI; then chainloader /EFI/BOOT/BOOTX64.EFI; boot; fi',
      'if search --no-floppy --file --set=root /EFI/debian/shimx64.efi; then chainloader /EFI/debian/shimx64.efi; boot; fi',
      'if search --no-floppy --file --set=root /EFI/ubuntu/shimx64.efi; then chainloader /EFI/ubuntu/shimx64.efi; boot; fi',
      'if search --no-floppy --file --set=root /EFI/fedora/shimx64.efi; then chainloader /EFI/fedora/shimx64.efi; boot; fi',
      'if search --no-floppy --file --set=root /EFI/redhat/shimx64.efi; then chainloader /EFI/redhat/shimx64.efi; boot; fi',
      'if search --no-floppy --file --set=root /EFI/centos/shimx64.efi; then chainloader /EFI/centos/shimx64.efi; boot; fi',
      'if search --no-floppy --file --set=root /EFI/rocky/shimx64.efi; then chainloader /EFI/rocky/shimx64.efi; boot; fi',
      'if search --no-floppy --file --set=root /EFI/opensuse/shim.efi; then chainloader /EFI/opensuse/shim.efi; boot; fi',
      'if search --no-floppy --file --set=root /EFI/Microsoft/Boot/bootmgfw.efi; then chainloader /EFI/Microsoft/Boot/bootmgfw.efi; boot; fi',
      "echo 'pxebox: no EFI loader found on the local disks; returning to firmware'",
      'sleep 10',
      'exit',
      '',
    ].join('\n'),
  )
  t.equal(
    renderGrubMessageConfig(['no group matches mac=52:54:00:a1:00:09 (3 groups, no default group)', "add a group; it's \nfine"]),
    [
      `echo 'pxebox: no group matches mac=52:54:00:a1:00:09 (3 groups, no default group)'`,
      `echo 'pxebox: add a group; it'\\''s ?fine'`,
      'sleep 10',
      'exit',
      '',
    ].join('\n'),
  )
  t.match(renderGrubMessageConfig(['x'], -3), /\nsleep 0\n/, 'a negative pause is no pause')
})

t.test('golden: bootstrap (the answer to /grub/grub.cfg)', async (t) => {
  const hex = '([0-9a-fA-F][0-9a-fA-F])'
  t.equal(
    grubBootstrapConfig(),
    [
      "# pxebox: each machine's own config is grub.cfg-01-<mac-dashes> (pxelinux naming, also searched by newer GRUBs)",
      `regexp --set=1:pxebox_m1 --set=2:pxebox_m2 --set=3:pxebox_m3 --set=4:pxebox_m4 --set=5:pxebox_m5 --set=6:pxebox_m6 '^${[hex, hex, hex, hex, hex, hex].join(':')}$' "$net_default_mac"`,
      'configfile "$prefix/grub.cfg-01-${pxebox_m1}-${pxebox_m2}-${pxebox_m3}-${pxebox_m4}-${pxebox_m5}-${pxebox_m6}"',
      "echo 'pxebox: no config for this machine (MAC not readable, or its config could not be loaded); returning to firmware'",
      'sleep 10',
      'exit',
      '',
    ].join('\n'),
  )
})

t.test('config file names: every variant GRUB and distributions try', async (t) => {
  const mac = { kind: 'mac', mac: '52:54:00:a1:00:01' }
  const cases: [string, unknown][] = [
    ['grub/grub.cfg', { kind: 'default' }],
    ['/grub/grub.cfg', { kind: 'default' }],
    ['grub.cfg', { kind: 'default' }],
    ['//grub/grub.cfg', { kind: 'default' }],
    ['/grub/grub.cfg-01-52-54-00-a1-00-01', mac],
    ['grub.cfg-01-52-54-00-A1-00-01', mac],
    ['grub/grub.cfg-52-54-00-a1-00-01', mac],
    ['grub/grub.cfg-52:54:00:a1:00:01', mac],
    ['grub.cfg-52:54:00:A1:00:01', mac],
    ['grub/grub.cfg-8D3C1F2E-0000-4000-8000-525400A10001', { kind: 'uuid', uuid: '8d3c1f2e-0000-4000-8000-525400a10001' }],
    ['grub.cfg-8d3c1f2e-0000-4000-8000-525400a10001', { kind: 'uuid', uuid: '8d3c1f2e-0000-4000-8000-525400a10001' }],
    ['grub/grub.cfg-0A000065', { kind: 'ip', hex: '0A000065', bits: 32 }],
    ['grub/grub.cfg-0A00006', { kind: 'ip', hex: '0A00006', bits: 28 }],
    ['grub.cfg-0A', { kind: 'ip', hex: '0A', bits: 8 }],
    ['grub.cfg-0', { kind: 'ip', hex: '0', bits: 4 }],
    // Not GRUB config names pxebox answers.
    ['grub/grub.cfg-', undefined],
    ['grub/grub.cfg-0a000065', undefined],
    ['grub/grub.cfg-0A0000650', undefined],
    ['grub/grub.cfg-02-52-54-00-a1-00-01', undefined],
    ['grub/grub.cfg-01-52-54-00-a1-00', undefined],
    ['grub/grub.cfg-default', undefined],
    ['grub/x86_64-efi/command.lst', undefined],
    ['boot/grub/grub.cfg', undefined],
    ['grub/grub.cfg/x', undefined],
    ['grubx64.efi', undefined],
  ]
  for (const [name, want] of cases) t.same(grubConfigIdentity(name), want, name)

  const names = grubConfigSearchNames({ mac: '52:54:00:A1:00:01', uuid: '8D3C1F2E-0000-4000-8000-525400A10001', ip: '10.0.0.101' })
  t.same(names, [
    'grub/grub.cfg-8d3c1f2e-0000-4000-8000-525400a10001',
    'grub/grub.cfg-01-52-54-00-a1-00-01',
    'grub/grub.cfg-0A000065', 'grub/grub.cfg-0A00006', 'grub/grub.cfg-0A0000', 'grub/grub.cfg-0A000',
    'grub/grub.cfg-0A00', 'grub/grub.cfg-0A0', 'grub/grub.cfg-0A', 'grub/grub.cfg-0',
    'grub/grub.cfg',
  ], 'search order: uuid, mac, ip down to one digit, default')
  t.same(grubConfigSearchNames({ mac: '52:54:00:a1:00:01' }, ''), ['grub.cfg-01-52-54-00-a1-00-01', 'grub.cfg'], 'without a grub/ directory')
  for (const name of names) {
    const id = grubConfigIdentity(name)
    t.ok(id, `${name} is recognized`)
    if (id?.kind === 'ip') t.ok(ipMatchesGrubHex('10.0.0.101', id), `${name} matches 10.0.0.101`)
  }
  t.notOk(ipMatchesGrubHex('10.0.0.102', { hex: '0A000065' }))
  t.ok(ipMatchesGrubHex('10.0.0.102', { hex: '0A00006' }), '28-bit prefix covers .96-.111')
  t.notOk(ipMatchesGrubHex('10.0.0.256', { hex: '0' }), 'not an address')
  t.notOk(ipMatchesGrubHex('fe80::1', { hex: '0' }))
})
