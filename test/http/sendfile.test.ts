// Asset bodies through sendfile(2) on the addon's sender thread (native/sendfile.c) and through the copy fallback (http.sendfile: false), with real
// curl over 127.0.0.1: whole files, ranges, keep-alive, slow clients, clients that vanish, files that shrink.
import t from 'tap'
import { execFile } from 'node:child_process'
import { once } from 'node:events'
import { promisify } from 'node:util'
import { createHash, randomBytes } from 'node:crypto'
import { readdirSync } from 'node:fs'
import { open, readFile, truncate, writeFile } from 'node:fs/promises'
import { connect, createServer, type AddressInfo, type Socket } from 'node:net'
import { constants } from 'node:os'
import { join } from 'node:path'
import { buildApp } from '../../src/http/app.js'
import { loadBootState } from '../../src/catalog/state.js'
import { memoryEvents } from '../../src/machines/events.js'
import { loadNative } from '../../src/host/native.js'

const run = promisify(execFile)
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex')
const openFds = () => readdirSync('/proc/self/fd').length

const curlMissing = await run('curl', ['--version']).then(
  () => false as const,
  () => 'curl not installed (Debian package curl)',
)

/**
 * A slow HTTP/1.1 client: reads 64 KiB, then pauses `pauseMs`, so the server's socket fills and it must wait for it to
 * drain (curl's --limit-rate lets whole bursts through on loopback). `during` runs once the body has started.
 */
async function slowGet(port: number, path: string, pauseMs: number, during?: () => Promise<void>): Promise<{ length: number; body: Buffer }> {
  const sock = connect(port, '127.0.0.1')
  await once(sock, 'connect')
  sock.write(`GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`)
  const chunks: Buffer[] = []
  let pending = 0
  let started = false
  for await (const chunk of sock) {
    chunks.push(chunk as Buffer)
    pending += (chunk as Buffer).length
    if (!started && during) (started = true), void during()
    if (pending >= 64 * 1024) {
      pending = 0
      sock.pause()
      await new Promise((r) => setTimeout(r, pauseMs))
      sock.resume()
    }
  }
  const all = Buffer.concat(chunks)
  const split = all.indexOf('\r\n\r\n')
  const length = Number(/content-length: (\d+)/i.exec(all.subarray(0, split).toString('latin1'))?.[1])
  return { length, body: all.subarray(split + 4) }
}

/**
 * Waits until `ready()` holds, up to `ms`. The asset route records a transfer after its last bytes are in the kernel
 * and its file is closed, so a client (curl) can be done before the server has logged it.
 */
async function eventually(ready: () => boolean, ms = 10_000): Promise<void> {
  for (const until = Date.now() + ms; !ready() && Date.now() < until; ) await new Promise((r) => setTimeout(r, 20))
}

async function fetch(url: string, ...args: string[]): Promise<Buffer> {
  const { stdout } = await run('curl', ['-sf', ...args, url], { encoding: 'buffer', maxBuffer: 64 << 20 })
  return stdout
}

t.test('the addon is built and loads (npm run build builds it)', async (t) => {
  const { addon, reason } = loadNative()
  t.equal(reason, undefined)
  t.type(addon?.senderOpen, 'function')
  const sender = addon!.senderOpen(1000)
  t.teardown(() => addon!.senderClose(sender))
  t.throws(() => addon!.senderSend(sender, -1, 0, 0, 10), /file descriptor/, 'bad input is a JS error, not a crash')
  t.throws(() => addon!.senderOpen(0), /idleMs/)
  // Node-style system errors (native/errors.c): the errno name, the number as os.constants.errno has it, the call.
  await t.rejects(addon!.senderSend(sender, 1_000_000, 0, 0, 10), { code: 'EBADF', errno: constants.errno.EBADF, syscall: 'dup' })
})

/** A loopback TCP connection whose client side never reads: the server side's socket fills and stays full. */
async function stalledConnection(t: { teardown: (fn: () => void) => void }): Promise<{ serverFd: number }> {
  const server = createServer()
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  const accepted = once(server, 'connection')
  const client = connect((server.address() as AddressInfo).port, '127.0.0.1')
  client.pause()
  const [socket] = (await accepted) as [Socket]
  t.teardown(() => {
    client.destroy()
    socket.destroy()
    server.close()
  })
  return { serverFd: (socket as unknown as { _handle: { fd: number } })._handle.fd }
}

t.test('the sender thread: a stalled client times out, close cancels, bad descriptors reject', async (t) => {
  const addon = loadNative().addon!
  const dir = t.testdir({})
  const path = join(dir, 'f.img')
  await writeFile(path, big)
  const fh = await open(path, 'r')
  t.teardown(() => fh.close())

  const quick = addon.senderOpen(300)
  t.teardown(() => addon.senderClose(quick))
  const stalled = await stalledConnection(t)
  // The socket takes a few MB, then nothing: after 300 ms without progress (looked for each second) the body fails.
  const started = Date.now()
  await t.rejects(addon.senderSend(quick, stalled.serverFd, fh.fd, 0, big.length), { code: 'ETIMEDOUT', syscall: 'sendfile' })
  t.ok(Date.now() - started < 10_000, 'within the idle time and a sweep, not never')
  // A file descriptor that is no file: the socket takes nothing and the body fails with sendfile's own error.
  const other = await stalledConnection(t)
  await t.rejects(addon.senderSend(quick, other.serverFd, 1_000_000, 0, 10), { code: 'EBADF', syscall: 'sendfile' })
  t.throws(() => addon.senderSend({}, 1, fh.fd, 0, 10), /sender handle/, 'a wrong handle is a JS error, not a crash')

  const slow = addon.senderOpen(60_000)
  const held = await stalledConnection(t)
  const pending = addon.senderSend(slow, held.serverFd, fh.fd, 0, big.length)
  await new Promise((r) => setTimeout(r, 200))
  addon.senderClose(slow)
  await t.rejects(pending, { code: 'ECANCELED' }, 'a body still in flight when the sender closes rejects')
  await t.rejects(addon.senderSend(slow, held.serverFd, fh.fd, 0, 10), { code: 'ECANCELED' }, 'and so does one sent after')
  addon.senderClose(slow)
  t.pass('closing twice is fine')
})

