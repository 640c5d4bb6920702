/**
 * The summarizing log gate (src/host/log-limit.ts) on a fake clock: the first lines of a window pass, the rest are counted
 * into one summary per window, and its memory stays bounded under a spoofed-source flood.
 */
import t from 'tap'
import { createLogGate, type LogGateSummary } from '../../src/host/log-limit.js'

function gate(opts: { maxPerWindow?: number; windowMs?: number; maxSources?: number } = {}) {
  let clock = 1_000_000
  const summaries: LogGateSummary[] = []
  const g = createLogGate({ ...opts, now: () => clock, onSummary: (s) => void summaries.push(s) })
  t.teardown(() => g.stop())
  return { g, summaries, advance: (ms: number) => void (clock += ms) }
}

t.test('first N per window pass, the rest are summarized per window', async (t) => {
  const { g, summaries, advance } = gate({ maxPerWindow: 3, windowMs: 1000 })
  const passed = Array.from({ length: 10 }, (_, i) => g.admit(`10.0.0.${i % 4}`, i % 2 ? 'rate limit' : 'mode'))
  t.same(passed, [true, true, true, false, false, false, false, false, false, false])
  t.same(summaries, [], 'no summary before the window ends')
  advance(1000)
  t.ok(g.admit('10.0.0.9'), 'a new window lets lines through again')
  t.same(summaries, [{ suppressed: 7, sources: 4, sourcesCapped: false, kinds: { 'rate limit': 4, mode: 3 }, windowMs: 1000 }])
  advance(5000)
  g.admit('10.0.0.9')
  t.equal(summaries.length, 1, 'a window that suppressed nothing has no summary')
})

t.test('the summary comes from a timer when nothing follows the burst', async (t) => {
  const summaries: LogGateSummary[] = []
  const g = createLogGate({ maxPerWindow: 1, windowMs: 50, onSummary: (s) => void summaries.push(s) })
  t.teardown(() => g.stop())
  for (let i = 0; i < 5; i++) g.admit('a')
  await new Promise((r) => setTimeout(r, 120))
  t.match(summaries, [{ suppressed: 4, sources: 1 }])
})

t.test('stop() flushes; distinct sources and kinds are bounded', async (t) => {
  const { g, summaries } = gate({ maxPerWindow: 0, maxSources: 100 })
  for (let i = 0; i < 10_000; i++) g.admit(`k${i}`, `kind${i}`)
  g.stop()
  t.equal(summaries.length, 1)
  t.match(summaries[0], { suppressed: 10_000, sources: 100, sourcesCapped: true })
  t.equal(Object.keys(summaries[0]!.kinds).length, 32, 'kinds capped')
  t.notOk(g.admit('x'), 'still gating after stop')
})

t.test('a throwing onSummary does not reach the caller', async (t) => {
  const g = createLogGate({ maxPerWindow: 0, onSummary: () => { throw new Error('disk full') } })
  g.admit('a')
  t.doesNotThrow(() => g.stop())
})
