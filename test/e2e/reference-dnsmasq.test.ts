/**
 * The harness proven against the reference appliance: real firmware boots through dnsmasq (proxyDHCP + TFTP) and a
 * small HTTP server, reaches Linux and fetches its own config. The times printed are the figures pxebox is compared
 * with (bench/vm-boot.sh prints both side by side).
 */
import t from 'tap'
import { readFileSync } from 'node:fs'
import { parsePcap } from '../helpers/pcap.js'
import { createLab, e2eUnavailable, testMachine, type Lab } from './harness.js'
import { dnsmasqReference } from './dnsmasq-reference.js'
import { assertBooted } from './lib/boot-check.js'

const unavailable = e2eUnavailable(['node'])
if (unavailable !== undefined) {
  t.test('VM boots against dnsmasq', { skip: unavailable }, async () => {})
} else {
  const machines = [testMachine('uefi-pxe', 1), testMachine('bios-ipxe', 2)]
  let lab: Lab | undefined
  t.before(async () => {
    lab = await createLab({ id: 'refdm', capture: process.env.PXEBOX_E2E_CAPTURE ?? true })
    await lab.startAppliance(dnsmasqReference(), machines)
  })
  t.teardown(async () => {
    await lab?.destroy()
  })

  for (const m of machines) {
    t.test(`${m.kind} boots via dnsmasq and fetches its config`, async (t) => {
      if (lab === undefined) throw new Error('lab not created')
      assertBooted(t, await lab.bootVm(m, { timeoutMs: 120_000 }), m, 'dnsmasq')
    })
  }

  t.test('the DHCP capture of the UEFI path holds the proxy exchange', async (t) => {
    if (lab?.capturePath === undefined) throw new Error('capture not on')
    const packets = parsePcap(readFileSync(lab.capturePath))
    const mac = (p: { payload: Buffer }) => [...p.payload.subarray(28, 34)].map((b) => b.toString(16).padStart(2, '0')).join(':')
    const file = (p: { payload: Buffer }) => p.payload.subarray(108, 236).toString('latin1').replace(/\0.*$/s, '')
    const uefi = machines[0]?.mac
    t.ok(packets.some((p) => p.dstPort === 67 && mac(p) === uefi), 'the firmware DISCOVER was captured')
    t.ok(
      packets.some((p) => p.srcIp === lab?.address && mac(p) === uefi && file(p) === 'snponly.efi'),
      'the proxy ACK naming snponly.efi was captured',
    )
  })
}

