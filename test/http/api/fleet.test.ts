/**
 * The fleet routes (issue 17): `/v1/fleet/machines` lists every machine record in the shared store with the site and
 * appliance that last saw it, whichever appliance wrote it; `/v1/appliances` passes the registry's list through.
 * The other appliance here is a second machine store writing into the same Store, as another appliance's does into
 * etcd (the wire version with real daemons and etcd: test/store/fleet-sites.test.ts).
 */
import t from 'tap'
import { openMachineStore } from '../../../src/machines/store.js'
import { openMirroredStore, openSqliteStore, type ApplianceView, type MirroredStore } from '../../../src/store/index.js'
import { failingStore, type FailingStore } from '../../helpers/failing-store.js'
import { bootEvents, operatorApp } from './fixture.js'

const appliance = (name: string, site: string, state: 'up' | 'gone'): ApplianceView => ({
  name,
  site,
  state,
  interface: 'pxe0',
  address: '10.213.9.2',
  version: '9.9.9',
  host: `host-${name}`,
  pid: 4242,
  started: new Date(Date.now() - 3_600_000).toISOString(),
  heartbeat: new Date(Date.now() - (state === 'gone' ? 60_000 : 2_000)).toISOString(),
})

t.test('embedded store: nothing shared, both routes say so', async (t) => {
  const o = await operatorApp(t)
  o.feed(bootEvents('52:54:00:00:09:01', '10.213.9.11', 3, Date.now()))
  t.same((await o.app.inject({ url: '/v1/fleet/machines' })).json(), { available: false, current: true, machines: [], skipped: 0 })
  t.same((await o.app.inject({ url: '/v1/appliances' })).json(), { available: false, appliances: [] })
  t.same((await o.app.inject({ url: '/v1/fleet/findings' })).json(), { available: false, current: true, findings: [], skipped: 0 })
})

t.test("every appliance's findings with appliance, site and registry state; a document lacking the shown fields is skipped", async (t) => {
  const registry = [appliance('pxe-a', 'site-1', 'up'), appliance('pxe-b', 'site-2', 'gone')]
  const o = await operatorApp(t, { identity: { site: 'site-1', appliance: 'pxe-a' }, fleet: { appliances: () => registry } })
  const finding = (appliance: string, site: string, id: string) => ({ id, kind: id.split(':')[0], macs: [], since: '2026-01-01T00:00:00.000Z', explanation: 'x', evidence: [{ time: '2026-01-01T00:00:00.000Z', source: 'dhcp', what: 'OFFER' }], appliance, site })
  await o.dataStore.put('finding', 'pxe-b@rogue-server:10.0.0.66', finding('pxe-b', 'site-2', 'rogue-server:10.0.0.66'))
  await o.dataStore.put('finding', 'pxe-a@duplicate:10.0.0.5', finding('pxe-a', 'site-1', 'duplicate:10.0.0.5'))
  await o.dataStore.put('finding', 'pxe-c@stray:02:00:00:00:00:01:10.0.0.7', finding('pxe-c', 'site-3', 'stray:02:00:00:00:00:01:10.0.0.7'))
  await o.dataStore.put('finding', 'pxe-a@by-hand', { note: 'written by hand' })
  await o.dataStore.put('finding', 'pxe-a@other', finding('pxe-b', 'site-2', 'duplicate:10.0.0.9'))
  const body = (await o.app.inject({ url: '/v1/fleet/findings' })).json()
  t.same(
    body.findings.map((f: { appliance: string; site: string; appliance_state: string; id: string }) => [f.site, f.appliance, f.appliance_state, f.id]),
    [
      ['site-1', 'pxe-a', 'up', 'duplicate:10.0.0.5'],
      ['site-2', 'pxe-b', 'gone', 'rogue-server:10.0.0.66'],
      ['site-3', 'pxe-c', 'unknown', 'stray:02:00:00:00:00:01:10.0.0.7'],
    ],
    'by site; a gone appliance marked gone, one the registry does not list unknown',
  )
  t.equal(body.skipped, 2, "the hand-written document and one whose key names another appliance are counted, not shown")
})

