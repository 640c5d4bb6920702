/**
 * The fleet dashboard (issue 17) in headless Chromium: on a shared store the page lists every appliance, marks the
 * one whose heartbeat stopped as gone (on its next refresh, without a reload), and shows every site's machines with
 * the appliance that last saw each, and every appliance's findings (published by each appliance's publisher) with
 * the gone appliance's marked; this appliance's own machine rows say their site and appliance. While the shared
 * store does not answer, the appliances still show and the machine list stays as last read, marked. On the embedded
 * store the fleet section stays hidden and the rows do not repeat the one site and appliance. The other appliance is
 * a second machine store writing into the same Store, as another appliance's does into etcd (with real daemons and
 * etcd: test/store/fleet-sites.test.ts).
 */
import t from 'tap'
import { openMachineStore } from '../../src/machines/store.js'
import { startFindingsPublisher } from '../../src/addresses/findings-store.js'
import type { Finding } from '../../src/addresses/model.js'
import { openSqliteStore, type ApplianceView } from '../../src/store/index.js'
import { chromiumSkip, launchChromium } from '../helpers/chromium.js'
import { failingStore, type FailingStore } from '../helpers/failing-store.js'
import { bootEvents, operatorApp } from '../http/api/fixture.js'

const appliance = (name: string, site: string, state: 'up' | 'gone', heartbeatAgoMs: number): ApplianceView => ({
  name,
  site,
  state,
  interface: 'pxe0',
  address: name === 'pxe-a' ? '10.213.9.2' : '10.213.11.2',
  version: '9.9.9',
  host: `host-${name}`,
  pid: 4242,
  started: new Date(Date.now() - 3_600_000).toISOString(),
  heartbeat: new Date(Date.now() - heartbeatAgoMs).toISOString(),
})

