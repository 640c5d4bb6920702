/**
 * Headless Chromium for the dashboard tests: Debian's own chromium driven by playwright-core, a fresh profile per
 * run, closed and removed in teardown even when the test fails.
 */
import { existsSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { chromium, type BrowserContext } from 'playwright-core'

/** Debian's chromium package (scripts/deps.sh installs it for the test suite). */
export const CHROMIUM = '/usr/bin/chromium'

/** A tap `skip` value: false when Chromium is installed, else why the test cannot run. */
export const chromiumSkip: false | string = existsSync(CHROMIUM) ? false : `${CHROMIUM} missing (apt-get install chromium)`

interface Teardown {
  teardown(fn: () => unknown): void
}

/**
 * Starts Chromium with a throwaway profile (playwright passes it as --user-data-dir; `profileDir` is removed in teardown,
 * so a test may leave files there). Background networking, sync and
 * component updates are off: the suite's only traffic is to loopback and its own namespaces.
 */
export async function launchChromium(t: Teardown, viewport?: { width: number; height: number }): Promise<{ browser: BrowserContext; profileDir: string }> {
  const profile = await mkdtemp(join(tmpdir(), 'pxebox-chromium-'))
  t.teardown(() => rm(profile, { recursive: true, force: true }))
  const browser = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    ...(viewport === undefined ? {} : { viewport }),
  })
  t.teardown(() => browser.close())
  return { browser, profileDir: profile }
}
