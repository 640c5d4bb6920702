/**
 * Hostile paths over the wire: nothing outside the root is ever served, escapes are refused with ERROR 2 and a log
 * line, and the server keeps serving afterwards.
 */
import t from 'tap'
import { mkdir, symlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { startTftp } from '../../src/tftp/server.js'
import { memoryEvents } from '../../src/machines/events.js'
import { Opcode } from '../../src/tftp/packet.js'
import { UdpPeer, tftpGet } from '../helpers/tftp-client.js'
import { randomRoot, captureLogger, sha256 } from './lib.js'

/** An RRQ built by hand, so a NUL can sit inside what the attacker means as the file name. */
function rawRrq(name: Buffer): Buffer {
  return Buffer.concat([Buffer.from([0, Opcode.RRQ]), name, Buffer.from('\0octet\0')])
}

t.test('traversal attempts are refused', async (t) => {
  const root = await randomRoot({ 'f1k.bin': 1024 })
  const outside = await randomRoot({ 'secret.txt': 64 })
  await mkdir(join(root.dir, 'a'))
  await symlink(join(outside.dir, 'secret.txt'), join(root.dir, 'evil-link'))
  await symlink(outside.dir, join(root.dir, 'dir-link'))
  await symlink('f1k.bin', join(root.dir, 'good-link'))
  await writeFile(join(outside.dir, 'x'), 'outside')
  const events = memoryEvents()
  const capture = captureLogger()
  const server = await startTftp({ address: '127.0.0.1', port: 0, root: root.dir, events, logger: capture.logger })
  const peer = await UdpPeer.open()
  t.teardown(async () => {
    peer.close()
    await server.close()
    await root.cleanup()
    await outside.cleanup()
  })

  // [request name, expected ERROR code, why]
  const table: Array<[string | Buffer, number, string]> = [
    ['../etc/passwd', 2, 'parent directory'],
    ['/etc/passwd', 1, 'leading slashes are stripped, so this names <root>/etc/passwd, which does not exist'],
    ['a/../../x', 2, 'normalizes to ../x'],
    ['..\\x', 2, 'backslash is a separator'],
    ['\\..\\..\\etc\\passwd', 2, 'leading backslash then parents'],
    ['evil-link', 2, 'symlink inside the root pointing outside'],
    ['dir-link/secret.txt', 2, 'directory symlink leading outside'],
    [Buffer.from('../etc/passwd\0.bin', 'latin1'), 4, 'NUL ends the name (RFC 1350): the request is malformed'],
    [Buffer.from('f1k.bin\0../../etc/passwd', 'latin1'), 4, 'NUL: text after the name is not a mode; malformed'],
    ['a', 1, 'a directory is not a file'],
    ['', 1, 'empty name'],
  ]
  for (const [name, code, why] of table) {
    const label = Buffer.isBuffer(name) ? JSON.stringify(name.toString('latin1')) : JSON.stringify(name)
    peer.send(Buffer.isBuffer(name) ? rawRrq(name) : { op: 'rrq', filename: name, mode: 'octet', options: [] }, server.port)
    const got = await peer.next(2000)
    t.match(got?.packet, { op: 'error', code }, `${label}: ERROR ${code} (${why})`)
    t.equal(await peer.next(100), undefined, `${label}: nothing else follows`)
  }
  const refusals = capture.lines.filter((l) => l.msg === 'TFTP request refused')
  t.equal(refusals.length, 6, 'each escape attempt has a warning log line')
  t.ok(refusals.every((l) => l.level === 40 && typeof l.reason === 'string' && typeof l.file === 'string'))
  t.equal(events.events.filter((e) => e.outcome === 'refused').length, 6, 'and a refused event')

  const ok = await tftpGet({ host: '127.0.0.1', port: server.port, file: 'good-link' })
  t.equal(ok.sha256, root.hashes['f1k.bin'], 'a symlink that stays inside the root is served')
  const again = await tftpGet({ host: '127.0.0.1', port: server.port, file: '//a/../f1k.bin' })
  t.equal(again.sha256, sha256(ok.data as Buffer), 'a harmless .. inside the root resolves')
})