t.test('fleet: two appliances, one gone; machines of two sites with their appliance', { skip: chromiumSkip }, async (t) => {
  let registry = [appliance('pxe-a', 'site-1', 'up', 1_000), appliance('pxe-b', 'site-2', 'up', 2_000)]
  let shared: FailingStore | undefined
  const o = await operatorApp(t, {
    identity: { site: 'site-1', appliance: 'pxe-a' },
    fleet: { appliances: () => registry },
    openDataStore: async (file) => {
      const inner = await openSqliteStore({ file })
      t.teardown(() => inner.close())
      return (shared = failingStore(inner))
    },
  })
  const other = await openMachineStore({ store: o.dataStore, site: 'site-2', appliance: 'pxe-b', flushDelayMs: 50 })
  t.teardown(() => other.close())
  const now = Date.now()
  o.feed(bootEvents('52:54:00:00:09:01', '10.213.9.11', 6, now - 60_000))
  o.feed(bootEvents('52:54:00:00:09:02', '10.213.9.12', 4, now - 50_000))
  for (const e of bootEvents('52:54:00:00:0b:01', '10.213.11.11', 6, now - 30_000)) other.record(e)
  await o.machines.flush()
  await other.flush()
  const finding = (id: string, explanation: string): Finding => ({ id, kind: id.split(':')[0] as Finding['kind'], macs: [], since: new Date(now - 5000).toISOString(), explanation, evidence: [] })
  for (const [name, site, list] of [
    ['pxe-a', 'site-1', [finding('duplicate:10.213.9.50', 'two machines claim 10.213.9.50')]],
    ['pxe-b', 'site-2', [finding('rogue-server:10.213.11.66', 'DHCP server 10.213.11.66 is not allowed')]],
  ] as const) {
    const p = startFindingsPublisher({ store: o.dataStore, appliance: name, site, findings: () => list, maxPerKind: () => 100, everyMs: 60_000 })
    await p.publish()
    await p.close()
  }
  await o.app.listen({ host: '127.0.0.1', port: 0 })
  const port = (o.app.server.address() as { port: number }).port

  const { browser } = await launchChromium(t, { width: 1100, height: 1000 })
  const page = await browser.newPage()
  const errors: string[] = []
  page.on('pageerror', (e) => errors.push(e.message))
  await page.goto(`http://127.0.0.1:${port}/ui/`)
  await page.locator('#fleet .fleet-machine').nth(2).waitFor()
  t.equal(await page.locator('#fleet').getAttribute('data-available'), 'true', 'the fleet section shows on a shared store')

  const rowsOf = (selector: string, attrs: string[]) =>
    page.locator(selector).evaluateAll((els, names) => els.map((e) => names.map((n) => e.getAttribute(n))), attrs)
  t.same(await rowsOf('#appliances tr.appliance', ['data-name', 'data-state']), [['pxe-a', 'up'], ['pxe-b', 'up']], 'both appliances up')
  t.same(
    await rowsOf('#fleet .fleet-machine', ['data-site', 'data-mac', 'data-appliance']),
    [
      ['site-1', '52:54:00:00:09:01', 'pxe-a'],
      ['site-1', '52:54:00:00:09:02', 'pxe-a'],
      ['site-2', '52:54:00:00:0b:01', 'pxe-b'],
    ],
    "every site's machines, in MAC order, with the appliance that saw each",
  )
  t.equal(await page.locator('#fleet-more').isHidden(), true, 'one page: no "Show more"')
  t.same(await page.locator('#fleet .site h3').allTextContents(), ['Site site-1: 2 machines', 'Site site-2: 1 machine'])
  t.equal(await page.locator('#fleet .fleet-machine[data-mac="52:54:00:00:0b:01"] .appliance-name').textContent(), 'pxe-b')
  t.match(
    await page.locator('.machine[data-mac="52:54:00:00:09:01"] .meta').textContent(),
    /^site site-1 · appliance pxe-a · group rack1/,
    "this appliance's own rows say their site and appliance",
  )
  t.equal(await page.locator('.machine').count(), 2, "the boot-progress list keeps to this appliance's machines")
  await page.locator('#fleet .fleet-finding').nth(1).waitFor()
  t.same(
    await rowsOf('#fleet .fleet-finding', ['data-site', 'data-appliance', 'data-id', 'data-appliance-state']),
    [
      ['site-1', 'pxe-a', 'duplicate:10.213.9.50', 'up'],
      ['site-2', 'pxe-b', 'rogue-server:10.213.11.66', 'up'],
    ],
    "every appliance's findings, by site",
  )
  t.equal(await page.locator('#fleet-findings-h').textContent(), 'Findings by site: 2')
  t.match(await page.locator('#fleet .fleet-finding[data-appliance="pxe-b"]').textContent(), /rogue-server.*DHCP server 10\.213\.11\.66 is not allowed/)

  // pxe-b's heartbeat stops: the registry says gone, and the page shows it on its next refresh (every 10 s).
  registry = [registry[0]!, appliance('pxe-b', 'site-2', 'gone', 12_000)]
  await page.locator('#appliances tr.appliance[data-name="pxe-b"][data-state="gone"]').waitFor({ timeout: 15_000 })
  t.equal(await page.locator('#appliances-h').textContent(), 'Appliances: 1 up, 1 gone')
  t.equal(await page.locator('#appliances tr[data-name="pxe-b"] .state').textContent(), 'gone')
  t.match(await page.locator('#appliances tr[data-name="pxe-b"] .state').getAttribute('title'), /^no heartbeat since /)
  t.equal(await page.locator('#appliances tr.appliance.gone').count(), 1, 'only pxe-b is marked gone')
  t.equal(await page.locator('#fleet .fleet-machine[data-appliance="pxe-b"]').count(), 1, "a gone appliance's machines stay listed")
  await page.locator('#fleet .fleet-finding[data-appliance="pxe-b"][data-appliance-state="gone"]').waitFor({ timeout: 15_000 })
  t.equal(await page.locator('#fleet .fleet-finding[data-appliance="pxe-b"] .appliance-name').textContent(), 'pxe-b (gone)', "a gone appliance's last findings stay, marked")

  // etcd stops answering: the appliances (held in memory) still show, the machine list stays as last read, marked.
  shared!.down = true
  await page.locator('#fleet-stale').waitFor({ timeout: 15_000 })
  t.match(await page.locator('#fleet-stale').textContent(), /^The shared store does not answer \(\/v1\/fleet\/machines: 503\): the machines below are as last seen\.$/)
  t.equal(await page.locator('#fleet .fleet-machine').count(), 3, 'the last list stays')
  await page.locator('#fleet-findings-h', { hasText: 'as last seen' }).waitFor({ timeout: 15_000 })
  t.equal(await page.locator('#fleet-findings-h').textContent(), 'Findings by site: 2, as last seen (/v1/fleet/findings: 503)')
  t.equal(await page.locator('#fleet .fleet-finding').count(), 2, 'the last findings stay')
  t.equal(await page.locator('#appliances tr.appliance').count(), 2, 'the appliances still show')
  shared!.down = false
  t.same(errors, [], 'no script errors')
})

