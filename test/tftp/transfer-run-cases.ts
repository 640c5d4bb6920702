// The transfer-run scenarios, run by transfer-run.test.ts (lock-step runs on the runner thread, as deployed) and
// transfer-run-loop.test.ts (PXEBOX_TFTP_RUNNER=off: runs on the event loop, where they go when the thread cannot start).
import type { Test } from 'tap'
import { createSocket, type Socket } from 'node:dgram'
import { once } from 'node:events'
import { readdirSync, readFileSync } from 'node:fs'
import { runTransfer, type TransferResult } from '../../src/tftp/transfer.js'
import { openTransferSocket } from '../../src/tftp/transfer-socket.js'
import { memorySource } from '../../src/tftp/reader.js'
import { loadNative } from '../../src/host/native.js'
import { silentLogger } from '../../src/host/log.js'

const BLKSIZE = 512
const BLOCKS = 20 // the file is 19.5 blocks: the 20th is short
const TIMEOUT_MS = 200

/** What the client does with DATA `block` the `nth` time it arrives: ACK after `delayMs`, drop it, or send ERROR. */
type Policy = (block: number, nth: number) => { ack: 'yes' | 'no' | 'twice' | 'error' | 'previous'; delayMs?: number }

async function transfer(t: Test, policy: Policy, timeoutMs = TIMEOUT_MS): Promise<{ result: TransferResult; data: Map<number, number>; file: Buffer; received: Buffer[] }> {
  const file = Buffer.alloc(BLKSIZE * (BLOCKS - 1) + 100)
  for (let i = 0; i < file.length; i++) file[i] = (i * 7) & 255
  const client: Socket = createSocket('udp4')
  client.bind(0, '127.0.0.1')
  await once(client, 'listening')
  let closed = false
  const close = () => {
    if (!closed) client.close()
    closed = true
  }
  t.teardown(close)
  const socket = await openTransferSocket('udp4', '127.0.0.1', { address: '127.0.0.1', port: client.address().port }, loadNative().addon)
  t.ok(socket.run, 'the native socket can run a transfer')
  const data = new Map<number, number>()
  const received: Buffer[] = []
  client.on('message', (m: Buffer) => {
    const block = m.readUInt16BE(2)
    const nth = (data.get(block) ?? 0) + 1
    data.set(block, nth)
    if (nth === 1) received[block - 1] = Buffer.from(m.subarray(4))
    const { ack, delayMs = 0 } = policy(block, nth)
    const reply = (buf: Buffer) => setTimeout(() => closed || client.send(buf, socket.port, '127.0.0.1'), delayMs)
    if (ack === 'no') return
    if (ack === 'error') return reply(Buffer.from([0, 5, 0, 0, ...Buffer.from('stop'), 0]))
    // As a client whose DATA was lost: after its own timeout it repeats its last ACK, that of the block before.
    if (ack === 'previous') return reply(Buffer.from([0, 4, (block - 1) >> 8, (block - 1) & 255]))
    reply(Buffer.from([0, 4, block >> 8, block & 255]))
    if (ack === 'twice') reply(Buffer.from([0, 4, block >> 8, block & 255]))
  })
  const handle = runTransfer({
    socket,
    source: memorySource(file),
    blksize: BLKSIZE,
    windowsize: 1,
    oack: [],
    tsizeRequested: false,
    timeoutMs,
    maxTimeoutMs: 4 * timeoutMs,
    retries: 3,
    logger: silentLogger,
  })
  const result = await handle.done
  close()
  return { result, data, file, received }
}

/** Names of this process's threads (/proc/self/task/<tid>/comm). */
function threadNames(): string[] {
  return readdirSync('/proc/self/task').map((tid) => {
    try {
      return readFileSync(`/proc/self/task/${tid}/comm`, 'utf8').trim()
    } catch {
      return '' // ended meanwhile
    }
  })
}

