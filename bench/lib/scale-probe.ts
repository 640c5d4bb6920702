/**
 * bench/scale-catalog.ts's HTTP side, run inside the client namespace (`ip netns exec`), where pxebox's address is
 * reachable. One JSON argument says what to do; one JSON line comes back.
 *   wait:   GET `url` until it answers 200; prints { ms }.
 *   stream: GET `url` one request after another (each on a new connection) for at least `ms` and until `stopFile`
 *           exists (the bench creates it once the reload is done); prints the latencies' percentiles.
 *   write:  PUT `body` to `put` (Bearer `token`), then GET `url` until the answer contains `expect`; prints { ms }
 *           (PUT until visible), `putMs` (the PUT's round trip) and `gets` (GETs it took). One untimed GET of `url`
 *           first: a fresh node process's first HTTP request pays for loading and compiling its HTTP client (tens
 *           of ms on the loaded build machine), which is the probe's cost, not pxebox's.
 */
import { existsSync } from 'node:fs'
import { request } from 'node:http'
import { fileURLToPath } from 'node:url'
import { percentiles, type Percentiles } from './dhcp-clients.js'

/** What scale-probe does. */
export type ScaleProbeArgs =
  | { mode: 'wait'; url: string; timeoutMs: number }
  | { mode: 'stream'; url: string; ms: number; stopFile: string }
  | { mode: 'write'; url: string; put: string; token: string; body: unknown; expect: string; timeoutMs: number }

/** The line scale-probe prints. */
export type ScaleProbeResult = { ms: number } | WriteResult | Percentiles

/** What a write measured. */
export interface WriteResult {
  readonly ms: number
  readonly putMs: number
  readonly gets: number
}

function call(url: string, method = 'GET', headers: Record<string, string> = {}, body?: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, agent: false, headers, timeout: 600_000 }, (res) => {
      let text = ''
      res.setEncoding('utf8')
      res.on('data', (d: string) => (text += d))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }))
    })
    req.on('error', reject)
    req.on('timeout', () => req.destroy(new Error('timed out')))
    req.end(body)
  })
}

/** GET `url` until `ok`; how many GETs it took. */
async function until(url: string, ok: (r: { status: number; body: string }) => boolean, timeoutMs: number): Promise<number> {
  const end = performance.now() + timeoutMs
  for (let gets = 1; ; gets++) {
    const r = await call(url).catch(() => ({ status: 0, body: '' }))
    if (ok(r)) return gets
    if (performance.now() > end) throw new Error(`${url} not as expected within ${timeoutMs} ms (last: ${r.status} ${r.body.slice(0, 200)})`)
    await new Promise((r) => setTimeout(r, 2))
  }
}

async function main(args: ScaleProbeArgs): Promise<ScaleProbeResult> {
  const started = performance.now()
  if (args.mode === 'wait') {
    await until(args.url, (r) => r.status === 200, args.timeoutMs)
    return { ms: performance.now() - started }
  }
  if (args.mode === 'stream') {
    const samples: number[] = []
    while (performance.now() - started < args.ms || !existsSync(args.stopFile)) {
      const t0 = performance.now()
      await call(args.url)
      samples.push(performance.now() - t0)
    }
    return percentiles(samples)
  }
  const body = JSON.stringify(args.body)
  await call(args.url)
  const t0 = performance.now()
  const put = await call(args.put, 'PUT', { authorization: `Bearer ${args.token}`, 'content-type': 'application/json' }, body)
  const putMs = performance.now() - t0
  if (put.status !== 200) throw new Error(`PUT ${args.put}: ${put.status} ${put.body}`)
  const gets = await until(args.url, (r) => r.status === 200 && r.body.includes(args.expect), args.timeoutMs)
  return { ms: performance.now() - t0, putMs, gets }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const result = await main(JSON.parse(process.argv[2] ?? '{}') as ScaleProbeArgs)
  process.stdout.write(`${JSON.stringify(result)}\n`)
}
