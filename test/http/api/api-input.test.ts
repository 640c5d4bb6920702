/**
 * Issue 13 item 13 (API part): deep JSON is a 400, not a 500; a profile whose kernel or initrd is a root-relative
 * path pxebox does not serve is refused with where assets live; API-written entries name their own file as source.
 */
import t from 'tap'
import { operatorApp, TOKEN } from './fixture.js'
import { jsonNesting } from '../../../src/http/api/json-body.js'

const AUTH = { authorization: `Bearer ${TOKEN}` }

t.test('deeply nested JSON in a PUT is a 400 with the reason; nothing is written', async (t) => {
  const o = await operatorApp(t, { token: TOKEN })
  const deep = '['.repeat(100_000) + ']'.repeat(100_000)
  const r = await o.app.inject({
    method: 'PUT',
    url: '/v1/groups/x',
    headers: { ...AUTH, 'content-type': 'application/json' },
    payload: `{"id":"x","profile":"live","selector":{"mac":["52:54:00:00:00:02"]},"metadata":{"a":${deep}}}`,
  })
  t.equal(r.statusCode, 400)
  t.same(r.json(), { error: 'body nests objects/arrays deeper than 32 levels' })
  t.equal(o.store.get().groups.find((g) => g.id === 'x'), undefined)
  const bad = await o.app.inject({ method: 'PUT', url: '/v1/groups/x', headers: { ...AUTH, 'content-type': 'application/json' }, payload: '{"id":' })
  t.equal(bad.statusCode, 400)
  t.match(bad.json().error, /^body is not valid JSON/)
  const big = await o.app.inject({ method: 'PUT', url: '/v1/groups/x', headers: { ...AUTH, 'content-type': 'application/json' }, payload: `{"id":"${'a'.repeat(2 * 1024 * 1024)}"}` })
  t.equal(big.statusCode, 413)
  // Brackets inside strings do not count; moderate nesting is fine.
  t.equal(jsonNesting('{"a":"[[[[{{{{","b":[[1]]}', 32), 3)
  const ok = await o.app.inject({
    method: 'PUT',
    url: '/v1/groups/x',
    headers: AUTH,
    payload: { id: 'x', profile: 'live', selector: { mac: ['52:54:00:00:00:02'] }, metadata: { a: { b: [[{ c: '[[[' }]] } } },
  })
  t.equal(ok.statusCode, 200)
})

t.test('a profile kernel or initrd outside /assets/ is refused with where assets live; absolute URLs are accepted', async (t) => {
  const o = await operatorApp(t, { token: TOKEN })
  const put = (boot: object) => o.app.inject({ method: 'PUT', url: '/v1/profiles/p', headers: AUTH, payload: { boot } })
  for (const kernel of ['/etc/passwd', '/assets/../etc/passwd', '/assets/%2e%2e/x', '/ipxe']) {
    const r = await put({ kernel, initrd: [], args: [] })
    t.equal(r.statusCode, 400, kernel)
    t.match(r.json().error, new RegExp(`kernel ".*" is not a file pxebox serves: a root-relative path must be under /assets/ \\(files in ${o.dir}/assets\\)`))
  }
  const initrd = await put({ kernel: '/assets/fcos/kernel', initrd: ['--name main /var/secret.img'], args: [] })
  t.equal(initrd.statusCode, 400)
  t.match(initrd.json().error, /^initrd "\/var\/secret\.img"/)
  t.equal(o.store.get().profiles.get('p'), undefined, 'nothing written')
  t.equal((await put({ kernel: '/assets/fcos/kernel', initrd: ['/assets/fcos/initramfs.img'], args: [] })).statusCode, 200)
  t.equal((await put({ kernel: 'http://mirror.example/vmlinuz', initrd: ['${base}/initrd.img'], args: [] })).statusCode, 200, 'remote URLs and iPXE variables are the author\'s business, as in config.yaml')
})

t.test('API-written groups and profiles name the store entry as source, config.yaml entries config.yaml', async (t) => {
  const o = await operatorApp(t, { token: TOKEN })
  const g = await o.app.inject({ method: 'PUT', url: '/v1/groups/g', headers: AUTH, payload: { id: 'g', profile: 'live', selector: { mac: ['52:54:00:00:00:01'] } } })
  t.equal(g.json().source, `API (${o.dataDir}/pxebox.db: group g)`)
  const p = await o.app.inject({ method: 'PUT', url: '/v1/profiles/p', headers: AUTH, payload: { boot: { kernel: '/assets/fcos/kernel' } } })
  t.equal(p.json().source, `API (${o.dataDir}/pxebox.db: profile p)`)
  const groups = (await o.app.inject({ url: '/v1/groups' })).json().groups as { id: string; source: string }[]
  t.equal(groups.find((x) => x.id === 'rack1')!.source, 'config.yaml groups[0]')
  t.equal(groups.find((x) => x.id === 'g')!.source, `API (${o.dataDir}/pxebox.db: group g)`)
})
