/**
 * Interface lookup through the kernel (native/netif.c): an interface without carrier is found with its address and
 * index, pxebox starts on it with a warning and answers once the link comes up, and the DHCP socket is pinned with
 * SO_BINDTOIFINDEX through the project's own addon (no `sockopt` package).
 * Namespaces: xIF-srv (pxebox, veth `pxe0` 10.213.61.1/24) and xIF-cli (its peer `cli0` 10.213.61.50/24).
 */
import t from 'tap'
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs'
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
