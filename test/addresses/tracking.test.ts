/**
 * Address tracking in proxy mode, in network namespaces: dnsmasq is the site DHCP server, real udhcpc clients and
 * crafted packets play the machines; pxebox's proxy service + tracker (ARP via tcpdump, probes via arping) must report
 * a duplicate with both MACs, a stray lease after the (short) window, one machine behind two MACs with one UUID, and a
 * second DHCP server.
 */
import { mkdtempSync, rmSync, writeFileSync, chmodSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { NetnsLab, netnsUnavailable, tsNodeArgs } from '../helpers/netns.js'
import { DhcpMessageType as T, bytes, clientPacket, serverReply } from './packets.js'
import { onJsonLines } from '../helpers/json-lines.js'

const SRV = 'lzT-srv'
const SITE = 'lzT-site'
const A = 'lzT-a'
const B = 'lzT-b'
const C = 'lzT-c'
const X = 'lzT-x'
const RUNNER = fileURLToPath(new URL('./runner.ts', import.meta.url))
const node = (role: string, args: object): string[] => [process.execPath, ...tsNodeArgs(), RUNNER, role, JSON.stringify(args)]
const { spawnSync } = await import('node:child_process')
const missing = ['dnsmasq', 'tcpdump', 'arping', 'busybox'].find((b) => spawnSync('sh', ['-c', `command -v ${b}`]).status !== 0)
const reason = (await netnsUnavailable()) ?? (missing === undefined ? undefined : `${missing} not installed`)

if (reason !== undefined) {
  t.plan(0, `tracking netns tests skipped: ${reason}`)
} else {
  const lab = new NetnsLab()
  const dir = mkdtempSync(join(tmpdir(), 'pxebox-track-'))
  t.teardown(async () => {
    await lab.cleanup()
    rmSync(dir, { recursive: true, force: true })
  })
  await lab.namespace(SRV)
  await lab.bridge(SRV, 'br0', '10.213.42.1/24')
  await lab.namespace(SITE)
  await lab.veth({ ns: SITE, ifname: 'eth0', cidr: '10.213.42.2/24', peerNs: SRV, peerIfname: 'vsite', bridge: 'br0' })
  for (const [ns, peer] of [[A, 'va'], [B, 'vb'], [C, 'vc'], [X, 'vx']] as const) {
    await lab.namespace(ns)
    await lab.veth({ ns, ifname: 'eth0', peerNs: SRV, peerIfname: peer, bridge: 'br0', defaultRoute: ns === X })
  }
  await lab.exec(X, ['ip', 'addr', 'add', '10.213.42.250/24', 'dev', 'eth0'])
  const mac = async (ns: string) => (await lab.exec(ns, ['cat', '/sys/class/net/eth0/address'])).stdout.trim()
  const dnsmasq = lab.spawn(SITE, ['dnsmasq', '--no-daemon', '--port=0', '--bind-interfaces', '--interface=eth0', '--dhcp-range=10.213.42.100,10.213.42.150,1h', `--dhcp-leasefile=${join(dir, 'site.leases')}`, '--pid-file=', '--no-ping', '--dhcp-broadcast'])
  t.teardown(() => void dnsmasq.kill('SIGKILL'))

  const server = lab.spawn(SRV, node('proxy', { iface: 'br0', address: '10.213.42.1', dataDir: dir, strayAfterMs: 3000, allowedServers: ['10.213.42.2'] }))
  t.teardown(() => void server.kill('SIGKILL'))
  const waiting: ((l: Record<string, any>) => boolean)[] = []
  onJsonLines(server.stdout, (l) => {
    for (const w of [...waiting]) if (w(l)) waiting.splice(waiting.indexOf(w), 1)
  })
  const next = (pred: (l: Record<string, any>) => boolean, ms = 30_000) =>
    new Promise<Record<string, any>>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no answer from the tracking runner')), ms)
      waiting.push((l) => (pred(l) ? (clearTimeout(timer), resolve(l), true) : false))
    })
  await next((l) => l.ready === true)
  const dump = async () => {
    const p = next((l) => 'findings' in l)
    server.stdin?.write('dump\n')
    return p
  }
  const script = join(dir, 'configure.sh')
  writeFileSync(script, '#!/bin/sh\n[ "$1" = bound ] && ip addr add "$ip/24" dev "$interface"\nexit 0\n')
  chmodSync(script, 0o755)
  const udhcpc = async (ns: string, s: string) => {
    const r = await lab.exec(ns, ['busybox', 'udhcpc', '-f', '-q', '-n', '-B', '-t', '5', '-T', '2', '-i', 'eth0', '-s', s], { timeoutMs: 40_000 })
    const m = /lease of (\S+) obtained/.exec(r.stdout + r.stderr)
    if (m === null) throw new Error(`udhcpc in ${ns} got no lease: ${r.stdout}${r.stderr}`)
    return m[1] as string
  }

  const macA = await mac(A)
  const macB = await mac(B)
  const macC = await mac(C)
  const ipA = await udhcpc(A, script) // takes its lease and configures it (answers ARP)
  const ipC = await udhcpc(C, '/bin/true') // takes a lease and never uses it: a stray
  // B is forced onto A's address: configured statically and announced with gratuitous ARP.
  await lab.exec(B, ['ip', 'addr', 'add', `${ipA}/24`, 'dev', 'eth0'])
  await lab.exec(B, ['arping', '-U', '-c', '2', '-i', 'eth0', ipA]).catch(() => undefined)
  // Two NICs of one chassis PXE-boot with the same option 97 UUID; and a rogue server offers an address.
  const uuid = '8d3c1f2e-0000-4000-8000-525400e2e0aa'
  const pxe = { type: T.DISCOVER, uuid, vendorClass: 'PXEClient:Arch:00007:UNDI:003000' }
  await lab.exec(X, node('send', { packets: [bytes(clientPacket({ ...pxe, mac: '52:54:00:aa:00:01' })), bytes(clientPacket({ ...pxe, mac: '52:54:00:aa:00:02' }))].map((b) => b.toString('base64')) }))
  await lab.exec(X, node('send', { srcPort: 67, port: 68, packets: [bytes(serverReply({ type: T.OFFER, mac: '52:54:00:aa:00:01', yiaddr: '192.168.77.5', server: '10.213.42.9' })).toString('base64')] }))

  // Stray needs 3 s of silence, then a probe and its grace (3 s): poll up to 20 s.
  let findings: Record<string, any>[] = []
  let leases: Record<string, any>[] = []
  let machines: Record<string, any>[] = []
  for (let i = 0; i < 40; i++) {
    const d = await dump()
    ;({ findings, leases, machines } = d as any)
    if (findings.some((f) => f.kind === 'stray')) break
    await new Promise((r) => setTimeout(r, 500))
  }

  t.test('duplicate: A leased by dnsmasq, B forced onto the same address', async (t) => {
    const f = findings.find((x) => x.id === `duplicate:${ipA}`)
    t.ok(f, `duplicate on ${ipA} reported: ${JSON.stringify(findings.map((x) => x.id))}`)
    t.same(f?.macs, [macA, macB].sort(), 'with both MACs')
    t.ok(f?.evidence.some((e: any) => e.source === 'arp' && e.mac === macB), 'evidence includes B ARPing the address')
  })
  t.test('stray: C took a lease and went silent; A (which uses its address) is not a stray', async (t) => {
    t.ok(findings.find((x) => x.id === `stray:${macC}:${ipC}`), `stray for ${macC} ${ipC}: ${JSON.stringify(findings.map((x) => x.id))}`)
    t.notOk(findings.find((x) => x.id === `stray:${macA}:${ipA}`), 'A answered the probe')
    t.ok(leases.some((b) => b.mac === macC && b.ip === ipC && b.server === '10.213.42.2'), 'C is in the table with its server')
  })
  t.test('two MACs with one UUID are one machine, reported as a multi-NIC boot', async (t) => {
    t.same(machines.find((m) => m.uuid === uuid)?.macs, ['52:54:00:aa:00:01', '52:54:00:aa:00:02'])
    t.ok(findings.find((x) => x.id === `multi-nic:${uuid}`))
  })
  t.test('a second DHCP server not in allowed_servers is reported; dnsmasq is not', async (t) => {
    t.match(findings.find((x) => x.id === 'rogue-server:10.213.42.9'), { kind: 'rogue-server', server: '10.213.42.9' })
    t.notOk(findings.find((x) => x.id === 'rogue-server:10.213.42.2'))
  })
}