const big = randomBytes(24 * 1024 * 1024 + 123)
const medium = randomBytes(8 * 1024 * 1024)

// PXEBOX_SENDFILE_TEST_MODES=sendfile: scripts/test-native-asan.sh runs only the path that reaches the addon (the
// copy path never calls native code, so running it under ASan would only cost time).
const modes = (['sendfile', 'copy'] as const).filter((m) => (process.env.PXEBOX_SENDFILE_TEST_MODES ?? 'sendfile,copy').split(',').includes(m))
for (const mode of modes) {
  t.test(`asset bodies, ${mode} path`, { skip: curlMissing }, async (t) => {
    const assets = t.testdir({})
    await writeFile(join(assets, 'rootfs.img'), big)
    await writeFile(join(assets, 'kernel'), medium)
    const r = await loadBootState({ profiles: {}, groups: [] })
    if (!r.ok) throw new Error(r.errors.join())
    const state = r.state
    const events = memoryEvents()
    // Count the addon's sendfile jobs, so the test knows which path really carried the bytes.
    const addon = loadNative().addon!
    let jobs = 0
    const counted = {
      senderOpen: addon.senderOpen,
      senderClose: addon.senderClose,
      senderSend: (...a: Parameters<typeof addon.senderSend>) => (jobs++, addon.senderSend(...a)),
    }
    const app = buildApp({ store: { get: () => state }, assetsDir: assets, publicUrl: 'http://127.0.0.1', events, version: 't', ...(mode === 'sendfile' ? { sendfile: counted } : {}) })
    t.teardown(() => app.close())
    const base = `${await app.listen({ host: '127.0.0.1', port: 0 })}/assets`

    t.test('whole file and a range in the middle are byte-exact', async (t) => {
      t.equal(sha(await fetch(`${base}/rootfs.img`)), sha(big))
      const [start, end] = [5_000_001, 20_000_000]
      t.equal(sha(await fetch(`${base}/rootfs.img`, '-H', `Range: bytes=${start}-${end}`)), sha(big.subarray(start, end + 1)))
      await eventually(() => events.events.some((e) => e.detail.status === 206))
      t.match(events.events.find((e) => e.detail.status === 206), { outcome: 'ok', detail: { status: 206, bytes: end - start + 1 } })
      if (mode === 'sendfile') t.ok(jobs > 0, `the sender carried the bodies (${jobs} jobs)`)
      else t.equal(jobs, 0, 'http.sendfile: false copies instead')
    })

    t.test('two files on one keep-alive connection', async (t) => {
      const dir = t.testdir({})
      const { stderr } = await run('curl', ['-sfv', `${base}/kernel`, '-o', join(dir, 'a'), `${base}/rootfs.img`, '-o', join(dir, 'b')], { maxBuffer: 1 << 20 })
      t.match(stderr, /Re-using existing connection/, 'the second request reused the connection')
      t.equal(sha(await readFile(join(dir, 'a'))), sha(medium))
      t.equal(sha(await readFile(join(dir, 'b'))), sha(big))
    })

    const port = Number(new URL(base).port)

    t.test('a slow client gets the whole file', async (t) => {
      const before = jobs
      const { length, body } = await slowGet(port, '/assets/kernel', 2)
      t.equal(length, medium.length)
      t.equal(sha(body), sha(medium))
      // The socket filled and drained many times; the sender thread waited for it, the event loop heard back once.
      if (mode === 'sendfile') t.equal(jobs - before, 1, 'one job for the whole body')
    })

    t.test('a client that vanishes mid-body: logged as aborted, no descriptor leaks, the next client is served', async (t) => {
      await fetch(`${base}/kernel`) // descriptors the server keeps anyway (file handles pool, etc.) are open now
      const before = openFds()
      for (let i = 0; i < 5; i++) {
        const sock = connect(Number(new URL(base).port), '127.0.0.1')
        await once(sock, 'connect')
        sock.write('GET /assets/rootfs.img HTTP/1.1\r\nHost: x\r\n\r\n')
        let got = 0
        for await (const chunk of sock) {
          got += (chunk as Buffer).length
          if (got > 256 * 1024) break // leaving the loop destroys the socket: a reset mid-body
        }
      }
      // A request whose body write Node dropped (socket destroyed, response not yet closed) never got here: it hung
      // with its file and dup()ed socket open (writeChunk in static-files.ts; seen under the ASan build's timing).
      const aborted = () => events.events.filter((e) => e.outcome === 'aborted').length
      await eventually(() => aborted() >= 5)
      t.equal(aborted(), 5)
      t.equal(sha(await fetch(`${base}/kernel`)), sha(medium))
      t.equal(openFds(), before, 'every dup()ed socket and file handle was closed')
    })

    t.test('a file that shrinks underneath: the body is cut short, never passed off as whole', async (t) => {
      const path = join(assets, 'shrinks.img')
      await writeFile(path, big)
      const { length, body } = await slowGet(port, '/assets/shrinks.img', 5, () => truncate(path, 1024 * 1024))
      t.equal(length, big.length, 'Content-Length announced the whole file')
      t.ok(body.length < big.length, `the connection closed after ${body.length} bytes`)
      t.match(events.events.at(-1), { outcome: 'aborted', detail: { path: '/assets/shrinks.img' } })
    })
  })
}
