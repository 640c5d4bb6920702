/**
 * Issue 17 acceptance 3 over the wire: all of etcd stopped, and two appliances on one PXE bridge keep booting a
 * machine they know. The real pxebox binary runs in two appliance namespaces of the fleet lab (test/helpers/fleet-lab.ts)
 * over its real 3-member etcd, both AUTHORITATIVE on one range (the stronger case: a boot during the outage needs the
 * lease the appliance holds, and a new client must get nothing). The machine is a namespace on the bridge with real
 * clients: busybox udhcpc (a PXE DISCOVER as BIOS firmware sends it, then iPXE's with user class "iPXE"), tftp-hpa and
 * curl (the iPXE script, the kernel, Ignition).
 *
 * Before the outage the machine boots once (at A), so its lease, its record and the catalog (a profile and a group
 * written through A's API) are in etcd and in both appliances' copies. Then every etcd member is killed, and:
 * - the known machine boots end to end at A and at B (the other one cut off the bridge for each);
 * - a new client gets no address and each appliance's log says why;
 * - B restarted during the outage serves from its copy (its banner says which) and boots the machine again;
 * - etcd back: both appliances flush their queued machine writes into etcd, merged with what the other flushed
 *   (machines/merge.ts), and B's API shows the boots queued there, the one from before its restart included (kept in
 *   its copy's outbox), and the boot A queued during the outage (B follows A's writes once etcd answers).
 */
import t, { type Test } from 'tap'
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ip, netnsUnavailable } from '../helpers/netns.js'
import { runPxebox, type RunningPxebox } from '../helpers/daemon.js'
import { openEtcdStore } from '../../src/store/index.js'
import { startFleetLab, type FleetAppliance, type FleetLab, type FleetMachine } from '../helpers/fleet-lab.js'

const TOKEN = 'fleet-outage-test-token'
const KNOWN = '52:54:00:17:40:01'
const STRANGER = '52:54:00:17:40:02'
const KERNEL = 'flo-kernel-bytes\n'
const LOADER = 'flo-undionly-bytes\n'
const IGNITION = '{"ignition":{"version":"3.4.0"},"storage":{"files":[{"path":"/etc/flo","contents":{"source":"data:,flo"}}]}}'

const reason = await netnsUnavailable()
if (reason !== undefined) t.plan(0, `fleet outage test skipped: ${reason}`)

interface Appliance {
  readonly name: string
  /** Its number in the lab (its bridge port in the core namespace is `floa<k>p`). */
  readonly k: number
  readonly net: FleetAppliance
  readonly dir: string
  /** The API and metrics over the management network. */
  readonly api: string
  d: RunningPxebox
}

/** The appliance's config: authoritative on the site's range, HTTP on 8080, the lab's etcd. */
async function configure(t: Test, fleet: FleetLab, name: string, net: FleetAppliance): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), `pxebox-flo-${name}-`))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  for (const sub of ['assets', 'tftp', 'ignition']) await mkdir(join(dir, sub), { recursive: true })
  await writeFile(join(dir, 'assets', 'vmlinuz'), KERNEL)
  await writeFile(join(dir, 'assets', 'local-k'), 'config.yaml default\n')
  await writeFile(join(dir, 'tftp', 'undionly.kpxe'), LOADER)
  await writeFile(join(dir, 'ignition', 'node.ign'), IGNITION)
  const site = fleet.siteNet(0)
  await writeFile(
    join(dir, 'config.yaml'),
    [
      'interface: pxe0',
      `data_dir: ${join(dir, 'data')}`,
      `assets_dir: ${join(dir, 'assets')}`,
      `ignition_dir: ${join(dir, 'ignition')}`,
      `dhcp: { mode: authoritative, range: { start: ${site}.100, end: ${site}.150 }, lease_time: 3600, arp_probe_ms: 0 }`,
      `tftp: { root: ${join(dir, 'tftp')} }`,
      'http: { listen: "0.0.0.0:8080" }',
      `api: { token: ${TOKEN} }`,
      'tracking: { enabled: false }',
      `store: { backend: etcd, endpoints: [${fleet.endpoints.join(', ')}], prefix: /flo, site: flo-site, name: ${name} }`,
      // Every other machine boots config.yaml's own default; the known one gets the shared group written at A.
      'profiles: { local: { boot: { kernel: /assets/local-k } } }',
      'groups: [{ id: local-default, profile: local }]',
    ].join('\n'),
  )
  return dir
}

