/**
 * src/host/read-file.ts reads a regular file without a last read to see its end when the first read gave exactly
 * the size fstat reported (issue 16: 100,000 Matchbox group files); files whose size says nothing or is wrong are
 * still read to their end. Each case compares with Node's own readFileSync.
 */
import t from 'tap'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { readConfigFileSync } from '../../src/host/read-file.js'

t.test('regular files of every size around the first read\'s buffer read whole', async (t) => {
  const dir = t.testdir({})
  for (const size of [0, 1, 1023, 1024, 1025, 4095, 4096, 65_535, 65_536, 70_000, 200_000]) {
    const file = join(dir, `f${size}`)
    // Multi-byte UTF-8 across chunk boundaries, too.
    const text = 'é'.repeat(Math.floor(size / 2)) + 'x'.repeat(size % 2)
    writeFileSync(file, text)
    t.equal(readConfigFileSync(file), text, `${size} bytes`)
  }
})

t.test('a /proc file (fstat says 0 bytes) is read to its end', async (t) => {
  const expected = readFileSync('/proc/self/limits', 'utf8')
  t.ok(expected.length > 1024, 'longer than the first read')
  t.equal(readConfigFileSync('/proc/self/limits'), expected)
})

t.test('the size limit still holds', async (t) => {
  const dir = t.testdir({ big: 'y'.repeat(2000) })
  t.throws(() => readConfigFileSync(join(dir, 'big'), 1999), { code: 'ETOOBIG' })
  t.equal(readConfigFileSync(join(dir, 'big'), 2000).length, 2000)
})
