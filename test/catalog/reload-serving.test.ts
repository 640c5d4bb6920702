/**
 * Issue 16: a full reload of a large catalog is built beside the serving state and swapped in whole. While it runs,
 * `/ipxe` over a real socket keeps answering, from the old state; once it resolves, from the new one. Before, one
 * reload of 10,000 groups held the event loop for ~8 s and every request waited for it.
 *
 * The latency bound below is generous and stated (the issue asks for p99 <= 20 ms, measured by bench/scale.sh):
 * 1 s per request during a reload that takes seconds here, where the old code answered nothing until it was done.
 */
import t from 'tap'
import { request } from 'node:http'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { buildApp } from '../../src/http/app.js'
import { createBootStore } from '../../src/catalog/boot-store.js'
import { scaleGroup, scaleMac, writeScaleMatchboxDir } from '../helpers/scale-fixture.js'

const GROUPS = 10_000
const MAX_MS_DURING_RELOAD = 1000

/** GET over a fresh TCP connection (no keep-alive: each answer is a separate trip through the event loop). */
function get(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { agent: false }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (d: string) => (body += d))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }))
    })
    req.on('error', reject)
    req.end()
  })
}

t.test('/ipxe answers from the old state during a full reload of 10,000 groups, then from the new one', async (t) => {
  const matchbox = join(t.testdir({}), 'matchbox')
  await writeScaleMatchboxDir(matchbox, GROUPS)
  const store = await createBootStore({ profiles: {}, groups: [], matchboxDir: matchbox, watch: false })
  t.teardown(() => store.close())
  const app = buildApp({ store, assetsDir: matchbox, publicUrl: 'http://127.0.0.1', version: 't' })
  t.teardown(() => app.close())
  const base = await app.listen({ host: '127.0.0.1', port: 0 })

  // Machine 7 is in profile7 (kernel-7); the reload moves it to profile3 (kernel-3).
  const url = `${base}/ipxe?mac=${scaleMac(7)}`
  t.match((await get(url)).body, /kernel-7/, 'before: the old profile')
  const file = join(matchbox, 'groups', 'node000007.json')
  t.same(JSON.parse(await readFile(file, 'utf8')), scaleGroup(7))
  await writeFile(file, JSON.stringify({ ...scaleGroup(7), profile: 'profile3' }))

  let done = false
  const reload = store.reload().finally(() => (done = true))
  const during: number[] = []
  const wrong: string[] = []
  while (!done) {
    const started = performance.now()
    const res = await get(url)
    const ms = performance.now() - started
    if (done) break // answered across the swap: either state is right
    if (res.status !== 200 || !/kernel-7/.test(res.body)) wrong.push(`${res.status} ${res.body}`)
    during.push(ms)
  }
  t.same(wrong, [], 'every answer during the reload came from the old state')
  const result = await reload
  t.ok(result.ok, 'the reload succeeded')
  t.ok(during.length >= 5, `${during.length} answers during the reload (the event loop kept running)`)
  const worst = Math.max(...during)
  t.ok(worst < MAX_MS_DURING_RELOAD, `slowest answer during the reload: ${worst.toFixed(1)} ms (bound ${MAX_MS_DURING_RELOAD} ms)`)
  t.match((await get(url)).body, /kernel-3/, 'after the swap: the new profile')
  t.equal(store.get().groupCount, GROUPS)
})