t.test('fleet: a page of 500 machines, then "Show more" reads the next one; a refresh keeps what was shown', { skip: chromiumSkip }, async (t) => {
  const o = await operatorApp(t, { identity: { site: 'site-1', appliance: 'pxe-a' }, fleet: { appliances: () => [appliance('pxe-a', 'site-1', 'up', 1_000)] } })
  const mac = (i: number) => `52:54:00:00:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`
  const record = (i: number) => ({ mac: mac(i), site: `site-${1 + (i % 2)}`, appliance: `pxe-${i % 2 ? 'b' : 'a'}`, ips: [], first_seen: '2026-11-28T08:00:00.000Z', last_seen: new Date().toISOString(), boots: 1 })
  for (let i = 0; i < 620; i += 155) await o.dataStore.batch(Array.from({ length: 155 }, (_, j) => ({ op: 'put' as const, kind: 'machine', id: mac(i + j), value: record(i + j) })))
  await o.app.listen({ host: '127.0.0.1', port: 0 })
  const port = (o.app.server.address() as { port: number }).port
  const { browser } = await launchChromium(t, { width: 1100, height: 1000 })
  const page = await browser.newPage()
  const errors: string[] = []
  page.on('pageerror', (e) => errors.push(e.message))
  const requests: string[] = []
  page.on('request', (r) => void (r.url().includes('/v1/fleet/machines') && requests.push(new URL(r.url()).search)))
  await page.goto(`http://127.0.0.1:${port}/ui/`)
  await page.locator('#fleet-more:not([hidden])').waitFor()
  t.equal(await page.locator('#fleet .fleet-machine').count(), 500, 'the first page: 500 machines')
  t.same(await page.locator('#fleet .site h3').allTextContents(), ['Site site-1: 250 machines so far', 'Site site-2: 250 machines so far'])
  t.match(await page.locator('#fleet-more .hint').textContent(), /^500 machines shown, in MAC order; more are in the shared store\.$/)
  await page.locator('#fleet-more button').click()
  await page.locator('#fleet .fleet-machine').nth(619).waitFor()
  t.equal(await page.locator('#fleet .fleet-machine').count(), 620, 'the second page added')
  t.equal(await page.locator('#fleet-more').isHidden(), true, 'the last page: no "Show more"')
  t.same(await page.locator('#fleet .site h3').allTextContents(), ['Site site-1: 310 machines', 'Site site-2: 310 machines'])
  t.same(requests.slice(0, 2), ['', `?after=${encodeURIComponent(mac(499))}`], 'the first page, then the one after its last MAC')
  // A record added meanwhile shows on the next refresh (every 10 s), which reads as far as was shown.
  await o.dataStore.put('machine', mac(700), record(700))
  await page.locator(`#fleet .fleet-machine[data-mac="${mac(700)}"]`).waitFor({ timeout: 15_000 })
  t.equal(await page.locator('#fleet .fleet-machine').count(), 621, 'after a refresh: every machine shown before, and the new one')
  t.same(errors, [], 'no script errors')
})

t.test('embedded store: no fleet section', { skip: chromiumSkip }, async (t) => {
  const o = await operatorApp(t, { identity: { site: 'default', appliance: 'pxe-a' } })
  o.feed(bootEvents('52:54:00:00:09:01', '10.213.9.11', 6, Date.now() - 60_000))
  await o.app.listen({ host: '127.0.0.1', port: 0 })
  const port = (o.app.server.address() as { port: number }).port
  const { browser } = await launchChromium(t)
  const page = await browser.newPage()
  await page.goto(`http://127.0.0.1:${port}/ui/`)
  await page.locator('.machine').first().waitFor()
  // The section is hidden in the HTML until the fleet answers are in: wait for them before looking.
  await page.locator('#fleet[data-available="false"]').waitFor({ state: 'attached', timeout: 10_000 })
  t.equal(await page.locator('#fleet').isHidden(), true, 'hidden: nothing is shared')
  t.match(await page.locator('.machine[data-mac="52:54:00:00:09:01"] .meta').textContent(), /^group rack1 · /, 'machine rows do not repeat the one site and appliance')
})
