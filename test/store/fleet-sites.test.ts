/**
 * Issue 17 acceptance 4 over the wire: two sites on two bridges. Appliance pxe-a serves site-1's bridge, pxe-b
 * site-2's, both real daemons (proxy DHCP) in their own namespaces over a real 3-member etcd on the management
 * network (test/helpers/fleet-lab.ts). A simulated machine boots at each site (an OVMF DISCOVER answered with a
 * proxy offer, then its `/ipxe?mac=` script): each record, read through either appliance's API, carries its site and
 * the appliance that saw it; `/v1/appliances` lists both with their site and address; pxe-b killed with SIGKILL (by
 * PID) shows as gone at pxe-a within its heartbeat lease TTL (10 s), and its site's machine stays listed. The same
 * registry on loopback, with the duplicate-name refusal and a whole-cluster outage: test/store/etcd-registry.test.ts.
 */
import t, { type Test } from 'tap'
import { fileURLToPath } from 'node:url'
import { netnsUnavailable, tsNodeArgs } from '../helpers/netns.js'
import { startFleetLab, type FleetAppliance, type FleetLab, type FleetMachine } from '../helpers/fleet-lab.js'
import { appliancesAt, expectGone, fleetMachinesAt } from '../helpers/fleet-api.js'
import { FLEET_HTTP_PORT, GONE_WITHIN_MS, killUntilGone, startFleetAppliance } from '../helpers/fleet-appliance.js'
import { onJsonLines } from '../helpers/json-lines.js'
import type { PxeClientArgs, PxeClientResult } from '../helpers/pxe-abuse-roles.js'

const ROLES = fileURLToPath(new URL('../helpers/pxe-abuse-roles.ts', import.meta.url))
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** One machine boots at its site: an OVMF DISCOVER (answered with a proxy offer), then iPXE's `/ipxe?mac=` fetch. */
async function bootMachine(t: Test, lab: FleetLab, m: FleetMachine, addr: string, mac: string, server: FleetAppliance): Promise<void> {
  await lab.lab.exec(m.ns, ['ip', 'addr', 'add', `${addr}/24`, 'dev', m.ifname])
  const args: PxeClientArgs = { server: server.pxeAddr, mac, durationMs: 1500, giveUpMs: 1000, intervalMs: 500 }
  const child = lab.lab.spawn(m.ns, [process.execPath, ...tsNodeArgs(), ROLES, 'pxe-client', JSON.stringify(args)])
  const lines: Record<string, unknown>[] = []
  onJsonLines(child.stdout, (line) => lines.push(line))
  let stderr = ''
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()))
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve))
  const result = lines[lines.length - 1] as PxeClientResult | undefined
  t.equal(code, 0, `the DHCP client ran (${stderr.slice(-500)})`)
  t.ok(result?.latencies.some((l) => l !== null), `${mac}: the site's appliance answered its DISCOVER with a proxy offer`, { latencies: result?.latencies })
  const script = await lab.lab.exec(m.ns, ['curl', '-sS', '-m', '10', `http://${server.pxeAddr}:${FLEET_HTTP_PORT}/ipxe?mac=${mac.replace(/:/g, '-')}`])
  t.match(script.stdout, /^#!ipxe\nkernel http:\/\/\S+\/assets\/k/, `${mac}: its boot script`)
}

const reason = await netnsUnavailable()
t.test('two sites: records carry their site and appliance at either API; both appliances listed; a killed one gone within its TTL', { skip: reason ?? false }, async (t) => {
  const lab = await startFleetLab(t, { name: 'fls', subnet: 182, sites: 2 })
  const [whereA, whereB] = [await lab.appliance(0, 0), await lab.appliance(1, 1)]
  const [a, b] = await Promise.all([
    startFleetAppliance(t, lab, whereA, { name: 'pxe-a', site: 'site-1', prefix: 'fleet-sites', tracking: '{ enabled: false }' }),
    startFleetAppliance(t, lab, whereB, { name: 'pxe-b', site: 'site-2', prefix: 'fleet-sites', tracking: '{ enabled: false }' }),
  ])

  const macs = { site1: '52:54:00:b6:01:01', site2: '52:54:00:b6:02:01' }
  await bootMachine(t, lab, await lab.machine(0, 0), `${lab.siteNet(0)}.50`, macs.site1, whereA)
  await bootMachine(t, lab, await lab.machine(1, 1), `${lab.siteNet(1)}.50`, macs.site2, whereB)

  // Each appliance writes its records to etcd after a second of quiet (machines/store.ts flushDelayMs).
  const expected = [
    [macs.site1, 'site-1', 'pxe-a'],
    [macs.site2, 'site-2', 'pxe-b'],
  ]
  const listedAt = async (url: string) => (await fleetMachinesAt(url)).machines.map((m) => [m.mac, m.site, m.appliance])
  for (let i = 0; i < 100 && JSON.stringify(await listedAt(b.url)) !== JSON.stringify(expected); i++) await sleep(100)
  for (const [name, url] of [['pxe-a', a.url], ['pxe-b', b.url]] as const) {
    const fleet = await fleetMachinesAt(url)
    t.equal(fleet.available, true)
    t.same(fleet.machines.map((m) => [m.mac, m.site, m.appliance]), expected, `${name}'s API: each site's machine with its site and the appliance that saw it`)
    t.equal(fleet.machines.find((m) => m.mac === macs.site1)?.group, 'everyone')
  }
  for (const [mac, url, site, appliance] of [[macs.site1, a.url, 'site-1', 'pxe-a'], [macs.site2, b.url, 'site-2', 'pxe-b']] as const) {
    const own = (await (await fetch(`${url}/v1/machines/${mac}`)).json()) as { site?: string; appliance?: string; timeline: { stage?: string }[] }
    t.same([own.site, own.appliance], [site, appliance], `${appliance}'s own record of ${mac}`)
    t.ok(own.timeline.some((e) => e.stage === 'dhcp') && own.timeline.some((e) => e.stage === 'script'), `${appliance} saw the proxy offer and the script`, { timeline: own.timeline })
  }

  for (const [name, url] of [['pxe-a', a.url], ['pxe-b', b.url]] as const) {
    const list = await appliancesAt(url)
    t.same(
      list.appliances.map((x) => [x.name, x.site, x.state, x.interface, x.address]),
      [['pxe-a', 'site-1', 'up', 'pxe0', whereA.pxeAddr], ['pxe-b', 'site-2', 'up', 'pxe0', whereB.pxeAddr]],
      `${name}'s API lists both appliances, each with its site and address`,
    )
  }

  const { record } = await expectGone(t, lab.etcd.term, GONE_WITHIN_MS, 'pxe-b (at pxe-a)', () => killUntilGone(t, b, 'pxe-b', a.url))
  t.equal(record?.site, 'site-2', 'its last record is kept, with its site')
  t.same((await appliancesAt(a.url)).appliances.map((x) => [x.name, x.state]), [['pxe-a', 'up'], ['pxe-b', 'gone']])
  t.same(await listedAt(a.url), expected, "site-2's machine stays listed with the appliance that saw it")
})
