/**
 * Issue 20 item 4: the syslog receiver wired to machine records. Lines over loopback from the address a machine was
 * seen on land in that machine's log (bounded, the oldest dropped and counted); lines from an address no machine uses
 * are counted and not kept; malformed ones are counted by the receiver; all of it is exported in /metrics.
 */
import t from 'tap'
import { createSocket } from 'node:dgram'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { openMachineStore } from '../../src/machines/store.js'
import { MAX_LOG_LINES } from '../../src/machines/model.js'
import { createMetrics } from '../../src/http/metrics.js'
import { startSyslog, syslogTarget } from '../../src/daemon/syslog-service.js'
import { storeIn } from '../helpers/store.js'

async function send(from: string, port: number, lines: string[]): Promise<void> {
  const socket = createSocket('udp4')
  await new Promise<void>((resolve) => socket.bind(0, from, resolve))
  for (const line of lines) await new Promise<void>((resolve, reject) => socket.send(line, port, '127.0.0.1', (err) => (err ? reject(err) : resolve())))
  socket.close()
}

async function until(check: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 200 && !check(); i++) await new Promise((r) => setTimeout(r, 20))
  if (!check()) throw new Error(`timed out waiting for ${what}`)
}

t.test('lines land in the log of the machine seen on the sender address; bounded; others counted; metrics', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'pxebox-syslog-svc-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const machines = await openMachineStore({ store: await storeIn(t, dir), flushDelayMs: 50 })
  t.teardown(() => machines.close())
  const metrics = createMetrics()
  const syslog = await startSyslog({ host: '127.0.0.1', port: 0, machines, metrics, logger: (await import('../../src/host/log.js')).silentLogger })
  t.teardown(() => syslog.close())
  const port = syslog.server.address.port
  const mac = '52:54:00:55:00:01'
  // The machine fetched its script from 127.0.0.1 (as /ipxe?mac= records it): that teaches the store its address.
  machines.record({ time: new Date().toISOString(), kind: 'http', mac, ip: '127.0.0.1', step: 'ipxe', outcome: 'ok', detail: { path: '/ipxe', status: 200 } })

  // busybox syslogd -R (RFC 3164) and util-linux logger -n --rfc5424, as the boot target sends them.
  await send('127.0.0.1', port, ['<14>Nov 27 17:40:01 target boot-target: PXEBOX-SYSLOG-MARKER 1', '<11>1 2026-11-27T17:40:02Z target installer 42 - - disk /dev/vda ready'])
  await until(() => (machines.get(mac)?.log?.length ?? 0) === 2, 'two lines')
  t.same(
    machines.get(mac)!.log!.map(({ severity, app, text }) => ({ severity, app, text })),
    [
      { severity: 6, app: 'boot-target', text: 'PXEBOX-SYSLOG-MARKER 1' },
      { severity: 3, app: 'installer', text: 'disk /dev/vda ready' },
    ],
  )

  // 127.0.0.2 is no machine's address: counted, kept nowhere. A malformed datagram is the receiver's drop.
  await send('127.0.0.2', port, ['<14>Nov 27 17:40:03 other x: nobody knows me', '<abc>hello'])
  await until(() => syslog.unattributed() === 1 && syslog.server.counters.dropped.malformed === 1, 'the unattributed and malformed counts')

  // Bounded: the oldest lines go and are counted.
  await send('127.0.0.1', port, Array.from({ length: MAX_LOG_LINES + 50 }, (_, i) => `<14>Nov 27 17:41:00 target flood: line ${i}`))
  await until(() => (machines.get(mac)?.log_dropped ?? 0) === 52, 'the bound')
  const log = machines.get(mac)!.log!
  t.equal(log.length, MAX_LOG_LINES)
  t.equal(log[0]!.text, 'line 50')
  t.equal(log.at(-1)!.text, `line ${MAX_LOG_LINES + 49}`)

  const text = await metrics.registry.metrics()
  t.match(text, `pxebox_syslog_lines_total{outcome="accepted"} ${MAX_LOG_LINES + 53}`)
  t.match(text, 'pxebox_syslog_lines_total{outcome="malformed"} 1')
  t.match(text, 'pxebox_syslog_unattributed_total 1')
  t.match(text, /pxebox_syslog_kernel_drops \d+/)
})

t.test('syslogTarget: announced only on port 514 (iPXE and DHCP option 7 carry no port); 0.0.0.0 means the PXE address', async (t) => {
  t.same(syslogTarget({ syslog: { enabled: true, listen: '0.0.0.0:514' } }, '10.213.0.2'), { syslogAddress: '10.213.0.2' })
  t.same(syslogTarget({ syslog: { enabled: true, listen: '10.213.0.9:514' } }, '10.213.0.2'), { syslogAddress: '10.213.0.9' })
  t.same(syslogTarget({ syslog: { enabled: true, listen: '0.0.0.0:5514' } }, '10.213.0.2'), {})
  t.same(syslogTarget({ syslog: { enabled: false, listen: '0.0.0.0:514' } }, '10.213.0.2'), {})
})
