/**
 * 10% of packets dropped both ways (seeded), by the server's loss hook: every transfer must still complete intact,
 * through retransmission on both sides and RFC 7440 gap recovery.
 */
import t from 'tap'
import { startTftp } from '../../src/tftp/server.js'
import { tftpGet } from '../helpers/tftp-client.js'
import { seededRandom } from '../helpers/seeded-random.js'
import { randomRoot, transferLog } from './lib.js'

t.test('lossy link: every transfer completes intact', async (t) => {
  const root = await randomRoot({ 'f1k.bin': 1024, 'f64k.bin': 64 * 1024, 'f1m.bin': 1 << 20 })
  const random = seededRandom(7440)
  const dropped = { in: 0, out: 0 }
  const seen = { in: 0, out: 0 }
  const transfers = transferLog()
  const server = await startTftp({
    address: '127.0.0.1',
    port: 0,
    root: root.dir,
    onTransfer: transfers.onTransfer,
    timeouts: { initialMs: 50, maxMs: 400 },
    retries: 10,
    limits: { maxRequestsPerClientPerSecond: 1000 },
    lossHook: (direction) => {
      seen[direction]++
      if (random() >= 0.1) return false
      dropped[direction]++
      return true
    },
  })
  t.teardown(async () => {
    await server.close()
    await root.cleanup()
  })
  const jobs: Array<{ file: string; blksize: number; windowsize: number }> = []
  for (const blksize of [512, 1468]) {
    for (const file of ['f1k.bin', 'f64k.bin']) jobs.push({ file, blksize, windowsize: 1 })
    for (const windowsize of [4, 16]) for (const file of ['f1k.bin', 'f64k.bin', 'f1m.bin']) jobs.push({ file, blksize, windowsize })
  }
  const results: Array<[string, boolean]> = []
  let next = 0
  // Four at a time: enough overlap to exercise concurrent loss, bounded CPU.
  await Promise.all(
    Array.from({ length: 4 }, async () => {
      while (next < jobs.length) {
        const job = jobs[next++]!
        const label = `${job.file} blksize ${job.blksize} windowsize ${job.windowsize}`
        const r = await tftpGet({ host: '127.0.0.1', port: server.port, ...job, tsize: true, retransmitMs: 120, retries: 40, keepData: false })
        results.push([label, r.sha256 === root.hashes[job.file]])
      }
    }),
  )
  for (const [label, ok] of results) t.ok(ok, `${label}: intact`)
  t.equal(results.length, jobs.length, 'every transfer finished')
  t.ok(dropped.in > 10 && dropped.out > 100, `the hook dropped ${dropped.in}/${seen.in} in and ${dropped.out}/${seen.out} out`)
  t.ok(Math.abs(dropped.out / seen.out - 0.1) < 0.03, 'about 10% of outgoing packets dropped')
})
