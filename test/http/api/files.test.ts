/**
 * `/v1/ignition/:name` and `/v1/generic/:name` (issue 17: the files API-written profiles name, kept in the Store):
 * a written file is served to the machines whose profile names it, a new version replaces it at once, a bad one is
 * refused with the loader's message, the local ignition_dir wins (409), a file a profile names cannot be deleted
 * (409), the files survive a restart, and during a shared-store outage a write gets 503. SQLite backend, and the
 * outage layer (the etcd backend's front) over a store that can be made to fail.
 */
import t from 'tap'
import { operatorApp, TOKEN } from './fixture.js'
import { outageApp } from './outage-app.js'

const AUTH = { authorization: `Bearer ${TOKEN}` }
const TEXT = { ...AUTH, 'content-type': 'text/plain' }

const butane = (host: string) => `variant: fcos\nversion: 1.5.0\nstorage:\n  files:\n    - path: /etc/hostname\n      contents:\n        inline: ${host}-{{ .request.query.mac }}\n`
const MAC = '52:54:00:0f:11:01'

t.test('a file written through the API is served by the profile naming it; versions, refusals, restart', async (t) => {
  const o = await operatorApp(t, { token: TOKEN })
  const put = (kind: string, name: string, text: string, headers: Record<string, string> = TEXT) => o.app.inject({ method: 'PUT', url: `/v1/${kind}/${name}`, headers, payload: text })

  const first = await put('ignition', 'worker.bu', butane('one'))
  t.equal(first.statusCode, 200, first.body)
  t.same(first.json(), { kind: 'ignition', name: 'worker.bu', bytes: Buffer.byteLength(butane('one')), warnings: [] })
  t.equal((await o.app.inject({ url: '/v1/ignition/worker.bu' })).body, butane('one'), 'GET gives the text back')

  t.equal((await o.app.inject({ method: 'PUT', url: '/v1/profiles/worker', headers: AUTH, payload: { ignition: 'worker.bu' } })).statusCode, 200)
  t.equal((await o.app.inject({ method: 'PUT', url: '/v1/groups/w1', headers: AUTH, payload: { id: 'w1', profile: 'worker', selector: { mac: MAC } } })).statusCode, 200)
  const hostname = async () => {
    const res = await o.app.inject({ url: `/ignition?mac=${MAC}` })
    t.equal(res.statusCode, 200, res.body)
    const file = (res.json() as { storage: { files: { contents: { source: string } }[] } }).storage.files[0]!
    return decodeURIComponent(file.contents.source.replace(/^data:,/, ''))
  }
  t.equal(await hostname(), `one-${MAC}`, 'the machine gets the API-written Butane, rendered and translated')

  t.equal((await put('ignition', 'worker.bu', butane('two'))).statusCode, 200)
  t.equal(await hostname(), `two-${MAC}`, 'a new version is served at once')

  const bad = await put('ignition', 'worker.bu', 'variant: fcos\nversion: 1.5.0\nstorage:\n  files:\n    - path: relative\n')
  t.equal(bad.statusCode, 422)
  t.match(bad.json().error, /ignition\/worker\.bu.*relative/, "the loader's message, naming the file")
  t.equal(await hostname(), `two-${MAC}`, 'a refused version changes nothing')
  const badKind = await put('ignition', 'worker.txt', 'x')
  t.equal(badKind.statusCode, 422)
  t.match(badKind.json().error, /unknown Ignition source type/)
  const badGeneric = await put('generic', 'env', 'A={{ .x ')
  t.equal(badGeneric.statusCode, 422)
  t.match(badGeneric.json().error, /generic\/env:1:\d+: /, 'a generic template that does not parse: file:line:col')

  const local = await put('ignition', 'node.ign', '{"ignition":{"version":"3.4.0"}}')
  t.equal(local.statusCode, 409)
  t.match(local.json().error, /node\.ign" is a file of this appliance's ignition directory/, 'the local ignition_dir wins')
  t.equal((await put('ignition', '.hidden', '{}')).statusCode, 422, 'a name that is not a safe file name')
  t.equal((await put('ignition', 'x.ign', '{}', { ...AUTH, 'content-type': 'application/json' })).statusCode, 415, 'the body is the file, as text/plain')
  t.equal((await o.app.inject({ method: 'PUT', url: '/v1/ignition/y.ign', headers: { 'content-type': 'text/plain' }, payload: '{}' })).statusCode, 401, 'a write needs the token')

  const inUse = await o.app.inject({ method: 'DELETE', url: '/v1/ignition/worker.bu', headers: AUTH })
  t.equal(inUse.statusCode, 409)
  t.match(inUse.json().error, /named by profile "worker"/)

  t.equal((await put('generic', 'env', 'HOST={{ .request.query.mac }}\n')).statusCode, 200)
  t.equal((await o.app.inject({ method: 'PUT', url: '/v1/profiles/worker', headers: AUTH, payload: { ignition: 'worker.bu', generic: 'env' } })).statusCode, 200)
  t.equal((await o.app.inject({ url: `/generic?mac=${MAC}` })).body, `HOST=${MAC}\n`, 'a generic file too')

  // Restart on the same data_dir: the files come back from the Store.
  const again = await operatorApp(t, { token: TOKEN, dir: o.dir })
  t.equal((await again.app.inject({ url: `/generic?mac=${MAC}` })).body, `HOST=${MAC}\n`, 'served after a restart')

  t.equal((await again.app.inject({ method: 'DELETE', url: '/v1/groups/w1', headers: AUTH })).statusCode, 204)
  t.equal((await again.app.inject({ method: 'DELETE', url: '/v1/profiles/worker', headers: AUTH })).statusCode, 204)
  t.equal((await again.app.inject({ method: 'DELETE', url: '/v1/ignition/worker.bu', headers: AUTH })).statusCode, 204, 'deleted once no profile names it')
  t.equal((await again.app.inject({ url: '/v1/ignition/worker.bu' })).statusCode, 404)
  t.equal((await again.app.inject({ method: 'DELETE', url: '/v1/ignition/worker.bu', headers: AUTH })).statusCode, 404)
})

t.test('a profile naming a file that is not there is refused; the file then makes it load', async (t) => {
  const o = await operatorApp(t, { token: TOKEN })
  const early = await o.app.inject({ method: 'PUT', url: '/v1/profiles/p', headers: AUTH, payload: { ignition: 'later.ign' } })
  t.equal(early.statusCode, 422)
  t.match(early.json().error, /later\.ign/)
  t.equal((await o.app.inject({ method: 'PUT', url: '/v1/ignition/later.ign', headers: TEXT, payload: '{"ignition":{"version":"3.4.0"}}' })).statusCode, 200)
  t.equal((await o.app.inject({ method: 'PUT', url: '/v1/profiles/p', headers: AUTH, payload: { ignition: 'later.ign' } })).statusCode, 200)
})

t.test('file writes get 503 while the shared store is unreachable, and work through the outage layer otherwise', async (t) => {
  const { o, remote, store } = await outageApp(t)
  const put = (name: string) => o.app.inject({ method: 'PUT', url: `/v1/ignition/${name}`, headers: TEXT, payload: '{"ignition":{"version":"3.4.0"}}' })
  t.equal((await put('before.ign')).statusCode, 200)
  remote.down = true
  remote.breakWatches()
  const end = Date.now() + 5000
  while (store.up && Date.now() < end) await new Promise((r) => setTimeout(r, 10))
  const refused = await put('during.ign')
  t.equal(refused.statusCode, 503)
  t.match(refused.json().error, /shared store .* unreachable/)
  t.equal((await o.app.inject({ method: 'DELETE', url: '/v1/ignition/before.ign', headers: AUTH })).statusCode, 503, 'a delete too')
  t.equal((await o.app.inject({ url: '/v1/ignition/before.ign' })).statusCode, 200, 'reads answer from what was seen')
  t.equal((await o.app.inject({ url: '/v1/ignition/during.ign' })).statusCode, 404, 'the refused write is not held')
})
