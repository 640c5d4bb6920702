/**
 * Interface lookup through the kernel (native/netif.c): an interface without carrier is found with its address and
 * index, pxebox starts on it with a warning and answers once the link comes up, and the DHCP socket is pinned with
 * SO_BINDTOIFINDEX through the project's own addon (no `sockopt` package).
 * Namespaces: xIF-srv (pxebox, veth `pxe0` 10.213.61.1/24) and xIF-cli (its peer `cli0` 10.213.61.50/24).
 * And the packaged default config (`interface: auto`, README command 1) on a box with two IPv4 interfaces: namespace
 * xIF-two (pxebox, `lan0` 10.213.64.1/24 and `vm0` 10.213.65.1/24, as a VM or container bridge would add) with
 * peers in xIF-lan and xIF-vm.
 */
import t from 'tap'
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ip, netnsUnavailable, NetnsLab, tsNodeArgs } from '../helpers/netns.js'
import { runPxebox } from '../helpers/daemon.js'
import { loadNative } from '../../src/host/native.js'

const SRV = 'xIF-srv'
const CLI = 'xIF-cli'

const why = await netnsUnavailable()
const native = loadNative()

t.test('a link without carrier: found by the kernel lookup, served with a warning, answers once it comes up', { skip: why ?? (native.addon ? false : `native addon: ${native.reason}`) }, async (t) => {
  const lab = new NetnsLab()
  t.teardown(() => lab.cleanup())
  await lab.namespace(SRV)
  await lab.namespace(CLI)
  await lab.veth({ ns: SRV, ifname: 'pxe0', cidr: '10.213.61.1/24', peerNs: CLI, peerIfname: 'cli0' })
  await ip('-n', CLI, 'addr', 'add', '10.213.61.50/24', 'dev', 'cli0')
  // The peer end down: pxe0 is UP but has no carrier (NO-CARRIER, not RUNNING), as with a cable unplugged at boot.
  await ip('-n', CLI, 'link', 'set', 'cli0', 'down')
  // The peer's carrier loss reaches pxe0 asynchronously on newer kernels (seen on 6.18: a probe right after `ip link
  // set down` still saw pxe0 RUNNING), so wait until the kernel reports it before asking what the lookup sees.
  await waitNoCarrier(lab, SRV, 'pxe0')

  // What the lookup sees inside the namespace, next to what Node alone would have seen.
  const probe = `
    import { resolvePxeInterface } from ${JSON.stringify(new URL('../../src/host/interfaces.ts', import.meta.url).href)}
    import { networkInterfaces } from 'node:os'
    console.log(JSON.stringify({ resolved: resolvePxeInterface('pxe0', undefined), node: Object.keys(networkInterfaces()) }))`
  const { stdout } = await lab.exec(SRV, [process.execPath, ...tsNodeArgs(), '--input-type=module', '-e', probe])
  const seen = JSON.parse(stdout.trim().split('\n').pop()!) as { resolved: Record<string, unknown>; node: string[] }
  t.notOk(seen.node.includes('pxe0'), 'os.networkInterfaces() leaves the interface out (why the kernel is asked instead)')
  t.match(seen.resolved, { name: 'pxe0', address: '10.213.61.1', prefix: 24, carrier: false, mtu: 1500 })
  t.ok(Number(seen.resolved.ifindex) > 1, 'ifindex from if_nametoindex')

  const dir = mkdtempSync(join(tmpdir(), 'pxebox-if-'))
  mkdirSync(join(dir, 'firmware'))
  mkdirSync(join(dir, 'data'))
  const file = join(dir, 'config.yaml')
  writeFileSync(file, 'interface: pxe0\ndata_dir: ./data\nassets_dir: ./data\ntftp: { root: ./firmware }\nhttp: { listen: "0.0.0.0:8080" }\ntracking: { enabled: false }\n')
  const daemon = runPxebox(['serve', '--config', file], { netns: SRV })
  t.teardown(() => daemon.kill())
  await daemon.waitFor(/pxe0 is down or has no carrier: serving anyway/, 20_000)
  await daemon.waitFor(/DHCP server listening/, 20_000)
  t.match(daemon.stdout() + daemon.stderr(), /"pinned":true/, 'the port 67 socket is pinned through the addon')

  await ip('-n', CLI, 'link', 'set', 'cli0', 'up')
  let body = ''
  for (let i = 0; i < 50 && body === ''; i++) {
    body = await lab.exec(CLI, ['curl', '-fsS', '--max-time', '2', 'http://10.213.61.1:8080/']).then((r) => r.stdout, () => '')
    if (body === '') await new Promise((r) => setTimeout(r, 200))
  }
  t.match(body, /pxebox/i, 'HTTP answers from the peer once the link is up')
})

