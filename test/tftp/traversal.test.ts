/**
 * Hostile paths over the wire: the shared traversal corpus (test/helpers/traversal-corpus.ts, also run against
 * host/confine.ts and HTTP) in each RRQ form; escapes are refused with ERROR 2, a log line and an event, and the server
 * keeps serving afterwards.
 */
import t from 'tap'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startTftp } from '../../src/tftp/server.js'
import { Opcode } from '../../src/tftp/packet.js'
import { UdpPeer, tftpGet } from '../helpers/tftp-client.js'
import { randomRoot, captureLogger, transferLog } from './lib.js'
import { buildTraversalTree, INSIDE, TRAVERSAL_CORPUS } from '../helpers/traversal-corpus.js'

/** An RRQ built by hand, so a NUL can sit inside what the attacker means as the file name. */
function rawRrq(name: Buffer): Buffer {
  return Buffer.concat([Buffer.from([0, Opcode.RRQ]), name, Buffer.from('\0octet\0')])
}

/** The RRQ forms of a corpus path: as written, with backslashes (Windows-built boot files), with leading slashes. */
function rrqForms(path: string): string[] {
  return [path, path.replace(/\//g, '\\'), `//${path}`]
}

t.test('the shared traversal corpus is answered as it must be, in every RRQ form', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'pxebox-tftptrav-'))
  const root = await buildTraversalTree(dir)
  const transfers = transferLog()
  const capture = captureLogger()
  // The corpus is hundreds of refusals from one client: a gate wide enough for all of them, so each line is checked
  // (the default gate, 10 lines a minute, is hardening.test.ts's subject).
  const server = await startTftp({ address: '127.0.0.1', port: 0, root, onTransfer: transfers.onTransfer, logger: capture.logger, refusalLog: { maxPerWindow: 10_000 } })
  const peer = await UdpPeer.open()
  t.teardown(async () => {
    peer.close()
    await server.close()
    await rm(dir, { recursive: true, force: true })
  })

  let refused = 0
  for (const c of TRAVERSAL_CORPUS) {
    for (const name of rrqForms(c.path)) {
      const label = `${JSON.stringify(name)} (${c.why})`
      if (c.outcome === 'served') {
        const got = await tftpGet({ host: '127.0.0.1', port: server.port, file: name })
        t.equal(got.data?.toString(), INSIDE, `${label}: served`)
        continue
      }
      // NUL ends the file name (RFC 1350): whatever follows is not a mode, so the request is malformed (ERROR 4).
      const code = name.includes('\0') ? 4 : c.outcome === 'refused' ? 2 : 1
      if (code === 2) refused++
      peer.send(rawRrq(Buffer.from(name, 'utf8')), server.port)
      const got = await peer.next(2000)
      t.match(got?.packet, { op: 'error', code }, `${label}: ERROR ${code}`)
      t.equal(await peer.next(100), undefined, `${label}: nothing else follows`)
    }
  }
  const refusals = capture.lines.filter((l) => l.msg === 'TFTP request refused')
  t.equal(refusals.length, refused, 'each escape attempt has a warning log line')
  t.ok(refusals.every((l) => l.level === 40 && typeof l.reason === 'string' && typeof l.file === 'string'))
  t.equal(transfers.entries.filter((e) => e.outcome === 'refused').length, refused, 'and a refused event')
})

t.test('TFTP-only forms: what only RRQ syntax can express', async (t) => {
  const root = await randomRoot({ 'f1k.bin': 1024 })
  t.teardown(async () => {
    await server.close()
    await root.cleanup()
  })
  const server = await startTftp({ address: '127.0.0.1', port: 0, root: root.dir })
  const peer = await UdpPeer.open()
  t.teardown(() => peer.close())
  peer.send({ op: 'rrq', filename: '/etc/passwd', mode: 'octet', options: [] }, server.port)
  t.match((await peer.next(2000))?.packet, { op: 'error', code: 1 }, 'leading slashes are stripped, so /etc/passwd names <root>/etc/passwd, which does not exist')
  const again = await tftpGet({ host: '127.0.0.1', port: server.port, file: '//a/../f1k.bin' })
  t.equal(again.sha256, root.hashes['f1k.bin'], 'a harmless .. inside the root resolves (TFTP normalizes; HTTP refuses dot segments)')
})
