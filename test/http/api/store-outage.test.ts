/**
 * The API while the shared store is unreachable (issue 17): writes of groups and profiles are answered 503 with the
 * store's message, reads keep answering from the last state seen, and writes work again once the store is back.
 */
import t from 'tap'
import { TOKEN } from './fixture.js'
import { outageApp } from './outage-app.js'

const AUTH = { authorization: `Bearer ${TOKEN}` }

const until = async (what: string, ok: () => boolean, ms = 5000): Promise<void> => {
  const end = Date.now() + ms
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 10))
  }
}

t.test('group and profile writes get 503 while the shared store is unreachable; reads still answer', async (t) => {
  const { o, remote, store } = await outageApp(t)
  const group = (id: string) => ({ method: 'PUT' as const, url: `/v1/groups/${id}`, headers: AUTH, payload: { id, profile: 'live', selector: { serial: id } } })
  t.equal((await o.app.inject(group('before'))).statusCode, 200, 'a write while the store answers')
  remote.down = true
  remote.breakWatches()
  await until('down', () => !store.up)
  const refused = await o.app.inject(group('during'))
  t.equal(refused.statusCode, 503)
  t.match(refused.json().error, /^the shared store .* is unreachable.*: writing group\/during refused until it answers again/)
  const profile = await o.app.inject({ method: 'PUT', url: '/v1/profiles/p-during', headers: AUTH, payload: { boot: { kernel: '/assets/k' } } })
  t.equal(profile.statusCode, 503, 'a profile write too')
  const groups = await o.app.inject({ url: '/v1/groups' })
  t.equal(groups.statusCode, 200)
  const ids = groups.json().groups.map((g: { id: string }) => g.id)
  t.ok(ids.includes('before') && !ids.includes('during'), 'reads answer from the last state seen, without the refused write')
  remote.down = false
  await until('up', () => store.up)
  t.equal((await o.app.inject(group('after'))).statusCode, 200, 'writes work again once the store is back')
})
