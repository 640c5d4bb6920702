/**
 * The store choice at start (daemon/store.ts): the banner's store line for each backend; with etcd unreachable the
 * daemon logs why and waits, then serves once etcd answers; SIGTERM during that wait stops it at once (exit 0).
 */
import t, { type Test } from 'tap'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { runPxebox } from '../helpers/daemon.js'
import { loopbackConfigText } from '../helpers/loopback-config.js'
import { ETCD_PORTS, startEtcdCluster } from '../helpers/etcd.js'

const PORT = ETCD_PORTS.daemonStore
const endpoints = [0, 1, 2].map((i) => `http://127.0.0.1:${PORT + 2 * i}`)

async function configFile(t: Test, store: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'pxebox-daemon-store-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  await mkdir(join(dir, 'assets'), { recursive: true })
  await writeFile(join(dir, 'config.yaml'), loopbackConfigText(dir, 'tftp: { enabled: false }', 'tracking: { enabled: false }', store))
  return join(dir, 'config.yaml')
}

t.test('sqlite (the default): the banner names the database file', async (t) => {
  const file = await configFile(t, '')
  const d = runPxebox(['serve', '--config', file])
  t.teardown(() => d.kill())
  await d.waitFor(/listening on/)
  t.match(d.stdout(), /\n  store +sqlite \/tmp\/pxebox-daemon-store-[^/]+\/data\/pxebox\.db\n/)
})

t.test('etcd down at start: a logged wait, SIGTERM ends it; then etcd starts and the daemon serves', async (t) => {
  const store = `store: { backend: etcd, endpoints: [${endpoints.join(', ')}], prefix: /daemon-store, site: lab, name: waiter }`
  const quitter = runPxebox(['serve', '--config', await configFile(t, store)])
  t.teardown(() => quitter.kill())
  await quitter.waitFor(/is unreachable: .*pxebox waits for etcd and tries again in 2 s/)
  quitter.child.kill('SIGTERM')
  t.equal(await quitter.exited, 0, 'SIGTERM during the wait: exit 0')

  const d = runPxebox(['serve', '--config', await configFile(t, store)])
  t.teardown(() => d.kill())
  await d.waitFor(/pxebox waits for etcd/)
  t.notMatch(d.stdout(), /listening on/, 'not serving while the store is unreachable')
  await startEtcdCluster(t, PORT)
  await d.waitFor(/listening on/)
  t.match(d.stdout(), /etcd answers after \d+ tries; starting/)
  t.match(d.stdout(), new RegExp(`\\n  store +etcd ${endpoints.join(',').replace(/\./g, '\\.')} /daemon-store  \\(shared; appliance waiter, site lab\\)\\n`))
})
