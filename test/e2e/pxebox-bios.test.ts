/**
 * BIOS machines boot through pxebox (issue 7): SeaBIOS with QEMU's iPXE option ROM getting the iPXE script straight
 * away, and the same ROM made to chainload pxebox's own undionly.kpxe over TFTP first (group `chainload_ipxe: true`,
 * for option ROMs too old or too limited to trust). Each VM must reach Linux and fetch its own Ignition config.
 * Needs `npx tsc -p .` first (npm test does it).
 */
import t from 'tap'
import { createLab, e2eUnavailable, testMachine, type Lab } from './harness.js'
import { pxeboxBackend } from './pxebox-backend.js'
import { assertBooted } from './lib/boot-check.js'

const unavailable = e2eUnavailable(['node'])
if (unavailable !== undefined) {
  t.test('BIOS machines boot through pxebox', { skip: unavailable }, async () => {})
} else {
  const direct = testMachine('bios-ipxe', 1, 43)
  const chained = { ...testMachine('bios-ipxe', 2, 43), name: 'biosipxechain2' }
  const machines = [direct, chained]
  let lab: Lab | undefined
  t.before(async () => {
    lab = await createLab({ id: 'pxbios', net: 43, capture: process.env.PXEBOX_E2E_CAPTURE })
    await lab.startAppliance(pxeboxBackend({ extras: (m) => (m.name === chained.name ? { chainload_ipxe: true } : {}) }), machines)
  })
  t.teardown(async () => {
    await lab?.destroy()
  })
  t.test('bios-ipxe (iPXE ROM) boots via pxebox and fetches its own config', async (t) => {
    if (lab === undefined) throw new Error('lab not created')
    assertBooted(t, await lab.bootVm(direct, { timeoutMs: 120_000 }), direct, 'pxebox')
  })
  t.test('bios-ipxe chainloading pxebox undionly.kpxe boots and fetches its own config', async (t) => {
    if (lab === undefined) throw new Error('lab not created')
    assertBooted(t, await lab.bootVm(chained, { timeoutMs: 120_000 }), chained, 'pxebox')
  })
}
