// The daemon's logger (src/host/log.ts) writes asynchronously: what it buffered still reaches stdout when the process
// exits, and a stdout that does not keep up costs dropped, counted lines, not unbounded memory. Each case runs in a
// child process whose stdout is a pipe this test reads (or does not, to stall it).
import t from 'tap'
import { spawn } from 'node:child_process'
import { tsNodeArgs } from '../helpers/netns.js'

const url = new URL('../../src/host/log.ts', import.meta.url).href
const metricsUrl = new URL('../../src/http/metrics.ts', import.meta.url).href

/** Runs `body` in a child with `logger` and `droppedLogLines` in scope; resolves its stdout lines and stderr. */
function child(body: string, opts: { stallMs?: number } = {}): Promise<{ lines: string[]; stderr: string; code: number | null }> {
  const script = `const { createLogger, droppedLogLines } = await import(${JSON.stringify(url)})\n${body}`
  const proc = spawn(process.execPath, [...tsNodeArgs(), '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  let stderr = ''
  proc.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
  proc.stdout.on('data', (d: Buffer) => (out += d.toString()))
  if (opts.stallMs !== undefined) {
    // Not reading: the pipe fills (64 KiB) and the child's writes wait, as a journal that is behind makes them.
    proc.stdout.pause()
    setTimeout(() => proc.stdout.resume(), opts.stallMs)
  }
  return new Promise((resolve) => proc.on('close', (code) => resolve({ lines: out.split('\n').filter((l) => l !== ''), stderr, code })))
}

t.test('lines still buffered when the process exits are written, in order', async (t) => {
  const { lines, code, stderr } = await child(`
    const logger = createLogger('info')
    for (let i = 0; i < 2000; i++) logger.info({ i }, 'line')
    process.exit(0)
  `)
  t.equal(code, 0, stderr)
  const seen = lines.map((l) => (JSON.parse(l) as { i: number }).i)
  t.same(seen, Array.from({ length: 2000 }, (_, i) => i), 'all 2,000 lines, none lost at exit')
})

t.test('a stalled stdout: lines past the buffer are dropped and counted, then one warning says how many', async (t) => {
  // 64 KiB of buffer and ~200-byte lines: of 20,000 lines (~4 MB) most cannot be held while nobody reads.
  const { lines, stderr, code } = await child(
    `
    const { createMetrics } = await import(${JSON.stringify(metricsUrl)})
    const logger = createLogger('info', { bufferBytes: 64 * 1024, dropReportMs: 300 })
    const metrics = createMetrics({ logDrops: () => droppedLogLines(logger) })
    const pad = 'x'.repeat(150)
    for (let i = 0; i < 20000; i++) logger.info({ i, pad }, 'line')
    const text = await metrics.registry.metrics()
    const metric = Number(/^pxebox_log_lines_dropped_total (\\d+)$/m.exec(text)?.[1])
    console.error(JSON.stringify({ dropped: droppedLogLines(logger), metric }))
    // Stay up until the warning has been written (the stall ends after 1 s).
    await new Promise((r) => setTimeout(r, 2500))
  `,
    { stallMs: 1000 },
  )
  t.equal(code, 0, stderr)
  const { dropped, metric } = JSON.parse(stderr.trim().split('\n').at(-1) ?? '{}') as { dropped: number; metric: number }
  const kept = lines.map((l) => JSON.parse(l) as { i?: number; dropped?: number; level: number; msg: string })
  const numbered = kept.filter((l) => l.i !== undefined)
  const warnings = kept.filter((l) => l.msg.startsWith('log lines dropped'))
  t.ok(dropped > 10000, `most lines were dropped (${dropped})`)
  t.equal(metric, dropped, '/metrics: pxebox_log_lines_dropped_total')
  t.equal(numbered.length + dropped, 20000, 'every line was either written or counted as dropped')
  t.same(numbered.map((l) => l.i), [...numbered.map((l) => l.i!)].sort((a, b) => a - b), 'written lines in order')
  t.equal(warnings.length, 1, 'one warning')
  t.equal(warnings[0]?.dropped, dropped, 'naming the count')
  t.equal(warnings[0]?.level, 40)
})

t.test('droppedLogLines is 0 for a logger it did not make', async (t) => {
  const { droppedLogLines, silentLogger } = await import('../../src/host/log.js')
  t.equal(droppedLogLines(silentLogger), 0)
})
