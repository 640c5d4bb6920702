import t from 'tap'
import { join } from 'node:path'
import { chromiumSkip, launchChromium } from '../helpers/chromium.js'
import { bootEvents, operatorApp, TOKEN } from '../http/api/fixture.js'

// The committed docs/dashboard.png is refreshed only on request, so a test run leaves the work tree clean.
const DOCS_SCREENSHOT = new URL('../../docs/dashboard.png', import.meta.url).pathname

t.test('dashboard in headless Chromium: current step per machine, stuck first, live updates', { skip: chromiumSkip }, async (t) => {
  const o = await operatorApp(t, { token: TOKEN, stuckAfterMs: 300_000 })
  const now = Date.now()
  // A small rack: one done through the installed callback, two installing, one stuck after its initrd, one failed.
  o.feed(bootEvents('52:54:00:00:09:01', '10.213.9.11', 9, now - 600_000, 20))
  await o.machines.markInstalled('52:54:00:00:09:01', '10.213.9.11')
  o.feed(bootEvents('52:54:00:00:09:02', '10.213.9.12', 7, now - 40_000))
  o.feed(bootEvents('52:54:00:00:09:03', '10.213.9.13', 8, now - 1_260_000))
  o.feed(bootEvents('00:25:90:aa:bb:04', '10.213.9.14', 3, now - 20_000))
  o.feed([
    ...bootEvents('3c:fd:fe:00:00:05', '10.213.9.15', 6, now - 120_000),
    { time: new Date(now - 100_000).toISOString(), kind: 'http', mac: '3c:fd:fe:00:00:05', ip: '10.213.9.15', step: 'kernel', outcome: 'not found', detail: { path: '/assets/fcos/kernel-5', status: 404 } },
  ])
  await o.app.listen({ host: '127.0.0.1', port: 0 })
  const port = (o.app.server.address() as { port: number }).port

  const { browser, profileDir } = await launchChromium(t, { width: 1100, height: 1000 })
  const page = await browser.newPage()
  const errors: string[] = []
  page.on('pageerror', (e) => errors.push(e.message))
  await page.goto(`http://127.0.0.1:${port}/ui/`)
  await page.locator('.machine').nth(4).waitFor()

  const rows = page.locator('.machine')
  const order = await rows.evaluateAll((els) => els.map((e) => `${e.getAttribute('data-mac')} ${e.getAttribute('data-status')}`))
  t.same(order, [
    '3c:fd:fe:00:00:05 failed',
    '52:54:00:00:09:03 stuck',
    '52:54:00:00:09:02 booting',
    '00:25:90:aa:bb:04 booting',
    '52:54:00:00:09:01 done',
  ])
  const current = async (mac: string) =>
    page.locator(`.machine[data-mac="${mac}"] .step.current`).evaluateAll((els) => els.map((e) => `${e.getAttribute('data-stage')} ${e.className}`))
  t.same(await current('3c:fd:fe:00:00:05'), ['kernel step failed current'], 'failed at the kernel')
  t.same(await current('52:54:00:00:09:03'), ['ignition step stuck current'], 'stuck waiting for Ignition, after the initrd')
  t.same(await current('52:54:00:00:09:02'), ['initrd step waiting current'], 'kernel fetched, initrd next')
  t.same(await current('00:25:90:aa:bb:04'), ['script step waiting current'], 'loader fetched over TFTP, script next')
  t.same(await current('52:54:00:00:09:01'), ['installed step reached current'])
  t.match(await page.locator('.machine[data-mac="52:54:00:00:09:03"] .summary').textContent(), /no progress after initrd for 2[01] min/)
  t.match(await page.locator('.machine[data-mac="00:25:90:aa:bb:04"] .who').textContent(), /Supermicro/)
  t.equal(await page.locator('#counts .pill[data-status="stuck"]').textContent(), '1 stuck')
  await page.locator('#live.on').waitFor()

  // Live: the booting machine fetches its initrd; the page updates without a reload.
  o.feed(bootEvents('52:54:00:00:09:02', '10.213.9.12', 8, now - 40_000).slice(7))
  await page.locator('.machine[data-mac="52:54:00:00:09:02"] .step[data-stage="ignition"].waiting').waitFor({ timeout: 5000 })
  t.pass('SSE update moved the machine to its next step')

  const shot = process.env.PXEBOX_UPDATE_SCREENSHOT === '1' ? DOCS_SCREENSHOT : join(profileDir, 'dashboard.png')
  const png = await page.screenshot({ path: shot, fullPage: true })
  t.ok(png.length > 10_000, `screenshot written to ${shot}`)
  const narrow = await browser.newPage()
  await narrow.setViewportSize({ width: 390, height: 844 })
  await narrow.goto(`http://127.0.0.1:${port}/ui/`)
  await narrow.locator('.machine').nth(4).waitFor()
  const width = await narrow.evaluate('document.documentElement.scrollWidth')
  t.ok((width as number) <= 390, `no horizontal scrolling on a phone-width screen (${String(width)} px)`)
  t.same(errors, [], 'no script errors')
})
