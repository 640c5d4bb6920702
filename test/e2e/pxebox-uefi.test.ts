/**
 * Real UEFI firmware boots through pxebox (issue 7, "Real machines boot"): OVMF's own EDK2 PXE client (what most
 * server firmware ships), OVMF's UEFI HTTP boot client, and OVMF with QEMU's iPXE EFI ROM. Each VM must reach Linux
 * and fetch the Ignition config of its own group. Needs `npx tsc -p .` first (npm test does it).
 */
import t from 'tap'
import { createLab, e2eUnavailable, testMachine, type Lab } from './harness.js'
import { pxeboxBackend } from './pxebox-backend.js'
import { assertBooted } from './lib/boot-check.js'

const unavailable = e2eUnavailable(['node'])
if (unavailable !== undefined) {
  t.test('UEFI machines boot through pxebox', { skip: unavailable }, async () => {})
} else {
  const machines = [testMachine('uefi-pxe', 1, 42), testMachine('uefi-http', 2, 42), testMachine('uefi-ipxe', 3, 42)]
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
      assertBooted(t, await lab.bootVm(m, { timeoutMs: 150_000 }), m, 'pxebox')
    })
  }
}
