/**
 * Scripted exchanges against the server, packet by packet: the UEFI tsize probe, foreign TIDs, WRQ, modes,
 * RFC 7440 gap and duplicate ACKs, retransmission backoff, missing final ACK, block-number rollover. (MAC and arch
 * prefixes are the boot layer's: test/boot/tftp-files.test.ts.)
 */
import t, { type Test } from 'tap'
import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { startTftp, type TftpServerOptions } from '../../src/tftp/server.js'
import type { TftpPacket } from '../../src/tftp/packet.js'
import { UdpPeer, tftpGet } from '../helpers/tftp-client.js'
import { randomRoot, sha256, captureLogger, transferLog } from './lib.js'

async function setup(t: Test, extra: Partial<TftpServerOptions> = {}) {
  const root = await randomRoot({ 'f1k.bin': 1024, 'f1m.bin': 1 << 20, 'f600k.bin': 600 * 1024 })
  await mkdir(join(root.dir, 'sub'))
  const transfers = transferLog()
  const capture = captureLogger()
  const server = await startTftp({ address: '127.0.0.1', port: 0, root: root.dir, onTransfer: transfers.onTransfer, logger: capture.logger, ...extra })
  const peers: UdpPeer[] = []
  const peer = async () => {
    const p = await UdpPeer.open()
    peers.push(p)
    return p
  }
  t.teardown(async () => {
    for (const p of peers) p.close()
    await server.close()
    await root.cleanup()
  })
  return { root, transfers, server, peer, lines: capture.lines }
}

type Got = { packet: TftpPacket; rinfo: { port: number } }

async function expectPacket(t: Test, p: UdpPeer, what: string, timeoutMs = 2000): Promise<Got> {
  const got = await p.next(timeoutMs)
  if (!got) throw new Error(`no packet while waiting for ${what}`)
  return got
}

async function waitFor(cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time')
    await new Promise((r) => setTimeout(r, 10))
  }
}