/** Waits (up to 5 s) until `ifname` in `ns` reports no carrier and is no longer operationally up. */
async function waitNoCarrier(lab: NetnsLab, ns: string, ifname: string): Promise<void> {
  let state = ''
  for (let i = 0; i < 50; i++) {
    state = (await lab.exec(ns, ['cat', `/sys/class/net/${ifname}/carrier`, `/sys/class/net/${ifname}/operstate`])).stdout.trim().replace(/\n/g, ' ')
    if (state !== '' && !state.startsWith('1') && !state.endsWith('up')) return
    await new Promise((r) => setTimeout(r, 100))
  }
  throw new Error(`${ifname} in ${ns} still has carrier after its peer went down: carrier/operstate ${state}`)
}

/** The packaged default config (debian/config.yaml, what README command 1 installs) with this test's folders. */
function packagedConfig(dir: string): string {
  mkdirSync(join(dir, 'firmware'), { recursive: true })
  mkdirSync(join(dir, 'data'), { recursive: true })
  const packaged = readFileSync(new URL('../../debian/config.yaml', import.meta.url), 'utf8')
  const text = packaged
    .replace(/^data_dir: .*$/m, `data_dir: ${join(dir, 'data')}`)
    .replace(/^assets_dir: .*$/m, `assets_dir: ${join(dir, 'data')}`)
    .replace(/^  root: \/usr\/lib\/pxebox\/firmware.*$/m, `  root: ${join(dir, 'firmware')}`)
  if (!/^interface: auto\b/m.test(text) || text.includes('/var/lib/pxebox') || text.includes('/usr/lib/pxebox')) throw new Error(`debian/config.yaml changed shape:\n${packaged}`)
  const file = join(dir, 'config.yaml')
  writeFileSync(file, text)
  return file
}

t.test('the default config (interface: auto) on a box with two IPv4 interfaces', { skip: why ?? false }, async (t) => {
  const lab = new NetnsLab()
  t.teardown(() => lab.cleanup())
  await lab.namespace('xIF-two')
  await lab.namespace('xIF-lan')
  await lab.namespace('xIF-vm')
  await lab.veth({ ns: 'xIF-two', ifname: 'lan0', cidr: '10.213.64.1/24', peerNs: 'xIF-lan', peerIfname: 'cli0' })
  await lab.veth({ ns: 'xIF-two', ifname: 'vm0', cidr: '10.213.65.1/24', peerNs: 'xIF-vm', peerIfname: 'cli0' })
  await ip('-n', 'xIF-lan', 'addr', 'add', '10.213.64.50/24', 'dev', 'cli0')
  const file = packagedConfig(mkdtempSync(join(tmpdir(), 'pxebox-if-two-')))

  await t.test('no default route, both addresses private: no rule decides, a clear error and exit 2', async (t) => {
    const daemon = runPxebox(['serve', '--config', file], { netns: 'xIF-two' })
    t.teardown(() => daemon.kill())
    t.equal(await daemon.exited, 2)
    t.match(
      daemon.stderr(),
      /interface: auto is ambiguous: this box has 2 interfaces with IPv4 \(lan0 10\.213\.64\.1\/24, vm0 10\.213\.65\.1\/24\), no default route through any of them, and 2 with a private address; set `interface:` to the PXE VLAN one/,
    )
  })

  await t.test('the default route through lan0 (via 10.213.64.254): it starts there, says which and why, and serves', async (t) => {
    await ip('-n', 'xIF-two', 'route', 'add', 'default', 'via', '10.213.64.254', 'dev', 'lan0')
    const daemon = runPxebox(['serve', '--config', file], { netns: 'xIF-two' })
    t.teardown(() => daemon.kill())
    const [chosen] = await daemon.waitFor(/interface: auto chose \S+: [^"]*/, 20_000)
    t.equal(chosen, 'interface: auto chose lan0: the default route leaves through it (via 10.213.64.254); other IPv4 interfaces: vm0')
    await daemon.waitFor(/DHCP server listening/, 20_000)
    t.match(daemon.stdout(), /"pinned":true/, 'port 67 pinned to lan0: the other interface gets no answers')
    const { stdout } = await lab.exec('xIF-lan', ['curl', '-fsS', '--max-time', '5', 'http://10.213.64.1:8080/'])
    t.match(stdout, /pxebox/i, 'HTTP answers on lan0')
    daemon.child.kill('SIGTERM')
    t.equal(await daemon.exited, 0)
  })
})
