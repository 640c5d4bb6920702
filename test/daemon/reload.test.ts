/**
 * SIGHUP as a table (issue 14 item 4): every config key has a row in daemon/reload.ts, a reload applies the live ones
 * and reports the restart ones, and a changed tracking.stray_after reaches the running tracker. The daemon runs in
 * this process on loopback with DHCP and TFTP off, HTTP on a free port and the tracker's port 68 listener moved to a
 * free port, so nothing here needs a namespace or a well-known port.
 */
import t from 'tap'
import { createSocket } from 'node:dgram'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { TSchema } from '@sinclair/typebox'
import { ConfigSchema } from '../../src/config/schema.js'
import { parseConfig } from '../../src/config/load.js'
import { planReload, RELOAD_TABLE, type ReloadRule } from '../../src/daemon/reload.js'
import { startDaemon } from '../../src/daemon/daemon.js'
import { silentLogger } from '../../src/host/log.js'
import { DhcpMessageType as T, bytes, serverReply } from '../addresses/packets.js'
import { loopbackConfigText } from '../helpers/loopback-config.js'

const properties = (schema: TSchema): Record<string, TSchema> | undefined => (schema as { properties?: Record<string, TSchema> }).properties

t.test('every config schema key has a row in RELOAD_TABLE, and every row a key', async (t) => {
  const walk = (schema: Record<string, TSchema>, rules: Readonly<Record<string, ReloadRule>>, prefix: string): void => {
    for (const [key, sub] of Object.entries(schema)) {
      const rule = rules[key]
      if (rule === undefined) {
        t.fail(`config key "${prefix}${key}" has no row in src/daemon/reload.ts RELOAD_TABLE: say whether SIGHUP applies it (live) or it needs a restart`)
        continue
      }
      t.pass(`${prefix}${key}: ${rule.kind}`)
      if (rule.kind === 'nested') {
        const inner = properties(sub)
        if (inner === undefined) t.fail(`"${prefix}${key}" is nested in RELOAD_TABLE but not an object in the schema`)
        else walk(inner, rule.keys, `${prefix}${key}.`)
      }
    }
    for (const key of Object.keys(rules)) if (!(key in schema)) t.fail(`RELOAD_TABLE row "${prefix}${key}" names no config key`)
  }
  walk(properties(ConfigSchema)!, RELOAD_TABLE, '')
  t.equal(RELOAD_TABLE.tracking.kind, 'nested', 'tracking is in the table (it was missing from the old key list)')
})

t.test('planReload: live keys against the last applied config, restart keys against the started one', async (t) => {
  const dir = t.testdir({ assets: {}, data: {} })
  const started = parseConfig(loopbackConfigText(dir, 'tftp: { enabled: false }\ntracking: { arp: false, stray_after: 3600 }'), join(dir, 'c.yaml'))
  const next = parseConfig(
    loopbackConfigText(dir, 'tftp: { enabled: false, max_transfers: 9 }\ntracking: { arp: false, stray_after: 1, allowed_servers: [10.0.0.1] }\napi: { open_reads: false }\nlog_level: debug'),
    join(dir, 'c.yaml'),
  )
  const plan = planReload(started, started, next)
  t.same(plan.live.sort(), ['log_level', 'tracking.allowed_servers', 'tracking.stray_after'])
  t.same(plan.restart.sort(), ['api.open_reads', 'tftp'])
  const again = planReload(started, next, next)
  t.same(again.live, [], 'nothing live changed since the last reload')
  t.same(again.restart.sort(), ['api.open_reads', 'tftp'], 'restart keys are reported until the restart')
})

/** A free UDP port on loopback (closed again: the daemon binds it). */
async function freeUdpPort(): Promise<number> {
  const s = createSocket('udp4')
  await new Promise<void>((resolve) => s.bind(0, '127.0.0.1', resolve))
  const { port } = s.address()
  await new Promise<void>((resolve) => s.close(() => resolve()))
  return port
}

async function until<T>(what: string, probe: () => Promise<T | undefined>, ms = 20_000): Promise<T> {
  const end = Date.now() + ms
  for (;;) {
    const v = await probe()
    if (v !== undefined) return v
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 100))
  }
}

t.test('startDaemon + reload: a changed tracking.stray_after reaches the running tracker', async (t) => {
  const dir = t.testdir({})
  mkdirSync(join(dir, 'data'))
  mkdirSync(join(dir, 'assets'))
  const file = join(dir, 'config.yaml')
  const text = (tracking: string, extra = '') => loopbackConfigText(dir, `tftp: { enabled: false }\ntracking: { arp: false, ${tracking} }\n${extra}`)
  writeFileSync(file, text('stray_after: 3600'))
  const clientPort = await freeUdpPort()
  const daemon = await startDaemon(parseConfig(text('stray_after: 3600'), file), silentLogger, { clientPort })
  t.teardown(() => daemon.close())
  const url = /listening on (\S+)\)/.exec(daemon.banner())?.[1]
  t.ok(url, daemon.banner())
  const get = async (path: string) => (await fetch(`http://${url}${path}`)).json() as Promise<Record<string, unknown>>

  // The site server's ACK, as the port 68 listener hears it: the tracker now holds a DHCP lease for the MAC.
  const mac = '52:54:00:21:30:01'
  const sender = createSocket('udp4')
  t.teardown(() => sender.close())
  const ack = bytes(serverReply({ type: T.ACK, mac, yiaddr: '127.0.0.77', server: '127.0.0.1', leaseSeconds: 3600 }))
  await until('the lease in /v1/leases', async () => {
    sender.send(ack, clientPort, '127.0.0.1')
    const leases = (await get('/v1/leases'))['leases'] as { mac: string }[] | undefined
    return leases?.some((l) => l.mac === mac) ? true : undefined
  })

  const result = await daemon.reload(parseConfig(text('stray_after: 1', 'api: { open_reads: false }'), file))
  t.same(result.applied, ['tracking.stray_after'])
  t.same(result.restart_needed, ['api.open_reads'])
  // With 3600 s the lease is never a stray within this test; with 1 s the next evaluation (every 250 ms) reports it.
  const stray = await until('a stray finding', async () => {
    const findings = (await get('/v1/findings'))['findings'] as { kind: string; macs: string[] }[] | undefined
    return findings?.find((f) => f.kind === 'stray' && f.macs.includes(mac))
  })
  t.ok(stray, 'the lease is reported as a stray after the new stray_after')
})
