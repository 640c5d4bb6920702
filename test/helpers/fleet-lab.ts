/**
 * The network of issue 17's fleet tests: a real 3-member etcd cluster that pxebox appliances in their own network
 * namespaces reach over a management network, and one PXE bridge per site that the appliances serve and the
 * simulated machines (or VMs) boot on.
 *
 *   root ns ── <name>h ─┐
 *                       │  <name>-c (core namespace)
 *     etcd members  10.213.M.1 on bridge `mgmt` (M = the file's `subnet`), client ports 2379/2381/2383
 *                       │
 *     appliance k ns  <name>a<k>: `mgmt0` 10.213.M.(10+k)  and `pxe0` 10.213.(M+1+site).(10+k) on bridge `site<i>`
 *     machine j ns    <name>m<j>: `eth0` on bridge `site<i>`, no address (its DHCP client or a VM asks for one)
 *
 * The test process sits on the management network too (`<name>h`, 10.213.M.254), so it talks to etcd and to each
 * appliance's HTTP API directly. Each test file passes its own `name` (at most 5 characters) and `subnet` (a block of
 * 1 + sites third octets no other file uses), since tap runs files in parallel and the root-namespace end is shared.
 * Everything is removed in the test's teardown, on failure too: the namespaces (and with them every interface and the
 * root end's veth) and the etcd members, stopped by PID.
 */
import type { Test } from 'tap'
import { ip, NetnsLab } from './netns.js'
import { startEtcdCluster, type EtcdCluster } from './etcd.js'

/** Where a fleet test's network lives. */
export interface FleetLabOptions {
  /** Prefix of every namespace and root-side interface: at most 5 characters, unique per test file. */
  name: string
  /** Third octet of the management network 10.213.<subnet>.0/24; site i uses <subnet + 1 + i>. Unique per file. */
  subnet: number
  /** Number of PXE bridges (sites); default 1. */
  sites?: number
}

/** An appliance's namespace and addresses. */
export interface FleetAppliance {
  readonly ns: string
  /** Its management address (what the test process and etcd traffic use). */
  readonly mgmtAddr: string
  /** Its PXE interface inside `ns`, and that interface's address and prefix length. */
  readonly pxeIf: 'pxe0'
  readonly pxeAddr: string
  readonly pxeCidr: string
  readonly site: number
}

/** A simulated machine's namespace, with its one interface on a site bridge. */
export interface FleetMachine {
  readonly ns: string
  readonly ifname: 'eth0'
  readonly site: number
}

/** The running lab. */
export interface FleetLab {
  readonly etcd: EtcdCluster
  /** The members' client URLs, as an appliance's `store.endpoints` lists them. */
  readonly endpoints: string[]
  /** The core namespace: etcd, the management bridge and the site bridges `site0`, `site1`, ... */
  readonly core: string
  /** The namespaces, veths and processes made (for `exec`/`spawn` inside them). */
  readonly lab: NetnsLab
  /** The first three octets of site `i`'s PXE network (e.g. "10.213.171"). */
  siteNet(i: number): string
  /** Adds appliance namespace number `k` (0..99) with a management NIC and a PXE NIC on site `site`. */
  appliance(k: number, site?: number): Promise<FleetAppliance>
  /** Adds machine namespace number `j` (0..99) with one NIC on site `site`'s bridge. */
  machine(j: number, site?: number): Promise<FleetMachine>
  /**
   * Puts a namespace made elsewhere (the e2e harness's PXE VLAN, test/e2e/harness.ts) on the management network as
   * appliance number `k` would be: `mgmt0` 10.213.M.(10+k). Returns that address. The namespace stays its maker's to
   * delete; the veth goes with it or with the core namespace, whichever goes first.
   */
  connect(ns: string, k: number): Promise<string>
}

/** Builds the lab and the etcd cluster in it; everything is removed when `t` ends. */
export async function startFleetLab(t: Test, opts: FleetLabOptions): Promise<FleetLab> {
  const { name, subnet } = opts
  const sites = opts.sites ?? 1
  if (name.length > 5) throw new Error(`fleet lab name "${name}" is longer than 5 characters (interface names are limited to 15)`)
  const lab = new NetnsLab()
  t.teardown(() => lab.cleanup())
  const core = `${name}-c`
  const mgmt = `10.213.${subnet}`
  const siteNet = (i: number): string => `10.213.${subnet + 1 + i}`

  await lab.namespace(core)
  await lab.bridge(core, 'mgmt', `${mgmt}.1/24`)
  for (let i = 0; i < sites; i++) await lab.bridge(core, `site${i}`)
  // The root namespace's end: a stale one from a killed run would hold the address, so it goes first.
  await ip('link', 'del', `${name}h`).catch(() => undefined)
  await ip('link', 'add', `${name}h`, 'type', 'veth', 'peer', 'name', `${name}hp`, 'netns', core)
  await ip('addr', 'add', `${mgmt}.254/24`, 'dev', `${name}h`)
  await ip('link', 'set', `${name}h`, 'up')
  await ip('-n', core, 'link', 'set', `${name}hp`, 'master', 'mgmt')
  await ip('-n', core, 'link', 'set', `${name}hp`, 'up')

  const etcd = await startEtcdCluster(t, 2379, 3, { host: `${mgmt}.1`, netns: core })

  const checkSite = (site: number): void => {
    if (!Number.isInteger(site) || site < 0 || site >= sites) throw new Error(`site ${site} is not one of this lab's ${sites} sites`)
  }

  return {
    etcd,
    endpoints: etcd.endpoints,
    core,
    lab,
    siteNet,
    async appliance(k, site = 0) {
      checkSite(site)
      const ns = `${name}a${k}`
      await lab.namespace(ns)
      await lab.veth({ ns, ifname: 'mgmt0', cidr: `${mgmt}.${10 + k}/24`, peerNs: core, peerIfname: `${name}a${k}m`, bridge: 'mgmt' })
      const pxeAddr = `${siteNet(site)}.${10 + k}`
      // The default route on the PXE NIC: replies to 255.255.255.255 need a route out of it.
      await lab.veth({ ns, ifname: 'pxe0', cidr: `${pxeAddr}/24`, peerNs: core, peerIfname: `${name}a${k}p`, bridge: `site${site}`, defaultRoute: true })
      return { ns, mgmtAddr: `${mgmt}.${10 + k}`, pxeIf: 'pxe0', pxeAddr, pxeCidr: `${pxeAddr}/24`, site }
    },
    async connect(ns, k) {
      await lab.veth({ ns, ifname: 'mgmt0', cidr: `${mgmt}.${10 + k}/24`, peerNs: core, peerIfname: `${name}a${k}m`, bridge: 'mgmt' })
      return `${mgmt}.${10 + k}`
    },
    async machine(j, site = 0) {
      checkSite(site)
      const ns = `${name}m${j}`
      await lab.namespace(ns)
      await lab.veth({ ns, ifname: 'eth0', peerNs: core, peerIfname: `${name}m${j}`, bridge: `site${site}`, defaultRoute: true })
      return { ns, ifname: 'eth0', site }
    },
  }
}
