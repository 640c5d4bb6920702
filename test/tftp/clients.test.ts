/**
 * Real TFTP clients (curl, tftp-hpa, atftp with RFC 7440 windowsize, busybox) fetch 1 KiB, 1 MiB and 40 MiB random
 * files from pxebox over loopback; every copy must hash the same as the original.
 */
import t from 'tap'
import { readFile, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { startTftp } from '../../src/tftp/server.js'
import { randomRoot, run, sha256, have, transferLog } from './lib.js'

const files = { 'f1k.bin': 1024, 'f1m.bin': 1 << 20, 'f40m.bin': 40 << 20 }

interface Client {
  name: string
  program: string
  blksize: number
  windowsize: number
  args: (port: number, file: string, out: string) => string[]
}

const clients: Client[] = [
  {
    name: 'curl blksize 512',
    program: 'curl',
    blksize: 512,
    windowsize: 1,
    args: (port, file, out) => ['-sS', '--tftp-blksize', '512', '-o', out, `tftp://127.0.0.1:${port}/${file}`],
  },
  {
    name: 'curl blksize 1468',
    program: 'curl',
    blksize: 1468,
    windowsize: 1,
    args: (port, file, out) => ['-sS', '--tftp-blksize', '1468', '-o', out, `tftp://127.0.0.1:${port}/${file}`],
  },
  {
    // tftp-hpa's client sends no options at all: this covers "no OACK, DATA 1 straight away" at 512 bytes.
    name: 'tftp-hpa',
    program: 'tftp',
    blksize: 512,
    windowsize: 1,
    args: (port, file, out) => ['-m', 'binary', '127.0.0.1', String(port), '-c', 'get', file, out],
  },
  {
    name: 'atftp blksize 1468 windowsize 16',
    program: 'atftp',
    blksize: 1468,
    windowsize: 16,
    args: (port, file, out) => [
      '--option', 'blksize 1468', '--option', 'windowsize 16', '-g', '-r', file, '-l', out, '127.0.0.1', String(port),
    ],
  },
  {
    name: 'busybox blksize 1468',
    program: 'busybox',
    blksize: 1468,
    windowsize: 1,
    args: (port, file, out) => ['tftp', '-g', '-r', file, '-l', out, '-b', '1468', '127.0.0.1', String(port)],
  },
]

t.test('real clients fetch intact files', async (t) => {
  const root = await randomRoot(files)
  const outDir = await randomRoot({})
  const transfers = transferLog()
  const server = await startTftp({ address: '127.0.0.1', port: 0, root: root.dir, onTransfer: transfers.onTransfer, timeouts: { initialMs: 1000 } })
  t.teardown(async () => {
    await server.close()
    await root.cleanup()
    await outDir.cleanup()
  })
  for (const client of clients) {
    const skip = (await have(client.program)) ? false : `${client.program} is not installed (see scripts/deps.sh)`
    await t.test(client.name, { skip }, async (t) => {
      for (const [name] of Object.entries(files)) {
        const out = join(outDir.dir, `${client.program}-${name}`)
        const before = transfers.entries.length
        const res = await run(client.program, client.args(server.port, name, out), 120_000)
        t.equal(res.code, 0, `${name}: exit 0 ${res.stderr}`)
        const got = await readFile(out).catch(() => Buffer.alloc(0))
        t.equal(sha256(got), root.hashes[name], `${name}: SHA-256 matches`)
        await rm(out, { force: true })
        // The server's own record shows what was negotiated (atftp's windowsize in particular).
        const ev = transfers.entries.slice(before).find((e) => e.outcome === 'ok' && e.path === name)
        t.ok(ev, `${name}: server recorded an ok transfer`)
        t.equal(ev?.blksize, client.blksize, `${name}: blksize ${client.blksize}`)
        t.equal(ev?.windowsize, client.windowsize, `${name}: windowsize ${client.windowsize}`)
        t.equal(ev?.bytes, files[name as keyof typeof files], `${name}: byte count`)
      }
    })
  }
})
