/**
 * Secure Boot through pxebox (issue 19): OVMF with Microsoft keys and Secure Boot enforcing boots the signed chain
 * pxebox serves (shim -> GRUB -> Debian's signed kernel -> initrd) for a `loader: shim-grub` group, and refuses
 * iPXE for a `loader: ipxe` group. Proxy mode, with the site DHCP server (the lab's dnsmasq) naming pxebox as
 * next-server, as the README says this chain needs in proxy mode: GRUB takes its TFTP server from the site ACK.
 * VMs under TCG with Secure Boot take about a minute each: one VM per case.
 * Needs `npx tsc -p .` first, firmware/fetch.sh's shimx64.efi and grubx64.efi (else Debian's packages via
 * lib/signed-chain.ts).
 */
import t from 'tap'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { createLab, e2eUnavailable, repoRoot, testMachine, type Lab, type Machine } from './harness.js'
import { pxeboxBackend } from './pxebox-backend.js'
import { assertBooted, assertTimeline, steps } from './lib/boot-check.js'
import { ovmfSecureBootCode, ovmfSecureBootVars } from './lib/qemu.js'
import { ensureSignedChain } from './lib/signed-chain.js'

const NET = 51

/** The signed shim and GRUB: firmware/fetch.sh's copies, else unpacked from Debian's packages. */
function signedLoaders(): Record<string, string> {
  const fw = join(repoRoot(), 'firmware')
  if (existsSync(join(fw, 'shimx64.efi')) && existsSync(join(fw, 'grubx64.efi'))) {
    return { 'shimx64.efi': join(fw, 'shimx64.efi'), 'grubx64.efi': join(fw, 'grubx64.efi') }
  }
  const chain = ensureSignedChain(join(repoRoot(), '.cache', 'secureboot'))
  return { 'shimx64.efi': chain.shim, 'grubx64.efi': chain.grub }
}

const skip =
  e2eUnavailable(['node', 'curl']) ??
  (existsSync(ovmfSecureBootCode) && existsSync(ovmfSecureBootVars) ? undefined : 'Debian package ovmf has no Secure Boot build here')

if (skip !== undefined) {
  t.test('Secure Boot through pxebox', { skip }, async () => {})
} else {
  const signed: Machine = { ...testMachine('uefi-pxe', 1, NET), name: 'sbshim1', secureBoot: true, pxeIpv6: false }
  const refused: Machine = { ...testMachine('uefi-pxe', 2, NET), name: 'sbipxe2', secureBoot: true, pxeIpv6: false }
  let lab: Lab | undefined
  t.before(async () => {
    // The site server names pxebox as next-server (and shim as file) for every machine.
    lab = await createLab({ id: 'sboot', net: NET, siteBoot: { file: 'shimx64.efi', byMac: { [refused.mac]: 'snponly.efi' } }, capture: process.env.PXEBOX_E2E_CAPTURE })
    await lab.startAppliance(
      pxeboxBackend({
        firmwareFiles: signedLoaders(),
        extras: (m) => ({ loader: m.name === refused.name ? 'ipxe' : 'shim-grub' }),
        // The backend's profiles say `quiet`; a later loglevel lets the kernel's "Secure boot enabled" reach the console.
        profileExtras: () => ({ args: ['loglevel=6'] }),
      }),
      [signed, refused],
    )
  })
  t.teardown(() => lab?.destroy())

  t.test('proxy mode, site next-server = pxebox: shim -> GRUB -> signed kernel -> initrd -> Ignition', async (t) => {
    if (lab === undefined) throw new Error('lab not created')
    const r = await lab.bootVm(signed, { timeoutMs: 240_000 })
    assertBooted(t, r, signed, 'pxebox (shim-grub)')
    // With `quiet` first, the early `secureboot: Secure boot enabled` line may not reach the console; the lockdown line
    // (printed at the same point, measured) does: both mean the firmware booted the kernel with Secure Boot enforcing.
    t.ok(r.timeline.some((e) => /secureboot: Secure boot enabled|Kernel is locked down from EFI Secure Boot/.test(e.line)), 'the kernel says Secure Boot is on', { diagnostics: r.diagnostics })
    const at = (re: RegExp) => r.timeline.find((e) => re.test(e.line))?.ms
    t.comment(`Secure Boot path: PXE start ${at(/Start PXE over IPv4/)} ms, GRUB ${at(/Welcome to GRUB/)} ms, marker ${r.msToMarker} ms`)
    await assertTimeline(t, lab, signed.mac, [
      steps.dhcp,
      steps.tftp(/^shimx64\.efi/),
      steps.tftp(/^grubx64\.efi/),
      steps.tftp(/^grub\/grub\.cfg /),
      steps.tftp(/^grub\/grub\.cfg-01-52-54-00-e2-33-01/),
      steps.tftp(/^assets\/vmlinuz/),
      steps.tftp(/^assets\/initrd\.img/),
      steps.ignition,
    ])
  })

  t.test('loader: ipxe on the same Secure Boot firmware: iPXE is refused', async (t) => {
    if (lab === undefined) throw new Error('lab not created')
    const r = await lab.bootVm(refused, { timeoutMs: 120_000, stopOn: /Access Denied/ })
    t.equal(r.marker, undefined, 'no Linux')
    t.match(r.stoppedOn, 'Access Denied', 'OVMF refuses the unsigned iPXE', { diagnostics: r.diagnostics })
  })
}
