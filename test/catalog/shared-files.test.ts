/**
 * Files carried by shared profiles (issue 17): two pxebox daemons (the real binary, on loopback) over one real
 * 3-member etcd cluster. A writes a Butane file and a profile and group naming it through its /v1 API; B renders it
 * at /ignition (the delay from the write is printed), and a new version written at A reaches B. B's own
 * ignition_dir wins over a shared file of the same name (README "Fleet": local wins). A profile that arrives at B
 * before the file it names (written so, straight into etcd) is held, not dropped, and served once the file arrives.
 */
import t, { type Test } from 'tap'
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { serveLoopback, until, type LoopbackDaemon } from '../helpers/serve-loopback.js'
import { loopbackConfigText } from '../helpers/loopback-config.js'
import { ETCD_PORTS, startEtcdCluster } from '../helpers/etcd.js'
import { connectEtcdStore } from '../../src/store/index.js'

const TOKEN = 'shared-files-test-token'
const PREFIX = '/shared-files-test'
const cluster = await startEtcdCluster(t, ETCD_PORTS.sharedFiles)

const butane = (host: string) => `variant: fcos\nversion: 1.5.0\nstorage:\n  files:\n    - path: /etc/hostname\n      contents:\n        inline: ${host}\n`

/** A daemon over the cluster with its own ignition_dir holding `local`; its HTTP base URL once it serves. */
async function appliance(t: Test, name: string, local: Record<string, string> = {}): Promise<LoopbackDaemon> {
  return serveLoopback(t, `pxebox-files-${name}-`, async (dir) => {
    await mkdir(join(dir, 'assets'), { recursive: true })
    await mkdir(join(dir, 'ignition'), { recursive: true })
    await writeFile(join(dir, 'assets', 'k'), 'k')
    for (const [file, text] of Object.entries(local)) await writeFile(join(dir, 'ignition', file), text)
    return loopbackConfigText(
      dir,
      'tftp: { enabled: false }',
      'tracking: { enabled: false }',
      `ignition_dir: ${join(dir, 'ignition')}`,
      `api: { token: ${TOKEN} }`,
      `store: { backend: etcd, endpoints: [${cluster.endpoints.join(', ')}], prefix: ${PREFIX}, site: site-${name}, name: ${name} }`,
    )
  })
}

const put = async (url: string, path: string, body: unknown) => {
  const text = typeof body === 'string'
  const res = await fetch(url + path, {
    method: 'PUT',
    headers: { authorization: `Bearer ${TOKEN}`, 'content-type': text ? 'text/plain' : 'application/json' },
    body: text ? body : JSON.stringify(body),
  })
  return { status: res.status, body: await res.text() }
}
/** The hostname the machine's Ignition writes, or the status and body when it gets none. */
const hostname = async (url: string, mac: string): Promise<string> => {
  const res = await fetch(`${url}/ignition?mac=${mac}`)
  const body = await res.text()
  if (res.status !== 200) return `${res.status} ${body}`
  const file = (JSON.parse(body) as { storage?: { files?: { contents: { source: string } }[] } }).storage?.files?.[0]
  return file === undefined ? body : decodeURIComponent(file.contents.source.replace(/^data:,/, ''))
}

t.test('a file written at A is rendered at B; a new version follows; B keeps its local file of the same name', async (t) => {
  const a = await appliance(t, 'a')
  const b = await appliance(t, 'b', { 'site.bu': butane('b-local') })
  const mac = '52-54-00-f1-00-01'

  t.equal((await put(a.url, '/v1/ignition/worker.bu', butane('v1'))).status, 200, 'file written at A')
  t.equal((await put(a.url, '/v1/profiles/worker', { ignition: 'worker.bu' })).status, 200, 'profile naming it written at A')
  const written = performance.now()
  t.equal((await put(a.url, '/v1/groups/w1', { id: 'w1', profile: 'worker', selector: { mac: mac.replaceAll('-', ':') } })).status, 200)
  const seen = await until('B renders the shared file', async () => (await hostname(b.url, mac)) === 'v1')
  t.comment(`B rendered the group's shared Ignition ${(performance.now() - written).toFixed(0)} ms after the group PUT at A was sent (${seen.toFixed(0)} ms of polling)`)

  const v2 = performance.now()
  t.equal((await put(a.url, '/v1/ignition/worker.bu', butane('v2'))).status, 200, 'a new version at A')
  const answered = performance.now() - v2
  await until('B renders the new version', async () => (await hostname(b.url, mac)) === 'v2')
  const delay = performance.now() - v2
  t.comment(`A answered the file PUT in ${answered.toFixed(0)} ms; B served the new version ${delay.toFixed(0)} ms after it was sent`)
  t.ok(delay <= 1000, `a new version is served at B within 1 s of the write at A (${delay.toFixed(0)} ms)`)
  t.equal(await hostname(a.url, mac), 'v2', 'and at A')

  // Precedence: A (no site.bu of its own) writes site.bu; B keeps its local file, A serves the shared one.
  t.equal((await put(a.url, '/v1/ignition/site.bu', butane('shared'))).status, 200)
  t.equal((await put(a.url, '/v1/profiles/site', { ignition: 'site.bu' })).status, 200)
  t.equal((await put(a.url, '/v1/groups/s1', { id: 's1', profile: 'site', selector: { mac: '52:54:00:f1:00:02' } })).status, 200)
  await until('A serves the shared site.bu', async () => (await hostname(a.url, '52-54-00-f1-00-02')) === 'shared')
  await until('B has the group', async () => !(await hostname(b.url, '52-54-00-f1-00-02')).startsWith('404'))
  t.equal(await hostname(b.url, '52-54-00-f1-00-02'), 'b-local', "B renders its own ignition_dir's site.bu")
  const refused = await put(b.url, '/v1/ignition/site.bu', butane('x'))
  t.equal(refused.status, 409, "B's API refuses a name its ignition_dir has")
})

t.test('a profile that arrives before its file is held and served once the file arrives', async (t) => {
  const b = await appliance(t, 'c')
  const etcd = connectEtcdStore({ endpoints: cluster.endpoints, prefix: PREFIX })
  t.teardown(() => etcd.close())
  const mac = '52-54-00-f1-00-03'
  await etcd.put('profile', 'early', { id: 'early', ignition: 'early.bu' }, { durable: true })
  await etcd.put('group', 'e1', { id: 'e1', profile: 'early', selector: { mac: mac.replaceAll('-', ':') } }, { durable: true })
  await until('B says the profile is held', async () => /shared profile early does not load on this appliance; held/.test(b.d.stdout()))
  t.match(await hostname(b.url, mac), /^404/, 'not served while its file is missing')
  await etcd.put('ignition', 'early.bu', { name: 'early.bu', text: butane('early') }, { durable: true })
  await until('B serves the held profile', async () => (await hostname(b.url, mac)) === 'early')
  // The log line and the HTTP answer reach this process on two pipes in either order: give the line its turn.
  await until('B logs that the profile loads', async () => /shared profile early loads now; served here/.test(b.d.stdout()), 2000).catch(() => 0)
  t.match(b.d.stdout(), /shared profile early loads now; served here/)
})
