/**
 * Limits: past the concurrent-transfer cap or a client's request rate, requests get ERROR 0 and a log line; the server
 * keeps serving and survives a flood of junk.
 */
import t from 'tap'
import { startTftp } from '../../src/tftp/server.js'
import { UdpPeer, tftpGet } from '../helpers/tftp-client.js'
import { randomRoot, captureLogger, transferLog } from './lib.js'

t.test('concurrent transfer cap', async (t) => {
  const root = await randomRoot({ 'f1m.bin': 1 << 20 })
  const capture = captureLogger()
  const transfers = transferLog()
  const server = await startTftp({
    address: '127.0.0.1', port: 0, root: root.dir, logger: capture.logger, onTransfer: transfers.onTransfer,
    limits: { maxTransfers: 3 }, timeouts: { initialMs: 5000 },
  })
  const peers = await Promise.all([1, 2, 3, 4].map(() => UdpPeer.open()))
  t.teardown(async () => {
    for (const p of peers) p.close()
    await server.close()
    await root.cleanup()
  })
  const tids: number[] = []
  for (const p of peers.slice(0, 3)) {
    p.send({ op: 'rrq', filename: 'f1m.bin', mode: 'octet', options: [] }, server.port)
    const got = await p.next()
    t.match(got?.packet, { op: 'data', block: 1 }, 'a transfer within the cap starts')
    tids.push(got!.rinfo.port)
  }
  t.equal(server.activeTransfers(), 3)
  const fourth = peers[3]!
  fourth.send({ op: 'rrq', filename: 'f1m.bin', mode: 'octet', options: [] }, server.port)
  t.match((await fourth.next())?.packet, { op: 'error', code: 0, message: /busy/ }, 'the fourth gets ERROR 0')
  t.ok(capture.lines.some((l) => l.level === 40 && /server busy/.test(l.msg)), 'and a warning is logged')
  t.match(transfers.entries.at(-1), { outcome: 'refused', reason: 'max transfers' })
  // End one transfer: a slot frees up.
  peers[0]!.send({ op: 'error', code: 0, message: 'stop' }, tids[0]!)
  const start = Date.now()
  while (server.activeTransfers() > 2 && Date.now() - start < 2000) await new Promise((r) => setTimeout(r, 10))
  fourth.send({ op: 'rrq', filename: 'f1m.bin', mode: 'octet', options: [] }, server.port)
  t.match((await fourth.next())?.packet, { op: 'data', block: 1 }, 'after one ends, a new one starts')
})

t.test('per-client request rate', async (t) => {
  const root = await randomRoot({ 'f1k.bin': 1024 })
  const capture = captureLogger()
  const server = await startTftp({
    address: '127.0.0.1', port: 0, root: root.dir, logger: capture.logger,
    limits: { maxRequestsPerClientPerSecond: 5 },
  })
  const p = await UdpPeer.open()
  t.teardown(async () => {
    p.close()
    await server.close()
    await root.cleanup()
  })
  for (let i = 0; i < 8; i++) p.send({ op: 'rrq', filename: 'missing.bin', mode: 'octet', options: [] }, server.port)
  const codes: Array<[number, string]> = []
  for (let i = 0; i < 8; i++) {
    const got = await p.next()
    if (got?.packet.op === 'error') codes.push([got.packet.code, got.packet.message])
  }
  // Refusals go out at once, not-found answers after a file lookup, so count rather than rely on order.
  t.equal(codes.filter((c) => c[0] === 1).length, 5, 'five are served (file not found)')
  t.same(codes.filter((c) => c[0] !== 1).map((c) => c[0]), [0, 0, 0], 'the other three get ERROR 0')
  t.ok(codes.filter((c) => c[0] === 0).every((c) => /Too many requests/.test(c[1])))
  t.equal(capture.lines.filter((l) => l.level === 40 && /request rate/.test(l.msg)).length, 3, 'one warning per refusal')
  await new Promise((r) => setTimeout(r, 1100))
  const r = await tftpGet({ host: '127.0.0.1', port: server.port, file: 'f1k.bin' })
  t.equal(r.sha256, root.hashes['f1k.bin'], 'a second later the client is served again')
})

t.test('a flood of junk and requests never crashes the server', async (t) => {
  const root = await randomRoot({ 'f1k.bin': 1024 })
  const server = await startTftp({
    address: '127.0.0.1', port: 0, root: root.dir,
    limits: { maxTransfers: 10, maxRequestsPerClientPerSecond: 50 }, timeouts: { initialMs: 100 }, retries: 1,
  })
  const p = await UdpPeer.open()
  t.teardown(async () => {
    p.close()
    await server.close()
    await root.cleanup()
  })
  const junk = [Buffer.alloc(0), Buffer.from([0]), Buffer.from([0, 9, 1, 2]), Buffer.from([0, 1, 65, 66]), Buffer.from([0, 4, 0])]
  for (let i = 0; i < 2000; i++) {
    if (i % 4 === 0) p.send({ op: 'rrq', filename: 'f1k.bin', mode: 'octet', options: [['blksize', '1468']] }, server.port)
    else p.send(junk[i % junk.length]!, server.port)
  }
  await new Promise((r) => setTimeout(r, 50))
  t.ok(server.activeTransfers() <= 10, `at most the cap is active (${server.activeTransfers()})`)
  // The flooder never ACKs: its transfers time out and free their slots.
  const start = Date.now()
  while ((server.activeTransfers() > 0 || Date.now() - start < 1100) && Date.now() - start < 5000) {
    await new Promise((r) => setTimeout(r, 20))
  }
  t.equal(server.activeTransfers(), 0, 'abandoned transfers ended')
  const r = await tftpGet({ host: '127.0.0.1', port: server.port, file: 'f1k.bin' })
  t.equal(r.sha256, root.hashes['f1k.bin'], 'still serving')
})
