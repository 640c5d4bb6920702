import t from 'tap'
import { createChainloadTracker } from '../../src/boot/chainload.js'
import type { BootEvent } from '../../src/machines/events.js'

const tftp = (mac: string | undefined, file: string, outcome = 'ok'): BootEvent => ({
  time: new Date(0).toISOString(),
  kind: 'tftp',
  ...(mac ? { mac } : {}),
  step: 'file',
  outcome,
  detail: { file },
})

t.test('remembers a MAC that fetched an iPXE binary, for the window only', async (t) => {
  let now = 1_000_000
  const tracker = createChainloadTracker(120_000, () => now)
  const mac = '52:54:00:e2:e0:01'
  t.equal(tracker.recently(mac), false)
  tracker.observe(tftp(mac, '52-54-00-e2-e0-01/undionly.kpxe', 'aborted'))
  t.equal(tracker.recently(mac), false, 'a failed transfer does not count')
  tracker.observe(tftp(mac, 'kernel.img'))
  t.equal(tracker.recently(mac), false, 'a file that is not iPXE does not count')
  tracker.observe(tftp(undefined, 'undionly.kpxe'))
  tracker.observe({ ...tftp(mac, 'undionly.kpxe'), kind: 'http' })
  t.equal(tracker.recently(mac), false, 'no MAC, or not TFTP: nothing to remember')
  tracker.observe(tftp(mac, '52-54-00-e2-e0-01/undionly.kpxe'))
  t.equal(tracker.recently(mac), true)
  t.equal(tracker.recently('52:54:00:e2:e0:02'), false, 'only that MAC')
  now += 120_000
  t.equal(tracker.recently(mac), true, 'still inside the window')
  now += 1
  t.equal(tracker.recently(mac), false, 'forgotten after the window: a later reboot chainloads again')
  tracker.observe(tftp(mac, 'x86_64/snponly.efi'))
  t.equal(tracker.recently(mac), true, 'EFI binaries count too')
})