t.test("every appliance's machines with their site and appliance; a record lacking the shown fields is skipped and counted", async (t) => {
  const registry = [appliance('pxe-a', 'site-1', 'up'), appliance('pxe-b', 'site-2', 'gone')]
  const o = await operatorApp(t, { identity: { site: 'site-1', appliance: 'pxe-a' }, fleet: { appliances: () => registry } })
  const other = await openMachineStore({ store: o.dataStore, site: 'site-2', appliance: 'pxe-b', flushDelayMs: 50 })
  t.teardown(() => other.close())
  const now = Date.now()
  o.feed(bootEvents('52:54:00:00:09:01', '10.213.9.11', 6, now - 60_000))
  for (const e of bootEvents('52:54:00:00:0b:01', '10.213.11.11', 3, now - 30_000)) other.record(e)
  for (const e of bootEvents('52:54:00:00:0b:02', '10.213.11.12', 3, now - 10_000)) other.record(e)
  await o.machines.flush()
  await other.flush()
  await o.dataStore.put('machine', '52:54:00:00:0b:99', { mac: '52:54:00:00:0b:99', note: 'written by hand' })

  const res = await o.app.inject({ url: '/v1/fleet/machines' })
  t.equal(res.statusCode, 200, 'answered', { body: res.body })
  const body = res.json() as { available: boolean; skipped: number; next?: string; machines: { mac: string; site: string; appliance: string; boots: number; group?: string }[] }
  t.equal(body.available, true)
  t.same(
    body.machines.map((m) => [m.mac, m.site, m.appliance]),
    [
      ['52:54:00:00:09:01', 'site-1', 'pxe-a'],
      ['52:54:00:00:0b:01', 'site-2', 'pxe-b'],
      ['52:54:00:00:0b:02', 'site-2', 'pxe-b'],
    ],
    'in MAC order (the order pages follow)',
  )
  t.equal(body.next, undefined, 'one page: no next')
  t.equal(body.machines[0]!.group, 'rack1', 'with its group')
  t.equal(body.skipped, 1, 'the hand-written record is counted, not shown')
  t.notOk('timeline' in body.machines[0]!, 'no timelines in the fleet list')

  const own = (await o.app.inject({ url: '/v1/machines/52:54:00:00:09:01' })).json()
  t.same([own.site, own.appliance], ['site-1', 'pxe-a'], "this appliance's own view carries them too")
  t.same(
    (await o.app.inject({ url: '/v1/appliances' })).json().appliances.map((a: ApplianceView) => [a.name, a.site, a.state]),
    [['pxe-a', 'site-1', 'up'], ['pxe-b', 'site-2', 'gone']],
  )
})

