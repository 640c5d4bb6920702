/**
 * The shared catalog (issue 17 acceptance 1, HTTP half): two pxebox daemons (the real binary, on loopback) over one
 * real 3-member etcd cluster. A profile and a group written through appliance A's /v1 API are served by appliance
 * B's /ipxe within 1 s (the bound; the delay is printed); a delete at A is followed at B; config.yaml's own
 * group at B keeps winning over a shared one with its id (README "Fleet": local config wins).
 */
import t, { type Test } from 'tap'
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { serveLoopback, until, type LoopbackDaemon } from '../helpers/serve-loopback.js'
import { loopbackConfigText } from '../helpers/loopback-config.js'
import { ETCD_PORTS, startEtcdCluster } from '../helpers/etcd.js'

const TOKEN = 'shared-catalog-test-token'
const cluster = await startEtcdCluster(t, ETCD_PORTS.catalogShared)

/** A daemon on loopback over the cluster, with `extra` config lines; its HTTP base URL once it serves. */
async function appliance(t: Test, name: string, groups?: string): Promise<LoopbackDaemon> {
  return serveLoopback(t, `pxebox-shared-${name}-`, async (dir) => {
    await mkdir(join(dir, 'assets'), { recursive: true })
    for (const f of ['k', 'shared-k', 'other-k']) await writeFile(join(dir, 'assets', f), f)
    return loopbackConfigText(
      dir,
      'tftp: { enabled: false }',
      'tracking: { enabled: false }',
      `api: { token: ${TOKEN} }`,
      `store: { backend: etcd, endpoints: [${cluster.endpoints.join(', ')}], prefix: /shared-test, site: site-${name}, name: ${name} }`,
    ).replace('groups: [{ id: g, profile: p }]', groups ?? 'groups: [{ id: g, profile: p }]')
  })
}

const put = async (url: string, path: string, body: unknown) => {
  const res = await fetch(url + path, { method: 'PUT', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body: JSON.stringify(body) })
  return { status: res.status, body: await res.text() }
}
const ipxe = async (url: string, mac: string) => {
  const res = await fetch(`${url}/ipxe?mac=${mac}`)
  return `${res.status} ${await res.text()}`
}

t.test('a group written at A is served at B within 1 s; a delete follows; B banner names the store', async (t) => {
  const a = await appliance(t, 'a')
  // B's config.yaml has its own group "rack-b" (mac :b1): a shared group of that id must not replace it at B.
  const b = await appliance(t, 'b', 'groups: [{ id: g, profile: p }, { id: rack-b, profile: p, selector: { mac: "52:54:00:bb:00:01" } }]')
  t.match(b.d.stdout(), /store\s+etcd http:\/\/127\.0\.0\.1:\d+,.* \/shared-test  \(shared; appliance b, site site-b\)/, 'B says which store and where')

  const profile = await put(a.url, '/v1/profiles/shared-p', { boot: { kernel: '/assets/shared-k' } })
  t.equal(profile.status, 200, `profile written at A: ${profile.body}`)
  t.match(await ipxe(b.url, '52-54-00-aa-00-01'), /^200 .*kernel \S*\/assets\/k\b/s, 'before: B boots the machine with its default group')

  const written = performance.now()
  const group = await put(a.url, '/v1/groups/shared-1', { id: 'shared-1', profile: 'shared-p', selector: { mac: '52:54:00:aa:00:01' } })
  t.equal(group.status, 200, `group written at A: ${group.body}`)
  const answered = performance.now() - written
  const seen = await until('B serves the shared group', async () => /kernel [^\n]*\/assets\/shared-k/.test(await ipxe(b.url, '52-54-00-aa-00-01')))
  const delay = answered + seen
  t.comment(`A answered the PUT in ${answered.toFixed(0)} ms; B served the group ${delay.toFixed(0)} ms after the PUT was sent`)
  t.ok(delay <= 1000, `served at B within 1 s of the write at A (${delay.toFixed(0)} ms)`)

  // Precedence: A writes a group with B's local id; B keeps its own, A serves the shared one.
  const clash = await put(a.url, '/v1/groups/rack-b', { id: 'rack-b', profile: 'shared-p', selector: { mac: '52:54:00:bb:00:01' } })
  t.equal(clash.status, 200, 'A has no rack-b of its own: the write is accepted there')
  await until('A serves its rack-b', async () => /\/assets\/shared-k/.test(await ipxe(a.url, '52-54-00-bb-00-01')))
  await until('B saw the change', async () => /shared rack-b|group rack-b changed in the store|config\.yaml's own group rack-b/.test(b.d.stdout()))
  t.match(await ipxe(b.url, '52-54-00-bb-00-01'), /^200 .*kernel [^\n]*\/assets\/k\b/s, "B keeps config.yaml's own rack-b")
  t.notMatch(await ipxe(b.url, '52-54-00-bb-00-01'), /shared-k/)
  const refused = await put(b.url, '/v1/groups/rack-b', { id: 'rack-b', profile: 'p' })
  t.equal(refused.status, 409, "B's API refuses to write over its own config's group")

  const del = await fetch(`${a.url}/v1/groups/shared-1`, { method: 'DELETE', headers: { authorization: `Bearer ${TOKEN}` } })
  t.equal(del.status, 204)
  await until('B dropped the deleted group', async () => !/shared-k/.test(await ipxe(b.url, '52-54-00-aa-00-01')))
  t.match(await ipxe(b.url, '52-54-00-aa-00-01'), /kernel [^\n]*\/assets\/k\b/, 'B is back to its default group')
})

t.test('an appliance started after the writes loads them ', async (t) => {
  const a = await appliance(t, 'c')
  t.equal((await put(a.url, '/v1/profiles/later-p', { boot: { kernel: '/assets/shared-k' } })).status, 200)
  const g = await put(a.url, '/v1/groups/later', { id: 'later', profile: 'later-p', selector: { mac: '52:54:00:cc:00:01' } })
  t.equal(g.status, 200, g.body)
  const late = await appliance(t, 'd')
  t.match(await ipxe(late.url, '52-54-00-cc-00-01'), /\/assets\/shared-k/, 'read at start')
})
