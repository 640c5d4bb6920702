/**
 * A pxebox daemon of a loopback test (the real binary, runPxebox) in a temporary folder of its own: the folder, the
 * config written there, and the wait until HTTP listens, as the shared-catalog tests (test/catalog/shared*.test.ts)
 * start each of their appliances.
 */
import type { Test } from 'tap'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { runPxebox, type RunningPxebox } from './daemon.js'

/** A daemon serving on loopback and its HTTP base URL. */
export interface LoopbackDaemon {
  d: RunningPxebox
  url: string
}

/**
 * Makes a temporary folder named after `prefix`, lets `prepare` fill it (assets, local files) and return the config
 * text, writes that as config.yaml and runs `pxebox serve` on it; once HTTP listens (the config must say
 * `http: { listen: "127.0.0.1:0" }`, as loopbackConfigText does), the daemon and its URL. The daemon is killed and
 * the folder removed when `t` ends.
 */
export async function serveLoopback(t: Test, prefix: string, prepare: (dir: string) => Promise<string>): Promise<LoopbackDaemon> {
  const dir = await mkdtemp(join(tmpdir(), prefix))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  await writeFile(join(dir, 'config.yaml'), await prepare(dir))
  const d = runPxebox(['serve', '--config', join(dir, 'config.yaml')])
  t.teardown(() => d.kill())
  const port = (await d.waitFor(/listening on 127\.0\.0\.1:(\d+)/))[1]
  return { d, url: `http://127.0.0.1:${port}` }
}

/** Polls `fn` every 10 ms until it returns true; the milliseconds it took, or throws after `ms`. */
export async function until(what: string, fn: () => Promise<boolean>, ms = 10_000): Promise<number> {
  const started = performance.now()
  while (performance.now() - started < ms) {
    if (await fn()) return performance.now() - started
    await new Promise((r) => setTimeout(r, 10))
  }
  throw new Error(`${what}: not within ${ms} ms`)
}
