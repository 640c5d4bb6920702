/**
 * The power-event case: 200 clients fetch a 1 MiB file at once (mixed blksize/windowsize); every copy is intact.
 */
import t from 'tap'
import { startTftp } from '../../src/tftp/server.js'
import { tftpGet } from '../helpers/tftp-client.js'
import { randomRoot, transferLog } from './lib.js'

t.test('200 concurrent 1 MiB transfers', async (t) => {
  const root = await randomRoot({ 'f1m.bin': 1 << 20 })
  const transfers = transferLog()
  // Every client is 127.0.0.1 here, so the per-client rate limit and transfer share are lifted for this test.
  const server = await startTftp({
    address: '127.0.0.1', port: 0, root: root.dir, onTransfer: transfers.onTransfer,
    limits: { maxTransfers: 500, maxRequestsPerClientPerSecond: 1000, maxTransfersPerClient: 500 }, timeouts: { initialMs: 500 },
  })
  t.teardown(async () => {
    await server.close()
    await root.cleanup()
  })
  const shapes = [
    { blksize: 1468, windowsize: 16 },
    { blksize: 1468, windowsize: 1 },
    { blksize: 512, windowsize: 8 },
    { blksize: 1468, windowsize: 32 },
  ]
  const started = performance.now()
  const results = await Promise.all(
    Array.from({ length: 200 }, (_, i) =>
      tftpGet({ host: '127.0.0.1', port: server.port, file: 'f1m.bin', tsize: true, ...shapes[i % shapes.length]!, keepData: false, retransmitMs: 1000 })
        .then((r) => r.sha256)
        .catch((err: Error) => `failed: ${err.message}`),
    ),
  )
  const seconds = (performance.now() - started) / 1000
  const intact = results.filter((h) => h === root.hashes['f1m.bin']).length
  t.equal(intact, 200, `all 200 copies intact (${seconds.toFixed(1)} s)`)
  t.same([...new Set(results.filter((h) => h !== root.hashes['f1m.bin']))], [], 'no failures')
  // The last final ACKs may still be in flight when the clients resolve.
  const deadline = Date.now() + 5000
  while (transfers.entries.length < 200 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20))
  t.equal(transfers.entries.filter((e) => e.outcome === 'ok').length, 200, '200 ok events')
})
