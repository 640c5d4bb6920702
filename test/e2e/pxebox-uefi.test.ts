/**
 * Real UEFI firmware boots through pxebox (issue 7, "Real machines boot"): OVMF's own EDK2 PXE client (what most
 * server firmware ships), OVMF's UEFI HTTP boot client, and OVMF with QEMU's iPXE EFI ROM. Each VM must reach Linux
 * and fetch the Ignition config of its own group, and pxebox's machine record must show that path's steps in order.
 * Needs `npx tsc -p .` first (npm test does it).
 */
import t from 'tap'
import { createLab, e2eUnavailable, testMachine, type Lab, type VmKind } from './harness.js'
import { pxeboxBackend } from './pxebox-backend.js'
import { assertBooted, assertTimeline, steps, type StepMatch } from './lib/boot-check.js'

/** The steps pxebox must record for each path, and what must not be there. */
const paths: Partial<Record<VmKind, { expected: StepMatch[]; absent: StepMatch[] }>> = {
  // EDK2 PXE: proxy offer to the DISCOVER, ack on 4011, snponly.efi over TFTP; then iPXE fetches the script.
  'uefi-pxe': {
    expected: [{ stage: 'dhcp', step: 'offer' }, { stage: 'dhcp', step: 'ack' }, steps.tftp(/snponly\.efi/), steps.script, steps.kernel, steps.initrd, steps.ignition],
    absent: [],
  },
  // UEFI HTTP boot: the first-stage loader comes over HTTP from /firmware/, never TFTP.
  'uefi-http': {
    expected: [steps.dhcp, { source: 'http', step: 'firmware', stage: 'tftp', what: /\.efi/ }, steps.script, steps.kernel, steps.initrd, steps.ignition],
    absent: [{ source: 'tftp' }],
  },
  // iPXE already in the NIC ROM: the script straight away.
  'uefi-ipxe': {
    expected: [steps.dhcp, steps.script, steps.kernel, steps.initrd, steps.ignition],
    absent: [{ source: 'tftp' }, { step: 'firmware' }],
  },
}

const unavailable = e2eUnavailable(['node', 'curl'])
if (unavailable !== undefined) {
  t.test('UEFI machines boot through pxebox', { skip: unavailable }, async () => {})
} else {
  const machines = [testMachine('uefi-pxe', 1, 42), testMachine('uefi-http', 2, 42), testMachine('uefi-ipxe', 3, 42)]
  const fetched = new Map<string, string | undefined>()
  let lab: Lab | undefined
  t.before(async () => {
    lab = await createLab({ id: 'pxuefi', net: 42, capture: process.env.PXEBOX_E2E_CAPTURE })
    await lab.startAppliance(pxeboxBackend(), machines)
  })
  t.teardown(async () => {
    await lab?.destroy()
  })
  for (const m of machines) {
    t.test(`${m.kind} boots via pxebox and fetches its own config`, async (t) => {
      if (lab === undefined) throw new Error('lab not created')
      const r = await lab.bootVm(m, { timeoutMs: 150_000 })
      assertBooted(t, r, m, 'pxebox')
      fetched.set(m.mac, r.marker?.config)
      const path = paths[m.kind]!
      await assertTimeline(t, lab, m.mac, path.expected, { absent: path.absent })
    })
  }
  // Path 5 (issue 7): machines in different groups get different configs, each its own.
  t.test('the VMs of different groups fetched different configs', async (t) => {
    const configs = machines.map((m) => fetched.get(m.mac))
    t.ok(configs.every((c) => c !== undefined), 'every VM fetched a config', { configs })
    t.equal(new Set(configs).size, machines.length, 'no two VMs got the same config', { configs })
  })
}