t.test('a page at a time: limit (default 500, at most 1,000), next passed back as after', async (t) => {
  const o = await operatorApp(t, { fleet: { appliances: () => [] } })
  const mac = (i: number) => `52:54:00:00:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`
  const record = (i: number) => ({ mac: mac(i), site: `site-${i % 2}`, appliance: 'pxe-b', ips: [], first_seen: '2026-11-28T08:00:00.000Z', last_seen: '2026-11-28T08:00:00.000Z', boots: 1 })
  for (let i = 0; i < 1234; i += 200) await o.dataStore.batch(Array.from({ length: Math.min(200, 1234 - i) }, (_, j) => ({ op: 'put' as const, kind: 'machine', id: mac(i + j), value: record(i + j) })))
  // One record on the second page without the fields shown: counted on its page, the page still ends where it did.
  await o.dataStore.put('machine', mac(700), { mac: mac(700), note: 'by hand' })
  type Page = { machines: { mac: string }[]; skipped: number; next?: string }
  const get = async (query: string) => o.app.inject({ url: `/v1/fleet/machines${query}` })
  const first = (await get('')).json() as Page
  t.equal(first.machines.length, 500, 'default: 500')
  t.equal(first.next, mac(499))
  const seen = [...first.machines.map((m) => m.mac)]
  let page = first
  let skipped = first.skipped
  const sizes = [first.machines.length]
  while (page.next !== undefined) {
    const res = await get(`?limit=500&after=${encodeURIComponent(page.next)}`)
    t.equal(res.statusCode, 200)
    page = res.json() as Page
    seen.push(...page.machines.map((m) => m.mac))
    sizes.push(page.machines.length)
    skipped += page.skipped
  }
  t.same(sizes, [500, 499, 234], 'three pages; the second shows one record fewer')
  t.equal(skipped, 1, 'the hand-written record is counted on its page')
  t.same(seen, Array.from({ length: 1234 }, (_, i) => mac(i)).filter((m) => m !== mac(700)), 'every record once, in MAC order')
  const big = (await get('?limit=1000')).json() as Page
  t.same([big.machines.length, big.skipped, big.next], [999, 1, mac(999)], 'limit 1,000 is accepted (999 shown, the hand-written one skipped)')
  const over = await get('?limit=1001')
  t.equal(over.statusCode, 400)
  t.equal(over.json().error, 'limit must be 1 to 1000 (got 1001); page with after=<next>')
  t.equal((await get('?limit=0')).statusCode, 400)
  t.equal((await get('?limit=abc')).statusCode, 400)
  t.equal((await get('?after=a%2Fb')).statusCode, 400, 'an after that is not a key')
  t.match((await get('?after=x%2Fy')).json().error, /after/)
  t.same(((await get(`?after=${encodeURIComponent(mac(1233))}`)).json() as Page).machines, [], 'after the last: an empty page')
})

t.test('the shared store does not answer: 503 with the reason, not a 500 or an empty fleet', async (t) => {
  let shared: FailingStore | undefined
  const o = await operatorApp(t, {
    fleet: { appliances: () => [] },
    openDataStore: async (file) => {
      const inner = await openSqliteStore({ file })
      t.teardown(() => inner.close())
      return (shared = failingStore(inner))
    },
  })
  o.feed(bootEvents('52:54:00:00:09:01', '10.213.9.11', 3, Date.now()))
  await o.machines.flush()
  t.equal((await o.app.inject({ url: '/v1/fleet/machines' })).json().machines.length, 1)
  shared!.down = true
  const res = await o.app.inject({ url: '/v1/fleet/machines' })
  t.equal(res.statusCode, 503)
  t.match(res.json().error, /unreachable/)
})

t.test('through the outage layer: etcd down, the list is the copy as last seen, marked not current', async (t) => {
  let mirrored: MirroredStore | undefined
  let remote: FailingStore | undefined
  const o = await operatorApp(t, {
    fleet: { appliances: () => [], storeUp: () => mirrored?.up ?? true },
    openDataStore: async (file) => {
      const inner = await openSqliteStore({ file })
      t.teardown(() => inner.close())
      remote = failingStore(inner)
      mirrored = await openMirroredStore({ remote, file: `${file}.copy`, queued: ['machine', 'machine-timeline'], probeMs: 30 })
      t.teardown(() => mirrored?.close())
      return mirrored
    },
  })
  o.feed(bootEvents('52:54:00:00:09:01', '10.213.9.11', 3, Date.now()))
  await o.machines.flush()
  const up = (await o.app.inject({ url: '/v1/fleet/machines' })).json()
  t.same([up.current, up.machines.length], [true, 1], 'current while etcd answers')
  remote!.down = true
  for (let i = 0; i < 300 && mirrored!.up; i++) await new Promise((r) => setTimeout(r, 10))
  const res = await o.app.inject({ url: '/v1/fleet/machines' })
  t.equal(res.statusCode, 200, 'answered from the copy')
  t.same([res.json().current, res.json().machines.map((m: { mac: string }) => m.mac)], [false, ['52:54:00:00:09:01']], 'the last-seen list, not current')
})
