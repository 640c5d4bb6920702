/**
 * Install once (issue 9) on UEFI: OVMF with its own PXE client, PXE first in the boot order and a local disk second,
 * as a machine pxebox installed is set up. The first boot installs (the boot target makes the installed callback);
 * the next one still goes PXE -> snponly.efi -> pxebox, gets the local-boot script, and must end up in the system on
 * its disk: an EFI system partition with Debian's shim and GRUB (lib/installed-esp.ts) whose grub.cfg prints
 * `PXEBOX-LOCAL-DISK booted`.
 *
 * The firmware behaviour this pins (src/machines/local-boot.ts): iPXE's plain `exit` returns EFI_SUCCESS, and OVMF's
 * boot manager then opens its setup menu (UiApp) instead of trying the disk; `exit 1` makes it go on to the next
 * boot option. The VM has no PXEv6 boot option (`pxeIpv6: false`): the lab has no DHCPv6 boot server, and that
 * option's time-out (about 70 s) would only make the walk to the disk slower, not different. OVMF's HTTPv4 option
 * still comes before the disk: pxebox answers it, and the script sends it on as well.
 * Needs `npx tsc -p .` first (npm test does it), and Debian's archive once for shim/GRUB (lib/signed-chain.ts).
 */
import t from 'tap'
import { join } from 'node:path'
import { createLab, e2eUnavailable, repoRoot, testMachine, type Lab, type Machine } from './harness.js'
import { pxeboxBackend } from './pxebox-backend.js'
import { assertBooted, assertTimeline, steps } from './lib/boot-check.js'
import { ensureSignedChain } from './lib/signed-chain.js'
import { installedEsp } from './lib/installed-esp.js'

const NET = 46
const localDisk = 'PXEBOX-LOCAL-DISK booted'

const unavailable = e2eUnavailable(['node', 'curl', 'mkfs.fat', 'mcopy', 'mmd'])
if (unavailable !== undefined) {
  t.test('UEFI install once', { skip: unavailable }, async () => {})
} else {
  const chain = ensureSignedChain(join(repoRoot(), '.cache', 'secureboot'))
  const esp = installedEsp(chain, join(repoRoot(), '.cache', 'secureboot', 'esp.img'))
  const machine: Machine = { ...testMachine('uefi-pxe', 1, NET), name: 'uefionce1', disk: { sizeMb: 32, image: esp }, pxeIpv6: false }
  let lab: Lab | undefined
  t.before(async () => {
    lab = await createLab({ id: 'uefionce', net: NET, capture: process.env.PXEBOX_E2E_CAPTURE })
    await lab.startAppliance(
      // The boot target acts as the installer: pxebox.installed=1 makes its /init call back when done.
      pxeboxBackend({ profileExtras: () => ({ boot_once: true, args: ['pxebox.installed=1'] }) }),
      [machine],
    )
  })
  t.teardown(async () => {
    await lab?.destroy()
  })

  t.test('uefi-pxe with a local disk installs through pxebox and calls back installed', async (t) => {
    if (lab === undefined) throw new Error('lab not created')
    const r = await lab.bootVm(machine, { timeoutMs: 150_000 })
    assertBooted(t, r, machine, 'pxebox')
    t.equal(r.marker?.fields.installed, 'ok', 'the installer made the installed callback', { diagnostics: r.diagnostics })
    const view = await assertTimeline(t, lab, machine.mac, [
      steps.dhcp, steps.tftp(/snponly\.efi/), steps.script, steps.kernel, steps.initrd, steps.ignition,
      { stage: 'installed', source: 'api' },
    ])
    t.equal(view?.boots_local, true, 'pxebox will hand it a local-disk boot next')
  })

  t.test('boot_once on UEFI: the installed machine leaves iPXE for its local disk, not the firmware menu', async (t) => {
    if (lab === undefined) throw new Error('lab not created')
    // Same VM, VARS and disk; PXE still first. A bare `exit` ends in "UiApp" (a failure pattern of the harness).
    const r = await lab.bootVm(machine, { timeoutMs: 150_000, stopOn: new RegExp(localDisk) })
    const at = (re: RegExp) => r.timeline.find((e) => re.test(e.line))?.ms
    t.comment(`local-disk boot: script ${at(/is installed, booting from local disk/)} ms, disk's GRUB ${at(/Welcome to GRUB/)} ms, marker ${at(new RegExp(localDisk))} ms`)
    const diag = { diagnostics: r.diagnostics }
    t.equal(r.failure, undefined, 'no failure on the way (no UiApp, no EFI shell)', diag)
    t.equal(r.stoppedOn, localDisk, 'the system on the local disk booted', diag)
    t.equal(r.marker, undefined, 'the installer did not run again', diag)
    const lines = r.timeline.map((e) => e.line)
    t.ok(lines.some((l) => l.includes(`pxebox: ${machine.mac} is installed, booting from local disk`)), "iPXE ran pxebox's local-boot script", diag)
    t.ok(lines.some((l) => /BdsDxe: failed to start Boot\d+ "UEFI PXEv4/.test(l)), 'iPXE returned an error status to the PXEv4 boot option', diag)
    t.notOk(lines.some((l) => /"UiApp"/.test(l)), 'the firmware never opened its setup menu', diag)
    // The option that booted the disk: OVMF names a whole-disk FAT on virtio-blk "UEFI Non-Block Boot Device".
    const diskStart = lines.find((l) => /BdsDxe: starting Boot\d+ /.test(l) && !/MAC\(/.test(l))
    t.ok(diskStart, 'the boot manager went on to a boot option that is not the network', diag)
    t.comment(`disk boot option: ${diskStart}`)
    t.notOk(lines.some((l) => /vmlinuz|initrd\.img/.test(l)), 'iPXE downloaded no kernel or initrd', diag)
    await assertTimeline(t, lab, machine.mac, [steps.dhcp, steps.script, { source: 'http', step: 'local-boot' }], {
      absent: [steps.kernel, steps.initrd, steps.ignition],
      status: 'local-boot',
    })
  })
}
