/**
 * Authoritative mode in network namespaces: crafted clients with distinct chaddr plus a real udhcpc get distinct
 * addresses; an address a squatter answers ARP for is skipped (arping probe); a kill -9 in the middle of a burst of
 * 200 lease requests loses no ACKed lease, and the restarted server re-offers each one to the same MAC, with the
 * lease log and with the Store lease book.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { ChildProcess } from 'node:child_process'
import t, { type Test } from 'tap'
import { NetnsLab, netnsUnavailable, tsNodeArgs } from '../helpers/netns.js'
import { onJsonLines } from '../helpers/json-lines.js'

const SRV = 'lzA-srv'
const CLI = 'lzA-cli'
const SQ = 'lzA-sq'
const UDH = 'lzA-udh'
const RUNNER = fileURLToPath(new URL('../addresses/runner.ts', import.meta.url))
const node = (role: string, args: object): string[] => [process.execPath, ...tsNodeArgs(), RUNNER, role, JSON.stringify(args)]
const RANGE = { start: '10.213.41.100', end: '10.213.41.240' }

const reason = (await netnsUnavailable()) ?? ((await import('node:child_process')).spawnSync('arping', ['--help']).error ? 'arping not installed' : undefined)
if (reason !== undefined) {
  t.plan(0, `authoritative netns tests skipped: ${reason}`)
} else {
  const lab = new NetnsLab()
  const dirs: string[] = []
  t.teardown(async () => {
    await lab.cleanup()
    for (const d of dirs) rmSync(d, { recursive: true, force: true })
  })
  await lab.namespace(SRV)
  await lab.bridge(SRV, 'br0', '10.213.41.1/24')
  await lab.namespace(CLI)
  await lab.veth({ ns: CLI, ifname: 'eth0', cidr: '10.213.41.250/24', peerNs: SRV, peerIfname: 'vcli', bridge: 'br0', defaultRoute: true })
  await lab.namespace(SQ)
  await lab.veth({ ns: SQ, ifname: 'eth0', cidr: `${RANGE.start}/24`, peerNs: SRV, peerIfname: 'vsq', bridge: 'br0' })
  await lab.namespace(UDH)
  await lab.veth({ ns: UDH, ifname: 'eth0', peerNs: SRV, peerIfname: 'vudh', bridge: 'br0' })

  const lines = (child: ChildProcess, onLine: (l: Record<string, any>) => void): void => onJsonLines(child.stdout, onLine)
  const startServer = (args: object) =>
    new Promise<{ child: ChildProcess; ready: Record<string, any> }>((resolve, reject) => {
      const child = lab.spawn(SRV, node('server', { iface: 'br0', address: '10.213.41.1', range: RANGE, ...args }))
      t.teardown(() => void child.kill('SIGKILL'))
      let stderr = ''
      child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()))
      lines(child, (l) => {
        if (l.ready) resolve({ child, ready: l })
      })
      child.on('exit', (code, sig) => reject(new Error(`server exited (${code ?? sig}): ${stderr}`)))
      setTimeout(() => reject(new Error(`server not ready: ${stderr}`)), 30_000)
    })
  const stopServer = (child: ChildProcess) =>
    new Promise<Record<string, any>>((resolve) => {
      lines(child, (l) => {
        if (l.closed) resolve(l)
      })
      child.stdin?.end()
    })
  const runClients = async (args: object): Promise<{ acks: { mac: string; ip: string }[] }> => {
    const { stdout } = await lab.exec(CLI, node('clients', args), { timeoutMs: 120_000 })
    return JSON.parse(stdout.trim().split('\n').pop() as string)
  }
  const tmp = () => {
    const d = mkdtempSync(join(tmpdir(), 'pxebox-auth-'))
    dirs.push(d)
    return d
  }

  t.test('50 crafted clients and a real udhcpc get distinct addresses; the squatted address is skipped', async (t) => {
    const dataDir = tmp()
    const { child } = await startServer({ dataDir, probeMs: 300 })
    const { acks } = await runClients({ count: 50, concurrency: 50, retries: 3 })
    t.equal(acks.length, 50, 'every client got an ACK')
    const ips = acks.map((a) => a.ip)
    t.equal(new Set(ips).size, 50, 'all distinct')
    t.notOk(ips.includes(RANGE.start), `${RANGE.start} (answered on ARP by the squatter) was not handed out`)
    const inRange = (ip: string) => Number(ip.split('.')[3]) >= 100 && Number(ip.split('.')[3]) <= 240 && ip.startsWith('10.213.41.')
    t.ok(ips.every(inRange), 'all inside the range')
    const udh = await lab.exec(UDH, ['busybox', 'udhcpc', '-f', '-q', '-n', '-t', '5', '-T', '2', '-i', 'eth0', '-s', '/bin/true'], { timeoutMs: 40_000 })
    const m = /lease of (\d+\.\d+\.\d+\.\d+) obtained/.exec(udh.stdout + udh.stderr)
    t.ok(m, `udhcpc got a lease: ${udh.stdout}${udh.stderr}`)
    t.notOk(ips.includes(m?.[1] ?? ''), 'udhcpc got an address nobody else has')
    t.ok(inRange(m?.[1] ?? ''), 'udhcpc address inside the range')
    const closed = await stopServer(child)
    t.equal(closed.leases.length, 51, 'the server holds 51 leases')
  })

  /** A burst of 200 clients, the server killed with SIGKILL after 80 ACKs, restarted on the same data: nothing lost. */
  const killMidBurst = async (t: Test, server: object, leasesIn: RegExp): Promise<void> => {
    const dataDir = tmp()
    const first = await startServer({ dataDir, probeMs: 0, ...server })
    t.match(first.ready.recovered.file, leasesIn, `leases kept in ${first.ready.recovered.file}`)
    const acked: { mac: string; ip: string }[] = []
    const clients = lab.spawn(CLI, node('clients', { count: 200, concurrency: 16, streamAcks: true, timeoutMs: 700 }))
    let killed = false
    await new Promise<void>((resolve) => {
      lines(clients, (l) => {
        if (l.ack) {
          acked.push(l.ack)
          if (acked.length === 80 && !killed) {
            killed = true
            first.child.kill('SIGKILL')
          }
        }
        if (l.done) resolve()
      })
    })
    t.ok(killed, 'the server was killed mid-burst')
    t.ok(acked.length >= 80 && acked.length < 200, `${acked.length} ACKs before the kill (burst interrupted)`)
    const second = await startServer({ dataDir, probeMs: 0, ...server })
    const table = new Map<string, string>((second.ready.leases as { mac: string; ip: string }[]).map((l) => [l.mac, l.ip]))
    const lost = acked.filter((a) => table.get(a.mac) !== a.ip)
    t.same(lost, [], 'every ACK a client received is in the restarted server table')
    const again = await runClients({ count: 200, concurrency: 50, discoverOnly: true, xidSalt: 99 })
    const offered = new Map(again.acks.map((a) => [a.mac, a.ip]))
    t.same(acked.filter((a) => offered.get(a.mac) !== a.ip), [], 'each ACKed MAC is offered its address again')
    await stopServer(second.child)
  }

  t.test('kill -9 mid-burst of 200: every ACKed lease survives and is re-offered to the same MAC', (t) => killMidBurst(t, {}, /\/leases\.log$/))

  t.test('the same with the Store lease book (over SQLite): an ACK goes out only after the claim and lease committed', (t) => killMidBurst(t, { leaseBook: 'store' }, /\/pxebox\.db$/))
}