function start(t: Test, a: Omit<Appliance, 'd'>): RunningPxebox {
  const d = runPxebox(['serve', '--config', join(a.dir, 'config.yaml')], { netns: a.net.ns })
  t.teardown(() => d.kill())
  return d
}

const auth = { authorization: `Bearer ${TOKEN}` }
const logs = (a: Appliance): string => a.d.stdout() + a.d.stderr()
const storeUp = async (a: Appliance): Promise<string | undefined> => /\npxebox_store_up (\d)\n/.exec(await (await fetch(`${a.api}/metrics`)).text())?.[1]
async function until(what: string, ok: () => Promise<boolean> | boolean, ms = 30_000): Promise<void> {
  const end = Date.now() + ms
  while (!(await ok())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 200))
  }
}

/** What one boot through an appliance showed: the address, the loader, the script, the kernel and Ignition. */
interface Boot {
  ip: string
  server: string
  bootFile: string
  ipxeScriptUrl: string
  kernel: string
  ignition: unknown
}

if (reason === undefined) {
  const top = t
  const fleet = await startFleetLab(t, { name: 'flo', subnet: 174 })
  const work = await mkdtemp(join(tmpdir(), 'pxebox-flo-'))
  t.teardown(() => rm(work, { recursive: true, force: true }))
  // udhcpc's script: prints what the lease says (busybox exports the BOOTP file field as boot_file).
  const script = join(work, 'udhcpc.sh')
  await writeFile(script, '#!/bin/sh\necho "udhcpc $1 ip=$ip siaddr=$siaddr serverid=$serverid boot_file=${boot_file:-$bootfile}"\n')
  await chmod(script, 0o755)

  const nets = [await fleet.appliance(0), await fleet.appliance(1)]
  const appliances: Appliance[] = []
  for (const [i, name] of ['flo-a', 'flo-b'].entries()) {
    const net = nets[i]!
    const base = { name, k: i, net, dir: await configure(t, fleet, name, net), api: `http://${net.mgmtAddr}:8080` }
    appliances.push({ ...base, d: start(t, base) })
  }
  const [A, B] = appliances as [Appliance, Appliance]
  for (const a of appliances) await a.d.waitFor(/listening on/)
  const known = await fleet.machine(0)
  const stranger = await fleet.machine(1)
  await ip('-n', known.ns, 'link', 'set', 'eth0', 'address', KNOWN)
  await ip('-n', stranger.ns, 'link', 'set', 'eth0', 'address', STRANGER)

  /** Only `a` on the PXE bridge (the other's port down), so the machine's broadcasts reach that one alone. */
  const only = async (a: Appliance | undefined): Promise<void> => {
    for (const x of appliances) await ip('-n', fleet.core, 'link', 'set', `floa${x.k}p`, a === undefined || a === x ? 'up' : 'down')
  }
  const udhcpc = async (m: FleetMachine, extra: string[] = []): Promise<Record<string, string>> => {
    const argv = ['busybox', 'udhcpc', '-f', '-q', '-n', '-t', '4', '-T', '2', '-i', 'eth0', '-s', script, '-V', 'PXEClient:Arch:00000:UNDI:002001', '-x', '0x5d:0000', '-x', '0x5e:010201', ...extra]
    const { stdout } = await fleet.lab.exec(m.ns, argv, { timeoutMs: 20_000 })
    const line = stdout.split('\n').find((l) => l.startsWith('udhcpc bound'))
    if (line === undefined) throw new Error(`udhcpc bound no lease: ${stdout}`)
    return Object.fromEntries(line.split(' ').slice(2).map((kv) => kv.split('=') as [string, string]))
  }
  const curl = async (m: FleetMachine, url: string): Promise<string> => (await fleet.lab.exec(m.ns, ['curl', '-sf', '--max-time', '10', url])).stdout

  /** The known machine boots as BIOS firmware and then iPXE do, through whichever appliance answers. */
  const boot = async (t: Test, m: FleetMachine): Promise<Boot> => {
    const first = await udhcpc(m)
    await ip('-n', m.ns, 'addr', 'flush', 'dev', 'eth0')
    await ip('-n', m.ns, 'addr', 'add', `${first.ip}/24`, 'dev', 'eth0')
    const loader = join(work, `loader-${Date.now()}`)
    await fleet.lab.exec(m.ns, ['tftp', '-m', 'binary', first.siaddr!, '-c', 'get', first.boot_file!, loader])
    t.equal(await readFile(loader, 'utf8'), LOADER, `TFTP ${first.boot_file} from ${first.siaddr}`)
    // iPXE asks again, saying it is iPXE (option 77): the answer is the script URL.
    const second = await udhcpc(m, ['-x', '0x4d:69505845'])
    const bootIpxe = await curl(m, second.boot_file!)
    t.match(bootIpxe, /^#!ipxe\n[\s\S]*chain/, `the bootstrap script ${second.boot_file}`)
    const http = `http://${first.siaddr}:8080`
    const script = await curl(m, `${http}/ipxe?mac=${KNOWN.replace(/:/g, '-')}`)
    const kernelUrl = /^kernel (\S+)/m.exec(script)?.[1]
    t.ok(kernelUrl?.endsWith('/assets/vmlinuz'), `the script names the shared profile's kernel: ${script}`)
    const kernel = await curl(m, kernelUrl!)
    const ignition = JSON.parse(await curl(m, `${http}/ignition?mac=${KNOWN.replace(/:/g, '-')}`)) as unknown
    return { ip: first.ip!, server: first.serverid!, bootFile: first.boot_file!, ipxeScriptUrl: second.boot_file!, kernel, ignition }
  }
  const checkBoot = (t: Test, b: Boot, at: Appliance, leased: string): void => {
    t.equal(b.server, at.net.pxeAddr, `DHCP answered by ${at.name}`)
    t.equal(b.ip, leased, 'the address the machine holds')
    t.equal(b.bootFile, 'undionly.kpxe')
    t.equal(b.ipxeScriptUrl, `http://${at.net.pxeAddr}:8080/boot.ipxe`)
    t.equal(b.kernel, KERNEL, 'the kernel')
    t.match(b.ignition, { ignition: { version: '3.4.0' }, storage: { files: [{ path: '/etc/flo' }] } }, 'Ignition')
  }

  let leased = ''
  t.test('before the outage: the catalog written at A reaches B; the machine boots once', async (t) => {
    const put = (path: string, body: unknown) => fetch(`${A.api}${path}`, { method: 'PUT', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify(body) })
    t.equal((await put('/v1/profiles/node', { boot: { kernel: '/assets/vmlinuz' }, ignition: 'node.ign' })).status, 200)
    t.equal((await put('/v1/groups/known', { id: 'known', profile: 'node', selector: { mac: KNOWN } })).status, 200)
    await until('B serves the shared group', async () => /\/assets\/vmlinuz/.test(await (await fetch(`${B.api}/ipxe?mac=${KNOWN.replace(/:/g, '-')}`)).text()))
    await only(A)
    const b = await boot(t, known)
    leased = b.ip
    checkBoot(t, b, A, b.ip)
    await only(undefined)
    t.equal(await storeUp(A), '1')
  })

  let outageStart = ''
  /** When each appliance booted the machine during the outage (its events are queued there). */
  const outageBoots = new Map<string, { from: string; to: string }>()
  t.test('all of etcd stopped: both appliances boot the known machine; a new client gets nothing, and the log says why', async (t) => {
    // Let B's lease book see the lease A granted (the watch) before etcd goes.
    await new Promise((r) => setTimeout(r, 1000))
    outageStart = new Date().toISOString()
    await fleet.etcd.stopAll({ kill: true })
    for (const a of appliances) await until(`${a.name} finds etcd gone`, async () => (await storeUp(a)) === '0')
    for (const a of appliances) t.match(logs(a), /the shared store etcd \S+ \/flo is unreachable: serving reads from the local copy/, `${a.name}: one line says so`)
    for (const a of appliances) {
      await only(a)
      const from = new Date().toISOString()
      checkBoot(t, await boot(t, known), a, leased)
      outageBoots.set(a.name, { from, to: new Date().toISOString() })
      t.match(logs(a), /renewal ACKed while the lease store is unreachable/, `${a.name} ACKed the lease it holds`)
    }
    await only(undefined)
    await t.rejects(udhcpc(stranger), /udhcpc|Command failed/, 'a new client gets no address')
    for (const a of appliances) t.match(logs(a), /lease store \S+ .*unreachable: no new address is handed out without a committed write/, `${a.name} logs why`)
  })

  let restartedAt = ''
  t.test('B restarted during the outage serves from its copy', async (t) => {
    B.d.child.kill('SIGTERM')
    t.equal(await B.d.exited, 0)
    restartedAt = new Date().toISOString()
    B.d = start(top, B) // torn down with the file, not with this subtest
    await B.d.waitFor(/listening on/)
    t.match(logs(B), /\n +etcd unreachable at start: serving the copy of \S+ \(revision \d+\) from \S+store-cache\.db\n/, 'the banner says which state it serves')
    await only(B)
    checkBoot(t, await boot(t, known), B, leased)
    await only(undefined)
  })

  t.test('etcd back: the queued machine writes are flushed and merged; B shows the boots queued there and at A', async (t) => {
    await fleet.etcd.startAll()
    for (const a of appliances) {
      await until(`${a.name} follows etcd again`, async () => (await storeUp(a)) === '1')
      const flushed = /answers again after [\d.]+ s; (\d+) queued writes flushed/.exec(logs(a))
      t.ok(Number(flushed?.[1]) > 0, `${a.name} flushed its queued machine writes (${flushed?.[0]})`)
      t.notMatch(logs(a), /queued during the outage was refused/, 'none refused')
    }
    const a = outageBoots.get(A.name)!
    const within = (times: string[], w: { from: string; to: string }): boolean => times.some((x) => x >= w.from && x <= w.to)
    /** Every time B's view holds: timeline entries and the starts of past attempts. */
    type View = { last_seen: string; timeline: { time: string; step: string }[]; history: { started: string }[] }
    const timesOf = (v: View): string[] => [...v.timeline.map((e) => e.time), ...v.history.map((h) => h.started)]
    // In etcd: one record holding both appliances' outage boots (merged at flush), not the last flusher's alone.
    const etcd = await openEtcdStore({ endpoints: fleet.endpoints, prefix: '/flo' })
    t.teardown(() => etcd.close())
    const stored = (await etcd.get('machine', KNOWN))?.value as { last_seen?: string } | undefined
    t.ok((stored?.last_seen ?? '') > outageStart, `etcd holds the machine as seen during the outage (last_seen ${stored?.last_seen})`)
    const storedTimes = timesOf({ ...(stored as View), ...((await etcd.get('machine-timeline', KNOWN))?.value as View) })
    t.ok(within(storedTimes, a) && within(storedTimes, outageBoots.get(B.name)!), 'etcd holds the boots both appliances queued')
    // B follows A's writes: the events A queued during the outage appear in B's own API.
    let view: View | undefined
    const t0 = Date.now()
    await until("A's queued boot in B's /v1/machines", async () => {
      const res = await fetch(`${B.api}/v1/machines/${KNOWN}`, { headers: auth })
      view = res.status === 200 ? ((await res.json()) as View) : undefined
      return view !== undefined && within(timesOf(view), a)
    })
    t.comment(`A's queued boot shown at B ${Date.now() - t0} ms after both followed etcd again`)
    const times = timesOf(view!)
    t.ok(within(times, a), `the boot A queued during the outage (${a.from} .. ${a.to})`)
    t.ok(times.some((x) => x > outageStart && x < restartedAt), 'the boot B queued before its restart (kept in its copy)')
    t.ok(times.some((x) => x > restartedAt), 'the boot after its restart')
    t.ok(view!.timeline.some((e) => e.step === 'ack'), JSON.stringify(view!.timeline.map((e) => e.step)))
  })
}
