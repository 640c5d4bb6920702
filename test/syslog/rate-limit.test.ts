import t from 'tap'
import { createKeyedTokenBuckets, createTokenBucket } from '../../src/syslog/rate-limit.js'

t.test('a bucket gives its burst, refills at its rate, never above the burst', async (t) => {
  const b = createTokenBucket({ ratePerSecond: 4, burst: 2 }, 0)
  t.strictSame([b.take(0), b.take(0), b.take(0)], [true, true, false])
  t.equal(b.take(250), true, 'one token after 250 ms at 4/s')
  t.equal(b.take(250), false)
  t.strictSame([b.take(60_000), b.take(60_000), b.take(60_000)], [true, true, false], 'a long idle time refills to the burst only')
})

t.test('a clock going backwards adds no tokens', async (t) => {
  const b = createTokenBucket({ ratePerSecond: 1000, burst: 1 }, 10_000)
  t.equal(b.take(10_000), true)
  t.equal(b.take(0), false)
  t.equal(b.take(5), true, 'time counts again from the backwards reading')
})

t.test('keyed buckets: independent per key, oldest key forgotten at the cap', async (t) => {
  const k = createKeyedTokenBuckets({ ratePerSecond: 1, burst: 1 }, 2)
  t.strictSame([k.take('a', 0), k.take('a', 0), k.take('b', 0)], [true, false, true])
  t.equal(k.size, 2)
  t.equal(k.take('c', 0), true)
  t.equal(k.size, 2, 'still two buckets')
  t.equal(k.take('a', 0), true, '"a" was forgotten and starts full again')
  t.equal(k.take('c', 0), false, '"c" kept its bucket')
})
