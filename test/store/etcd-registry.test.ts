/**
 * The appliance registry (issue 17 acceptance 4, registry half) with real daemons on loopback over a real 3-member
 * etcd: both appliances listed up with their site; one killed with SIGKILL shows as gone within its lease TTL (10 s)
 * and stays listed; a second appliance with a live name is refused at start with the holder named; pxebox_store_up.
 */
import t, { type Test } from 'tap'
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { runPxebox, type RunningPxebox } from '../helpers/daemon.js'
import { loopbackConfigText } from '../helpers/loopback-config.js'
import { ETCD_PORTS, startEtcdCluster } from '../helpers/etcd.js'
import { appliancesAt, expectGone, untilGone, type ListedAppliance } from '../helpers/fleet-api.js'

const cluster = await startEtcdCluster(t, ETCD_PORTS.appliances)

function start(t: Test, dir: string, name: string): RunningPxebox {
  const d = runPxebox(['serve', '--config', join(dir, `${name}.yaml`)])
  t.teardown(() => d.kill())
  return d
}

async function configure(t: Test, name: string, site: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), `pxebox-registry-${name}-`))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  await mkdir(join(dir, 'assets'), { recursive: true })
  const store = `store: { backend: etcd, endpoints: [${cluster.endpoints.join(', ')}], prefix: /registry-test, site: ${site}, name: ${name} }`
  await writeFile(join(dir, `${name}.yaml`), loopbackConfigText(dir, 'tftp: { enabled: false }', 'tracking: { enabled: false }', store))
  return dir
}

t.test('two appliances listed up; SIGKILL of one shows it gone within its TTL; a live name is refused', async (t) => {
  const a = start(t, await configure(t, 'pxe-a', 'site-1'), 'pxe-a')
  const b = start(t, await configure(t, 'pxe-b', 'site-2'), 'pxe-b')
  const url = `http://127.0.0.1:${(await a.waitFor(/listening on 127\.0\.0\.1:(\d+)/))[1]}`
  await b.waitFor(/listening on/)

  const both = await appliancesAt(url)
  t.equal(both.available, true)
  t.same(both.appliances.map((x) => [x.name, x.site, x.state, x.address]), [['pxe-a', 'site-1', 'up', '127.0.0.1'], ['pxe-b', 'site-2', 'up', '127.0.0.1']], 'both listed, by site')
  t.match(await (await fetch(`${url}/metrics`)).text(), /\npxebox_store_up 1\n/, 'pxebox_store_up is 1')

  // The same name again while pxe-a runs: refused at start, the holder named.
  const dup = start(t, await configure(t, 'pxe-a', 'site-3'), 'pxe-a')
  t.equal(await dup.exited, 2, 'exit 2: a start-up error')
  t.match(dup.stderr(), /appliance name "pxe-a" is held by a running appliance \(host .*, site site-1, address 127\.0\.0\.1, started .*\); give this one another store\.name/)

  const { record: gone } = await expectGone(t, cluster.term, 12_000, 'pxe-b', async () => {
    const killedAt = Date.now()
    b.kill()
    await b.exited
    return untilGone(url, 'pxe-b', killedAt)
  })
  t.equal(gone?.site, 'site-2', 'its last record is kept')
  await a.waitFor(/appliance pxe-b is gone: no heartbeat since/)
  t.same((await appliancesAt(url)).appliances.map((x) => [x.name, x.state]), [['pxe-a', 'up'], ['pxe-b', 'gone']])
})

t.test('all of etcd stopped: pxebox_store_up 0, a log line, API writes 503 with the reason; etcd back: up, writes work', async (t) => {
  const token = 'registry-outage-test-token'
  const dir = await configure(t, 'pxe-c', 'site-1')
  await writeFile(join(dir, 'pxe-c.yaml'), `${await readFile(join(dir, 'pxe-c.yaml'), 'utf8')}\napi: { token: ${token} }\n`)
  const c = start(t, dir, 'pxe-c')
  const url = `http://127.0.0.1:${(await c.waitFor(/listening on 127\.0\.0\.1:(\d+)/))[1]}`
  const write = (id: string) =>
    fetch(`${url}/v1/profiles/${id}`, { method: 'PUT', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify({ boot: { kernel: '/assets/k' } }) })
  t.equal((await write('before')).status, 200)
  const metric = async () => /\npxebox_store_up (\d)\n/.exec(await (await fetch(`${url}/metrics`)).text())?.[1]

  await cluster.stopAll({ kill: true })
  // One health flag: the outage layer's (store/mirrored.ts), which finds the outage by itself on an idle appliance.
  await c.waitFor(/the shared store etcd \S+ \/registry-test is unreachable: serving reads from the local copy/, 30_000)
  t.equal(await metric(), '0', 'pxebox_store_up 0')
  const refused = await write('during')
  t.equal(refused.status, 503)
  t.match(await refused.text(), /the shared store \(etcd\) does not answer: API writes are refused until it does/)
  t.match(await (await fetch(`${url}/ipxe?mac=52-54-00-00-00-09`)).text(), /kernel \S*\/assets\/k/, 'boot answers go on from what the appliance holds')

  await cluster.startAll()
  const back = Date.now()
  await c.waitFor(/the shared store etcd \S+ \/registry-test answers again after [\d.]+ s/, 30_000)
  t.equal(await metric(), '1', 'pxebox_store_up 1 again')
  t.equal((await write('after')).status, 200, 'writes work again')
  // The registry outlived the outage: heartbeats written after it reach etcd and come back through the watch.
  const end = Date.now() + 20_000
  let self: ListedAppliance | undefined
  const fresh = (): boolean => self !== undefined && self.state === 'up' && Date.parse(self.heartbeat) > back
  while (Date.now() < end && !fresh()) {
    self = (await appliancesAt(url)).appliances.find((x) => x.name === 'pxe-c')
    if (!fresh()) await new Promise((r) => setTimeout(r, 200))
  }
  t.ok(fresh(), `pxe-c up with a heartbeat after etcd returned (${self?.heartbeat})`)
})