/** Registers the scenarios on `t`; `runner`: whether the runner thread should be serving them. */
export function runCases(t: Test, runner: boolean): void {
  t.test('a client taking 60 ms per ACK, in a transfer 6 timeouts long, gets no retransmission', async (t) => {
    // 20 ACKs 60 ms apart: the transfer lasts 6 timeouts, but no ACK is ever late.
    const { result, data, file, received } = await transfer(t, () => ({ ack: 'yes', delayMs: 60 }))
    t.equal(result.outcome, 'ok')
    t.equal(result.bytes, file.length)
    t.same([...data.values()], Array(BLOCKS).fill(1), 'each block sent once')
    t.ok(Buffer.concat(received).equals(file), 'the bytes are the file')
  })

  t.test('a lost ACK mid-run: the awaited block is sent again after the timeout, and the transfer completes', async (t) => {
    const started = Date.now()
    const { result, data, file, received } = await transfer(t, (block, nth) => ({ ack: block === 7 && nth === 1 ? 'no' : 'yes' }))
    t.equal(result.outcome, 'ok')
    t.equal(data.get(7), 2, 'DATA 7 twice')
    t.same([...data.entries()].filter(([b, n]) => b !== 7 && n !== 1), [], 'every other block once')
    t.ok(Date.now() - started >= TIMEOUT_MS, 'after the timeout')
    t.ok(Buffer.concat(received).equals(file))
  })

  t.test("a client's repeated ACK after its own timeout brings the lost block again before pxebox's timeout", async (t) => {
    // DATA 7 "lost": 60% of a 2 s timeout later the client repeats ACK 6; the block goes again at once (~1.2 s), not
    // at the timeout (2 s). The 800 ms between them is far wider than a loaded machine's jitter.
    const timeoutMs = 2000
    const started = Date.now()
    const { result, data } = await transfer(t, (block, nth) => (block === 7 && nth === 1 ? { ack: 'previous', delayMs: 0.6 * timeoutMs } : { ack: 'yes' }), timeoutMs)
    const took = Date.now() - started
    t.equal(result.outcome, 'ok')
    t.equal(data.get(7), 2, 'DATA 7 twice')
    t.same([...data.entries()].filter(([b, n]) => b !== 7 && n !== 1), [], 'every other block once')
    t.ok(took < timeoutMs, `done in ${took} ms, before the ${timeoutMs} ms timeout would have resent DATA 7`)
  })

  t.test('a duplicated ACK mid-run ends the run, not the transfer, and is not answered again (RFC 1123 4.2.3.1)', async (t) => {
    const { result, data } = await transfer(t, (block) => ({ ack: block === 5 || block === 12 ? 'twice' : 'yes' }))
    t.equal(result.outcome, 'ok')
    t.same([...data.values()], Array(BLOCKS).fill(1), 'no block sent twice')
  })

  t.test('an ERROR mid-run aborts with the bytes the client had acknowledged', async (t) => {
    const { result } = await transfer(t, (block) => ({ ack: block === 9 ? 'error' : 'yes' }))
    t.equal(result.outcome, 'aborted')
    t.equal(result.bytes, 8 * BLKSIZE, 'blocks 1-8 acknowledged')
    t.same(result.peerError, { code: 0, message: 'stop' })
  })

  t.test('a client that goes silent mid-run: retries, then a timeout with the bytes acknowledged', async (t) => {
    const { result, data } = await transfer(t, (block) => ({ ack: block >= 4 ? 'no' : 'yes' }))
    t.equal(result.outcome, 'timeout')
    t.equal(result.bytes, 3 * BLKSIZE)
    t.equal(data.get(4), 4, 'DATA 4 sent, then again for each of 3 retries')
  })

  t.test('transfers leave no descriptor behind, whichever way they end', async (t) => {
    const fds = () => readdirSync('/proc/self/fd').length
    await transfer(t, () => ({ ack: 'yes' })) // the runner's own epoll and eventfd exist from here on
    const before = fds()
    for (let i = 0; i < 10; i++) {
      await transfer(t, () => ({ ack: 'yes' }))
      await transfer(t, (block) => ({ ack: block === 3 ? 'error' : 'yes' }))
    }
    // A socket the runner still watches is closed by the runner once it lets go: allow it a moment.
    for (let i = 0; i < 50 && fds() > before; i++) await new Promise((r) => setTimeout(r, 10))
    t.equal(fds(), before)
  })

  t.test(runner ? 'the runs were served by the runner thread' : 'no runner thread was started', async (t) => {
    t.equal(threadNames().includes('pxebox-tftp'), runner)
  })
}
