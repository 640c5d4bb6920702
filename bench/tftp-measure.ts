/**
 * Benchmark client run inside the servers' namespace: times transfers with the pxebox test client (RFC 7440 capable,
 * the same client for every server), taking turns between servers run by run, and prints one JSON line
 * ({server: {test: result}}).
 * Run: node dist/bench/tftp-measure.js --dir DIR --target NAME=HOST:PORT [--target ...] [--runs-small 9]
 *      [--runs-large 3] [--concurrent 100]
 */
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { createHash } from 'node:crypto'
import { tftpGet } from '../test/helpers/tftp-client.js'

function arg(name: string, fallback?: string): string {
  const i = process.argv.indexOf(`--${name}`)
  const v = i >= 0 ? process.argv[i + 1] : fallback
  if (v === undefined) throw new Error(`--${name} is required`)
  return v
}

const dir = arg('dir')
const targets = process.argv.flatMap((v, i) => (v === '--target' ? [process.argv[i + 1]!] : [])).map((t) => {
  const m = /^([^=]+)=(.+):(\d+)$/.exec(t)
  if (!m) throw new Error(`--target NAME=HOST:PORT, got ${t}`)
  return { name: m[1]!, host: m[2]!, port: Number(m[3]) }
})
if (targets.length === 0) throw new Error('at least one --target is required')
const runsSmall = Number(arg('runs-small', '9'))
const runsLarge = Number(arg('runs-large', '3'))
const concurrent = Number(arg('concurrent', '100'))
const hashes: Record<string, string> = {}
for (const f of ['f1m.bin', 'f40m.bin']) hashes[f] = createHash('sha256').update(await readFile(join(dir, f))).digest('hex')

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b)
  const m = Math.floor(s.length / 2)
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2
}

type Target = (typeof targets)[number]
async function fetchOnce(target: Target, file: string, windowsize: number): Promise<{ ms: number; windowsize: number }> {
  const r = await tftpGet({ host: target.host, port: target.port, file, blksize: 1468, windowsize, tsize: true, keepData: false, retransmitMs: 1000, retries: 10 })
  if (r.sha256 !== hashes[file]) throw new Error(`${target.name} ${file}: hash mismatch`)
  return { ms: r.durationMs, windowsize: Number(r.oack?.windowsize ?? 1) }
}

// Warm-up, the same for every server: it is up, the page cache and pxebox's file cache hold the files, and this
// client's own code is compiled for both transfer modes (its first few transfers are several times slower).
for (const target of targets) {
  for (let i = 0; ; i++) {
    try {
      await fetchOnce(target, 'f1m.bin', 16)
      break
    } catch (err) {
      if (i >= 20) throw err
      await new Promise((r) => setTimeout(r, 250))
    }
  }
}
for (let i = 0; i < 3; i++) for (const target of targets) for (const w of [1, 16]) await fetchOnce(target, 'f1m.bin', w)

const out: Record<string, Record<string, unknown>> = Object.fromEntries(targets.map((t) => [t.name, {}]))
for (const [file, runs] of [['f1m.bin', runsSmall], ['f40m.bin', runsLarge]] as const) {
  for (const w of [1, 16]) {
    if (runs <= 0) continue
    const times = new Map<string, number[]>(targets.map((t) => [t.name, []]))
    const granted = new Map<string, number>()
    for (let i = 0; i < runs; i++) {
      for (const target of targets) {
        const r = await fetchOnce(target, file, w)
        times.get(target.name)!.push(r.ms)
        granted.set(target.name, r.windowsize)
      }
    }
    for (const t of targets) {
      const ts = times.get(t.name)!
      out[t.name]![`${file} w${w}`] = { median_ms: median(ts), min_ms: Math.min(...ts), max_ms: Math.max(...ts), runs, windowsize_granted: granted.get(t.name) }
    }
  }
}
if (concurrent > 0) {
  for (const target of targets) {
    const start = performance.now()
    const results = await Promise.allSettled(Array.from({ length: concurrent }, () => fetchOnce(target, 'f1m.bin', 16)))
    out[target.name]![`${concurrent}x f1m.bin w16`] = {
      wall_ms: performance.now() - start,
      failed: results.filter((r) => r.status === 'rejected').length,
    }
  }
}
process.stdout.write(`${JSON.stringify(out)}\n`)
