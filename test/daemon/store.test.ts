/**
 * The store choice at start (daemon/store.ts): the banner's store line for each backend. With etcd the daemon runs
 * over the outage layer: etcd down at start, it serves at once (from an empty copy at a first start, config.yaml's
 * catalog) and says so; when etcd starts it follows it, registers, and API writes work; restarted during an outage it
 * serves what it last saw (the banner names the copy's time and revision).
 */
import t, { type Test } from 'tap'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { runPxebox, type RunningPxebox } from '../helpers/daemon.js'
import { loopbackConfigText } from '../helpers/loopback-config.js'
import { ETCD_PORTS, startEtcdCluster } from '../helpers/etcd.js'

const PORT = ETCD_PORTS.daemonStore
const endpoints = [0, 1, 2].map((i) => `http://127.0.0.1:${PORT + 2 * i}`)
const TOKEN = 'daemon-store-test-token'

async function configFile(t: Test, store: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'pxebox-daemon-store-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  await mkdir(join(dir, 'assets'), { recursive: true })
  for (const f of ['k', 'shared-k']) await writeFile(join(dir, 'assets', f), f)
  await writeFile(join(dir, 'config.yaml'), loopbackConfigText(dir, 'tftp: { enabled: false }', 'tracking: { enabled: false }', `api: { token: ${TOKEN} }`, store))
  return join(dir, 'config.yaml')
}

/** Starts a daemon on `file`; its HTTP base URL once it listens. */
async function serve(t: Test, file: string): Promise<{ d: RunningPxebox; url: string }> {
  const d = runPxebox(['serve', '--config', file])
  t.teardown(() => d.kill())
  const port = (await d.waitFor(/listening on 127\.0\.0\.1:(\d+)/))[1]
  return { d, url: `http://127.0.0.1:${port}` }
}

const storeUp = async (url: string): Promise<string | undefined> => /\npxebox_store_up (\d)\n/.exec(await (await fetch(`${url}/metrics`)).text())?.[1]
const put = (url: string, path: string, body: unknown) =>
  fetch(url + path, { method: 'PUT', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body: JSON.stringify(body) })
const ipxe = async (url: string, mac: string): Promise<string> => (await fetch(`${url}/ipxe?mac=${mac}`)).text()

t.test('sqlite (the default): the banner names the database file', async (t) => {
  const { d } = await serve(t, await configFile(t, ''))
  t.match(d.stdout(), /\n  store +sqlite \/tmp\/pxebox-daemon-store-[^/]+\/data\/pxebox\.db\n/)
})

t.test('etcd down at start: serves at once and says so; etcd starts: followed, registered, writes work; a restart during an outage serves the copy', async (t) => {
  const store = `store: { backend: etcd, endpoints: [${endpoints.join(', ')}], prefix: /daemon-store, site: lab, name: waiter }`
  const file = await configFile(t, store)
  const first = await serve(t, file)
  const where = `etcd ${endpoints.join(',').replace(/\./g, '\\.')} /daemon-store  \\(shared; appliance waiter, site lab\\)`
  t.match(first.d.stdout(), new RegExp(`\\n  store +${where}\\n +etcd unreachable at start: serving an empty copy \\(this appliance never reached etcd\\): config\\.yaml only from \\S+/data/store-cache\\.db\\n`), 'the banner says it serves without etcd')
  t.match(first.d.stdout() + first.d.stderr(), /is unreachable at start: serving the last state seen from \S+store-cache\.db \(revision 0, 0 queued writes\)/)
  t.equal(await storeUp(first.url), '0', 'pxebox_store_up 0')
  t.match(await ipxe(first.url, '52-54-00-00-00-01'), /kernel \S*\/assets\/k\b/, "config.yaml's group is served meanwhile")
  t.equal((await put(first.url, '/v1/profiles/early', { boot: { kernel: '/assets/k' } })).status, 503, 'API writes refused meanwhile')

  const cluster = await startEtcdCluster(t, PORT)
  await first.d.waitFor(/the shared store etcd \S+ \/daemon-store answers again after [\d.]+ s; \d+ queued writes flushed/, 30_000)
  await first.d.waitFor(/registered as appliance waiter \(site lab\) now that etcd answers/, 30_000)
  t.equal(await storeUp(first.url), '1', 'pxebox_store_up 1 once etcd answers')
  t.equal((await put(first.url, '/v1/profiles/shared-p', { boot: { kernel: '/assets/shared-k' } })).status, 200, 'a profile written')
  t.equal((await put(first.url, '/v1/groups/shared-g', { id: 'shared-g', profile: 'shared-p', selector: { mac: '52:54:00:00:00:02' } })).status, 200, 'a group written')
  const listed = (await (await fetch(`${first.url}/v1/appliances`)).json()) as { appliances: { name: string; state: string }[] }
  t.same(listed.appliances.map((a) => [a.name, a.state]), [['waiter', 'up']], 'listed in the registry')

  first.d.child.kill('SIGTERM')
  t.equal(await first.d.exited, 0)
  // All of etcd stopped, then the appliance restarts: it serves what it last saw, and says which state that is.
  await cluster.stopAll({ kill: true })
  const again = await serve(t, file)
  t.match(again.d.stdout(), new RegExp(`\\n  store +${where}\\n +etcd unreachable at start: serving the copy of \\d{4}-\\d\\d-\\d\\dT[\\d:.]+Z \\(revision [1-9]\\d*\\) from \\S+/data/store-cache\\.db\\n`), 'the banner names the copy it serves')
  t.match(await ipxe(again.url, '52-54-00-00-00-02'), /kernel \S*\/assets\/shared-k\b/, 'the shared group and profile, from the copy')
  t.equal(await storeUp(again.url), '0')
})