// Every exchange runs over both transfer socket implementations (src/tftp/transfer-socket.ts).
for (const transferSockets of ['native', 'dgram'] as const) {
  t.test(`transfer sockets: ${transferSockets}`, async (t) => {
    t.test('UEFI probe: RRQ tsize, OACK, ERROR 8, RRQ again, full transfer; the probe is logged at debug only', async (t) => {
      const { server, peer, transfers, root, lines } = await setup(t, { transferSockets })
      const p = await peer()
      p.send({ op: 'rrq', filename: 'f1k.bin', mode: 'octet', options: [['tsize', '0'], ['blksize', '1468']] }, server.port)
      const oack = await expectPacket(t, p, 'OACK')
      t.same(oack.packet, { op: 'oack', options: [['tsize', '1024'], ['blksize', '1468']] }, 'OACK carries the real size')
      t.not(oack.rinfo.port, server.port, 'the OACK comes from a fresh transfer port')
      p.send({ op: 'error', code: 8, message: 'User aborted the transfer' }, oack.rinfo.port)
      p.send({ op: 'rrq', filename: 'f1k.bin', mode: 'octet', options: [['blksize', '1468']] }, server.port)
      const oack2 = await expectPacket(t, p, 'second OACK')
      t.same(oack2.packet, { op: 'oack', options: [['blksize', '1468']] })
      p.send({ op: 'ack', block: 0 }, oack2.rinfo.port)
      const data = await expectPacket(t, p, 'DATA 1')
      t.equal(data.packet.op, 'data')
      if (data.packet.op !== 'data') return
      t.equal(data.packet.block, 1)
      t.equal(sha256(Buffer.from(data.packet.data)), root.hashes['f1k.bin'], 'one short block holds the whole file')
      p.send({ op: 'ack', block: 1 }, oack2.rinfo.port)
      await waitFor(() => transfers.entries.length === 2)
      t.match(transfers.entries[0], { outcome: 'aborted', peer: { address: '127.0.0.1' }, path: 'f1k.bin', tsizeProbe: true })
      t.match(transfers.entries[1], { outcome: 'ok', path: 'f1k.bin', bytes: 1024, blksize: 1468, windowsize: 1 })
      t.same(
        lines.filter((l) => l.level >= 30 && l.msg !== 'TFTP server listening'),
        [],
        'nothing above debug for a probe and a clean transfer',
      )
    })

    t.test('a packet from a foreign port gets ERROR 5 and the transfer carries on', async (t) => {
      const { server, peer, transfers, root } = await setup(t, { transferSockets })
      const a = await peer()
      const intruder = await peer()
      a.send({ op: 'rrq', filename: 'f1k.bin', mode: 'octet', options: [] }, server.port)
      const d1 = await expectPacket(t, a, 'DATA 1')
      t.match(d1.packet, { op: 'data', block: 1 }, 'no options: DATA 1 straight away')
      intruder.send({ op: 'ack', block: 1 }, d1.rinfo.port)
      const err = await expectPacket(t, intruder, 'ERROR 5')
      t.match(err.packet, { op: 'error', code: 5, message: 'Unknown transfer ID' })
      t.equal(err.rinfo.port, d1.rinfo.port, 'ERROR 5 comes from the transfer port')
      const parts: Buffer[] = []
      let got = d1
      for (let block = 1; ; block++) {
        if (got.packet.op !== 'data') throw new Error('expected DATA')
        t.equal(got.packet.block, block)
        parts.push(Buffer.from(got.packet.data))
        a.send({ op: 'ack', block }, d1.rinfo.port)
        if (got.packet.data.length < 512) break
        got = await expectPacket(t, a, `DATA ${block + 1}`)
      }
      t.equal(sha256(Buffer.concat(parts)), root.hashes['f1k.bin'], 'the original peer got the whole file')
      await waitFor(() => transfers.entries.length === 1)
      t.match(transfers.entries[0], { outcome: 'ok', blksize: 512, windowsize: 1, bytes: 1024 })
    })

    t.test('WRQ gets ERROR 2; netascii and unknown modes are refused', async (t) => {
      const { server, peer, transfers } = await setup(t, { transferSockets })
      const p = await peer()
      p.send({ op: 'wrq', filename: 'upload.bin', mode: 'octet', options: [] }, server.port)
      t.match((await expectPacket(t, p, 'ERROR'))?.packet, { op: 'error', code: 2 })
      p.send({ op: 'rrq', filename: 'f1k.bin', mode: 'netascii', options: [] }, server.port)
      t.match((await expectPacket(t, p, 'ERROR'))?.packet, { op: 'error', code: 0, message: /octet/ })
      p.send({ op: 'rrq', filename: 'f1k.bin', mode: 'mail', options: [] }, server.port)
      t.match((await expectPacket(t, p, 'ERROR'))?.packet, { op: 'error', code: 4 })
      t.same(
        transfers.entries.map((e) => [e.outcome, e.reason]),
        [
          ['refused', 'write request'],
          ['refused', 'mode netascii'],
          ['refused', 'mode mail'],
        ],
      )
      t.equal(await p.next(200), undefined, 'no DATA follows a refusal')
    })

    t.test('RFC 7440: a gap ACK restarts the window after it; a duplicate ACK is ignored', async (t) => {
      const { server, peer } = await setup(t, { transferSockets, timeouts: { initialMs: 3000 } })
      const p = await peer()
      p.send({ op: 'rrq', filename: 'f1m.bin', mode: 'octet', options: [['blksize', '512'], ['windowsize', '4']] }, server.port)
      const oack = await expectPacket(t, p, 'OACK')
      t.same(oack.packet, { op: 'oack', options: [['blksize', '512'], ['windowsize', '4']] })
      const tid = oack.rinfo.port
      const blocks = async (n: number) => {
        const out: number[] = []
        for (let i = 0; i < n; i++) {
          const g = await expectPacket(t, p, 'DATA')
          if (g.packet.op === 'data') out.push(g.packet.block)
        }
        return out
      }
      p.send({ op: 'ack', block: 0 }, tid)
      t.same(await blocks(4), [1, 2, 3, 4], 'first window')
      p.send({ op: 'ack', block: 2 }, tid)
      t.same(await blocks(4), [3, 4, 5, 6], 'after ACK 2 (3 and 4 lost): resend from 3')
      p.send({ op: 'ack', block: 2 }, tid)
      t.equal(await p.next(300), undefined, 'a duplicate ACK 2 sends nothing (no Sorcerer’s Apprentice)')
      p.send({ op: 'ack', block: 6 }, tid)
      t.same(await blocks(4), [7, 8, 9, 10], 'ACK at the window end: next window')
      p.send({ op: 'ack', block: 99 }, tid)
      t.equal(await p.next(300), undefined, 'an ACK beyond what was sent is ignored')
      p.send({ op: 'error', code: 0, message: 'done' }, tid)
    })

    t.test('retransmission backs off and gives up; a missing final ACK is still ok', async (t) => {
      const { server, peer, transfers, lines } = await setup(t, { transferSockets, timeouts: { initialMs: 100, maxMs: 1000 }, retries: 3 })
      const p = await peer()
      p.send({ op: 'rrq', filename: 'f1m.bin', mode: 'octet', options: [] }, server.port)
      const times: number[] = []
      for (;;) {
        const g = await p.next(1500)
        if (!g) break
        if (g.packet.op === 'data') {
          t.equal(g.packet.block, 1)
          times.push(performance.now())
        } else {
          t.match(g.packet, { op: 'error', code: 0, message: 'Timeout' }, 'the server says why it stops')
        }
      }
      t.equal(times.length, 4, 'DATA 1 once plus 3 retransmissions')
      const gaps = times.slice(1).map((x, i) => x - (times[i] as number))
      t.ok(gaps[0]! >= 80 && gaps[1]! > gaps[0]! * 1.5 && gaps[2]! > gaps[1]! * 1.5, `gaps double: ${gaps.map((g) => g.toFixed(0))}`)
      await waitFor(() => transfers.entries.length === 1)
      t.match(transfers.entries[0], { outcome: 'timeout', bytes: 0 })
      t.ok(lines.some((l) => l.level === 30 && l.msg === 'TFTP transfer ended' && l.outcome === 'timeout'))

      // Now a client that takes every block but never acknowledges the last one.
      const q = await peer()
      q.send({ op: 'rrq', filename: 'f1k.bin', mode: 'octet', options: [] }, server.port)
      for (let block = 1; block <= 3; block++) {
        const g = await expectPacket(t, q, `DATA ${block}`)
        t.match(g.packet, { op: 'data', block })
        if (block < 3) q.send({ op: 'ack', block }, g.rinfo.port)
      }
      await waitFor(() => transfers.entries.length === 2)
      t.match(transfers.entries[1], { outcome: 'ok', bytes: 1024, finalAck: false })
    })

    t.test('the timeout option is honoured', async (t) => {
      const { server, peer } = await setup(t, { transferSockets, timeouts: { initialMs: 5000 } })
      const p = await peer()
      p.send({ op: 'rrq', filename: 'f1k.bin', mode: 'octet', options: [['timeout', '1']] }, server.port)
      const first = await expectPacket(t, p, 'OACK')
      t.same(first.packet, { op: 'oack', options: [['timeout', '1']] })
      const start = performance.now()
      const again = await expectPacket(t, p, 'OACK again', 2500)
      const waited = performance.now() - start
      t.same(again.packet, first.packet)
      t.ok(waited > 800 && waited < 1600, `OACK repeated after ${waited.toFixed(0)} ms (asked 1 s, default 5 s)`)
      p.send({ op: 'error', code: 0, message: 'bye' }, first.rinfo.port)
    })

    t.test('block numbers roll over 65535 -> 0', async (t) => {
      const { server, transfers, root } = await setup(t, { transferSockets })
      // 600 KiB at blksize 8 is 76800 blocks: the wire number wraps once.
      const r = await tftpGet({ host: '127.0.0.1', port: server.port, file: 'f600k.bin', blksize: 8, windowsize: 32, keepData: false })
      t.equal(r.sha256, root.hashes['f600k.bin'])
      t.same(r.oack, { blksize: '8', windowsize: '32' })
      await waitFor(() => transfers.entries.length === 1)
      t.match(transfers.entries[0], { outcome: 'ok', bytes: 600 * 1024, blksize: 8, windowsize: 32 })
    })
  })
}
