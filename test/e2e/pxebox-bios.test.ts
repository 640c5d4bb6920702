/**
 * BIOS machines boot through pxebox (issue 7): SeaBIOS with QEMU's iPXE option ROM getting the iPXE script straight
 * away, and the same ROM made to chainload pxebox's own undionly.kpxe over TFTP first (group `chainload_ipxe: true`,
 * for option ROMs too old or too limited to trust). Each VM must reach Linux and fetch its own Ignition config, and
 * pxebox's machine record must show that path's steps in order.
 *
 * Install once (issue 9): a machine with a blank disk and a `boot_once` profile installs (the boot target makes the
 * installed callback), then on its next boot still goes PXE -> pxebox, gets the local-boot script and ends up at its
 * disk instead of the installer; after a re-arm it installs again. Needs `npx tsc -p .` first (npm test does it).
 */
import t from 'tap'
import { createLab, e2eUnavailable, testMachine, type Lab } from './harness.js'
import { pxeboxBackend } from './pxebox-backend.js'
import { applianceRequest, assertBooted, assertTimeline, steps } from './lib/boot-check.js'

const unavailable = e2eUnavailable(['node', 'curl'])
if (unavailable !== undefined) {
  t.test('BIOS machines boot through pxebox', { skip: unavailable }, async () => {})
} else {
  // The direct path's machine is also the install-once machine (its first boot is that path), which saves a boot.
  // Its "installed system": a disk whose boot sector prints this line, so booting the local disk shows on the console.
  const localDisk = 'PXEBOX-LOCAL-DISK booted'
  const direct = { ...testMachine('bios-ipxe', 1, 43), name: 'biosipxeonce1', disk: { sizeMb: 16, bootMessage: localDisk } }
  const chained = { ...testMachine('bios-ipxe', 2, 43), name: 'biosipxechain2' }
  const machines = [direct, chained]
  const token = 'e2e-install-once-token-0123456789'
  let lab: Lab | undefined
  t.before(async () => {
    lab = await createLab({ id: 'pxbios', net: 43, capture: process.env.PXEBOX_E2E_CAPTURE })
    await lab.startAppliance(
      pxeboxBackend({
        extras: (m) => (m.name === chained.name ? { chainload_ipxe: true } : {}),
        // The boot target acts as the installer: pxebox.installed=1 makes its /init call back when done.
        profileExtras: (m) => (m.name === direct.name ? { boot_once: true, args: ['pxebox.installed=1'] } : {}),
        apiToken: token,
      }),
      machines,
    )
  })
  t.teardown(async () => {
    await lab?.destroy()
  })
  const noTftp = [{ source: 'tftp' as const }]
  const installSteps = [steps.dhcp, steps.script, steps.kernel, steps.initrd, steps.ignition, { stage: 'installed' as const, source: 'api' as const }]

  t.test('bios-ipxe (iPXE ROM) boots via pxebox, fetches its own config and calls back installed', async (t) => {
    if (lab === undefined) throw new Error('lab not created')
    const r = await lab.bootVm(direct, { timeoutMs: 120_000 })
    assertBooted(t, r, direct, 'pxebox')
    // The installer's callback comes from the machine's own address, without a token.
    t.equal(r.marker?.fields.installed, 'ok', 'the installer made the installed callback', { diagnostics: r.diagnostics })
    const view = await assertTimeline(t, lab, direct.mac, installSteps, { absent: noTftp })
    t.ok(view?.installed_at, 'the record says installed', { record: view })
    t.equal(view?.boots_local, true, 'pxebox will hand it a local-disk boot next')
  })

  t.test('boot_once: the installed machine boots its local disk, not the installer', async (t) => {
    if (lab === undefined) throw new Error('lab not created')
    // Same VM, same disk, network still first: pxebox answers /ipxe with the local-boot script and iPXE's sanboot
    // hands over to the disk's boot sector.
    const r = await lab.bootVm(direct, { timeoutMs: 90_000, stopOn: new RegExp(localDisk) })
    t.comment(`local-disk boot: the disk's boot sector ran after ${r.timeline.find((e) => e.line.includes(localDisk))?.ms ?? 'never'} ms`)
    const diag = { diagnostics: r.diagnostics }
    t.ok(r.stoppedOn, 'the machine booted its local disk', diag)
    t.equal(r.failure, undefined, 'no failure on the way', diag)
    t.equal(r.marker, undefined, 'the installer did not run again', diag)
    const lines = r.timeline.map((e) => e.line)
    t.ok(lines.some((l) => l.includes(`pxebox: ${direct.mac} is installed, booting from local disk`)), "iPXE ran pxebox's local-boot script", diag)
    t.ok(lines.some((l) => /Booting from SAN device 0x80/.test(l)), 'iPXE booted the first hard disk (sanboot --drive 0x80)', diag)
    t.notOk(lines.some((l) => /vmlinuz|initrd\.img/.test(l)), 'iPXE downloaded no kernel or initrd', diag)
    await assertTimeline(t, lab, direct.mac, [steps.dhcp, steps.script, { source: 'http', step: 'local-boot' }], {
      absent: [steps.kernel, steps.initrd, steps.ignition],
      status: 'local-boot',
    })
  })

  t.test('boot_once: re-armed with the API token, the machine installs again', async (t) => {
    if (lab === undefined) throw new Error('lab not created')
    const refused = await applianceRequest(lab, 'POST', `/v1/machines/${direct.mac}/rearm`)
    t.equal(refused.status, 401, 're-arm without the token is refused', { body: refused.body })
    const rearmed = await applianceRequest(lab, 'POST', `/v1/machines/${direct.mac}/rearm`, token)
    t.equal(rearmed.status, 200, 're-arm with the token', { body: rearmed.body })
    const rearmedView = rearmed.body as { installed_at?: string; boots_local?: boolean }
    t.equal(rearmedView.installed_at, undefined, 're-arm clears installed_at')
    t.equal(rearmedView.boots_local, false, 're-armed: no local boot')
    const r = await lab.bootVm(direct, { timeoutMs: 120_000 })
    assertBooted(t, r, direct, 'pxebox (re-armed)')
    const view = await assertTimeline(t, lab, direct.mac, installSteps, { absent: noTftp })
    t.equal(view?.installs, 2, 'two installed callbacks recorded')
    t.equal(view?.reinstalls, 0, 'no reinstall loop: the second install was asked for')
    t.equal(view?.boots, 3, 'three boot attempts recorded')
  })

  t.test('bios-ipxe chainloading pxebox undionly.kpxe boots and fetches its own config', async (t) => {
    if (lab === undefined) throw new Error('lab not created')
    assertBooted(t, await lab.bootVm(chained, { timeoutMs: 120_000 }), chained, 'pxebox')
    // The ROM's DHCP, undionly.kpxe over TFTP, then the chainloaded iPXE's own DHCP before it asks for the script.
    await assertTimeline(t, lab, chained.mac, [steps.dhcp, steps.tftp(/undionly\.kpxe/), steps.dhcp, steps.script, steps.kernel, steps.initrd, steps.ignition])
  })
}
