/**
 * Issue 20 item 3 in a real browser: a machine waiting in the holding script shows as discovered with its inventory;
 * choosing a group and clicking Assign asks for the API token once (kept in sessionStorage, never in the URL or
 * localStorage), and the machine's next poll of /ipxe gets the group's profile.
 */
import t from 'tap'
import { chromiumSkip, launchChromium } from '../helpers/chromium.js'
import { operatorApp, TOKEN } from '../http/api/fixture.js'

const MAC = '52:54:00:77:10:01'
const HYP = MAC.replace(/:/g, '-')
const hex = (s: string) => Buffer.from(s, 'utf8').toString('hex')
const POLL = `/ipxe?mac=${HYP}&platform=efi`

t.test('dashboard: a discovered machine is assigned with a real click; its next poll boots the profile', { skip: chromiumSkip }, async (t) => {
  const o = await operatorApp(t, { token: TOKEN, noDefaultGroup: true, discovery: { pollSeconds: 5 } })
  t.match((await o.app.inject({ url: POLL })).body, /this machine matches no group yet/)
  const report = `/discovery/report?mac=${HYP}&manufacturer=${hex('QEMU')}&product=${hex('PowerEdge R650')}&serial=${hex('SN-77')}&platform=efi&buildarch=x86_64&net0=${HYP}&chip0=${hex('SNP')}`
  t.equal((await o.app.inject({ url: report })).statusCode, 200)
  await o.app.listen({ host: '127.0.0.1', port: 0 })
  const port = (o.app.server.address() as { port: number }).port

  const { browser } = await launchChromium(t)
  const page = await browser.newPage()
  const errors: string[] = []
  page.on('pageerror', (e) => errors.push(e.message))
  await page.goto(`http://127.0.0.1:${port}/ui/`)
  const row = page.locator(`.machine[data-mac="${MAC}"][data-status="discovered"]`)
  await row.waitFor()
  t.equal(await row.locator('.inventory').textContent(), `QEMU PowerEdge R650 · serial SN-77 · efi · x86_64 · NIC ${MAC} (SNP)`)
  // The groups load separately; wait until the list offers them.
  await row.locator('select.assign-group option[value="rack1"]').waitFor({ state: 'attached' })
  await row.locator('select.assign-group').selectOption('rack1')
  await row.getByRole('button', { name: 'Assign' }).click()

  // No token yet: the form asks for one, then the assignment goes on by itself.
  const form = page.locator('#token-form')
  await form.waitFor({ state: 'visible' })
  t.equal(await page.locator('#token-why').textContent(), 'API token (needed for changes):')
  await page.locator('#token').fill(TOKEN)
  await form.getByRole('button', { name: 'Use' }).click()
  await page.locator('.assign-status', { hasText: 'assigned to rack1' }).waitFor()
  // The row stays `discovered` until the next poll and live updates redraw it (here: the machine reports again);
  // the outcome must survive that, or the operator sees the form as if nothing happened (the old dashboard lost it).
  await page.evaluate(`document.querySelector('.machine[data-mac="${MAC}"]').dataset.before = '1'`)
  t.equal((await o.app.inject({ url: report })).statusCode, 200)
  await page.locator(`.machine[data-mac="${MAC}"]:not([data-before])`).waitFor()
  t.equal(await row.locator('.assign-status').textContent(), 'assigned to rack1; it boots on its next poll', 'the outcome survives a redraw')

  t.same(o.store.get().groups.find((g) => g.id === 'rack1.assigned')?.selector, { mac: [MAC] })
  const boot = await o.app.inject({ url: POLL })
  t.match(boot.body, /^#!ipxe\nkernel http:\/\/10\.213\.9\.2:8080\/assets\/fcos\/kernel .*coreos\.inst\.install_dev=\/dev\/vda/, 'the next poll boots the installer')
  // The live stream moves the row on once the machine fetched its script.
  await page.locator(`.machine[data-mac="${MAC}"][data-status="booting"]`).waitFor()

  // A string: the test is type-checked without the DOM library.
  const stored = (await page.evaluate("({ session: sessionStorage.getItem('pxebox-token'), local: localStorage.length, url: location.href })")) as { session: string; local: number; url: string }
  t.equal(stored.session, TOKEN, 'the token is kept for the session')
  t.equal(stored.local, 0, 'nothing in localStorage')
  t.notMatch(stored.url, TOKEN, 'never in the URL')
  t.same(errors, [])
})
