import type { ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { decode, getOption, messageType, vendorClass } from '../../src/dhcp/index.js'
import { NetnsLab, netnsUnavailable, tsNodeArgs } from '../helpers/netns.js'
import { captureFrames, frame } from './fixtures.js'
import { onJsonLines } from '../helpers/json-lines.js'

// Two LANs on one box: the PXE bridge (10.213.31.0/24) and another LAN (10.213.32.0/24), a client on each.
const SRV = 'dhcpA-srv'
const C_PXE = 'dhcpA-cpxe'
const C_LAN = 'dhcpA-clan'
const RUNNER = fileURLToPath(new URL('./netns-runner.ts', import.meta.url))
const node = (role: string, args: object): string[] => [process.execPath, ...tsNodeArgs(), RUNNER, role, JSON.stringify(args)]

const reason = await netnsUnavailable()
if (reason !== undefined) {
  t.plan(0, `netns DHCP tests skipped: ${reason}`)
} else {
  const lab = new NetnsLab()
  t.teardown(() => lab.cleanup())
  await lab.namespace(SRV)
  await lab.bridge(SRV, 'brpxe', '10.213.31.1/24')
  await lab.bridge(SRV, 'brlan', '10.213.32.1/24')
  await lab.namespace(C_PXE)
  await lab.veth({ ns: C_PXE, ifname: 'eth0', cidr: '10.213.31.50/24', peerNs: SRV, peerIfname: 'vpxe0', bridge: 'brpxe', defaultRoute: true })
  await lab.namespace(C_LAN)
  await lab.veth({ ns: C_LAN, ifname: 'eth0', cidr: '10.213.32.50/24', peerNs: SRV, peerIfname: 'vlan0', bridge: 'brlan', defaultRoute: true })

  const frames = captureFrames()
  // OVMF's DISCOVER from the capture, with a fresh xid per client so replies cannot be confused.
  const discover = (xid: number): string => {
    const b = Buffer.from(frame(frames, 1).payload)
    b.writeUInt32BE(xid, 4)
    return b.toString('base64')
  }

  /** Starts the runner's server role and resolves with its first status line. */
  const startServer = (args: object): Promise<{ child: ChildProcess; status: Record<string, unknown>; lines: Record<string, unknown>[] }> =>
    new Promise((resolve, reject) => {
      const child = lab.spawn(SRV, node('server', args))
      const lines: Record<string, unknown>[] = []
      let stderr = ''
      child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()))
      onJsonLines(child.stdout, (line) => {
        lines.push(line)
        if ('ready' in line || 'error' in line) resolve({ child, status: line, lines })
      })
      child.on('exit', (code) => reject(new Error(`server exited (${code}) before saying ready: ${stderr}`)))
      setTimeout(() => reject(new Error(`server not ready in 20 s: ${stderr}`)), 20_000)
    })

  const clientRun = async (ns: string, xid: number) => {
    const { stdout } = await lab.exec(ns, node('client', { packet: discover(xid), listenMs: 1500 }))
    const out = JSON.parse(stdout.trim().split('\n').pop() as string) as { replies: { from: string; port: number; payload: string }[] }
    return out.replies
  }

  t.test('pinned to the PXE bridge: the PXE client gets exactly one offer, the other LAN gets none', async (t) => {
    const { child, status, lines } = await startServer({ interfaceName: 'brpxe', address: '10.213.31.1' })
    t.teardown(() => void child.stdin?.end())
    t.same(status, { ready: true, pinned: true })
    const [onPxe, onLan] = await Promise.all([clientRun(C_PXE, 0x11111111), clientRun(C_LAN, 0x22222222)])
    t.equal(onLan.length, 0, 'no answer on the other LAN')
    t.equal(onPxe.length, 1, 'exactly one offer on the PXE VLAN')
    const r = onPxe[0]!
    t.same([r.from, r.port], ['10.213.31.1', 67], 'from our PXE address, source port 67')
    const offer = decode(Buffer.from(r.payload, 'base64'))
    t.match(offer, { op: 2, xid: 0x11111111, yiaddr: '0.0.0.0', siaddr: '10.213.31.1', file: 'snponly.efi', chaddr: '52:54:00:e2:e0:01' })
    t.equal(messageType(offer), 2)
    t.equal(vendorClass(offer), 'PXEClient')
    t.equal(getOption(offer.options, 54)?.toString('hex'), '0ad51f01')
    t.equal(getOption(offer.options, 43), undefined)
    const events = lines.filter((l) => 'event' in l).map((l) => l.event as { step: string; detail: Record<string, unknown> })
    t.same(events.map((e) => [e.step, e.detail.boot_file]), [['offer', 'snponly.efi']], 'one offer event, nothing for the other LAN')
  })

  t.test('multi-homed and pinning unavailable: refuses to start and says why', async (t) => {
    const { child, status } = await startServer({ interfaceName: 'brpxe', address: '10.213.31.1', failPinning: true })
    t.teardown(() => void child.stdin?.end())
    t.equal(status.code, 'ERR_DHCP_SERVER_START')
    t.match(String(status.error), /cannot pin the DHCP socket to brpxe \(SO_BINDTOIFINDEX: simulated: SO_BINDTOIFINDEX unavailable\), and this box has other IPv4 interfaces \(brlan\)/)
    t.match(String(status.error), /dhcp\.interface_pinning: off/)
    const off = await startServer({ interfaceName: 'brpxe', address: '10.213.31.1', failPinning: true, pinning: 'off' })
    t.teardown(() => void off.child.stdin?.end())
    t.same(off.status, { ready: true, pinned: false }, 'interface_pinning: off starts unpinned')
    // The control for the pinned test: unpinned, the other LAN's DISCOVER reaches the policy and is answered.
    await clientRun(C_LAN, 0x33333333)
    const events = off.lines.filter((l) => 'event' in l).map((l) => l.event as { step: string })
    t.same(events.map((e) => e.step), ['offer'], 'unpinned, the DISCOVER from the other LAN is answered')
  })
}
