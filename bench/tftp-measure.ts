/**
 * Benchmark client run inside a server's namespace: times transfers with the pxebox test client (RFC 7440 capable,
 * the same client for every server) and prints one JSON line.
 * Run: node dist/bench/tftp-measure.js --dir DIR --port 69 [--runs-small 7] [--runs-large 3] [--concurrent 100]
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
const host = arg('host', '127.0.0.1')
const port = Number(arg('port', '69'))
const runsSmall = Number(arg('runs-small', '7'))
const runsLarge = Number(arg('runs-large', '3'))
const concurrent = Number(arg('concurrent', '100'))
const hashes: Record<string, string> = {}
for (const f of ['f1m.bin', 'f40m.bin']) hashes[f] = createHash('sha256').update(await readFile(join(dir, f))).digest('hex')

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b)
  const m = Math.floor(s.length / 2)
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2
}

async function fetchOnce(file: string, windowsize: number): Promise<{ ms: number; windowsize: number }> {
  const r = await tftpGet({ host, port, file, blksize: 1468, windowsize, tsize: true, keepData: false, retransmitMs: 1000, retries: 10 })
  if (r.sha256 !== hashes[file]) throw new Error(`${file}: hash mismatch`)
  return { ms: r.durationMs, windowsize: Number(r.oack?.windowsize ?? 1) }
}

// Warm-up (server start, page cache, pxebox's file cache): the same for every server.
for (let i = 0; ; i++) {
  try {
    await fetchOnce('f1m.bin', 16)
    break
  } catch (err) {
    if (i >= 20) throw err
    await new Promise((r) => setTimeout(r, 250))
  }
}

const out: Record<string, unknown> = {}
for (const [file, runs] of [['f1m.bin', runsSmall], ['f40m.bin', runsLarge]] as const) {
  for (const w of [1, 16]) {
    if (runs <= 0) continue
    const times: number[] = []
    let granted = 1
    for (let i = 0; i < runs; i++) {
      const r = await fetchOnce(file, w)
      times.push(r.ms)
      granted = r.windowsize
    }
    out[`${file} w${w}`] = { median_ms: median(times), runs: times.length, windowsize_granted: granted }
  }
}
if (concurrent > 0) {
  const start = performance.now()
  const results = await Promise.allSettled(Array.from({ length: concurrent }, () => fetchOnce('f1m.bin', 16)))
  out[`${concurrent}x f1m.bin w16`] = {
    wall_ms: performance.now() - start,
    failed: results.filter((r) => r.status === 'rejected').length,
  }
}
process.stdout.write(`${JSON.stringify(out)}\n`)
