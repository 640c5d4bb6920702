/**
 * The PXE file handler (boot/tftp-files.ts): `<mac>/` and `<arch>/` prefixes falling back to the plain file, resolvers
 * tried in order (generated files, mapped folders, the root), and transfers turned into boot events attributed to the
 * prefix's MAC; on its own and behind a real TFTP server.
 */
import t from 'tap'
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import {
  bootTransferEvents,
  createBootFileHandler,
  folderFiles,
  macFromSegment,
  pxeTftp,
  type BootFileResolver,
} from '../../src/boot/tftp-files.js'
import { createTftpFolder, startTftp, type TftpFile } from '../../src/tftp/index.js'
import { memoryEvents } from '../../src/machines/events.js'
import { tftpGet } from '../helpers/tftp-client.js'
import { randomRoot, sha256 } from '../tftp/lib.js'

const peer = { address: '127.0.0.1', port: 1234 }

function content(f: TftpFile | Buffer | null): string | undefined {
  if (f === null || Buffer.isBuffer(f) || !Buffer.isBuffer(f.content)) return undefined
  return f.content.toString()
}

t.test('macFromSegment', async (t) => {
  t.equal(macFromSegment('01-52-54-00-12-34-56'), '52:54:00:12:34:56')
  t.equal(macFromSegment('52:54:00:12:34:56'), '52:54:00:12:34:56')
  t.equal(macFromSegment('52-54-00-AB-CD-EF'), '52:54:00:ab:cd:ef')
  t.equal(macFromSegment('525400abcdef'), '52:54:00:ab:cd:ef')
  t.equal(macFromSegment('52:54-00:12:34:56'), undefined, 'mixed separators')
  t.equal(macFromSegment('x86_64'), undefined)
})

t.test('prefixes fall back to the plain file and tag the MAC', async (t) => {
  const root = await randomRoot({ 'ipxe.efi': 1000 })
  t.teardown(root.cleanup)
  await mkdir(join(root.dir, '52-54-00-12-34-56'))
  await writeFile(join(root.dir, '52-54-00-12-34-56', 'ipxe.efi'), 'per-machine')
  const handler = createBootFileHandler({ resolvers: [folderFiles(createTftpFolder({ root: root.dir }))] })
  const get = (filename: string) => handler({ filename, peer })
  t.match(await get('52:54:00:12:34:99/ipxe.efi'), { name: 'ipxe.efi', size: 1000, tags: { mac: '52:54:00:12:34:99' } })
  const own = await get('52-54-00-12-34-56/ipxe.efi')
  t.match(own, { name: '52-54-00-12-34-56/ipxe.efi', size: 11, tags: { mac: '52:54:00:12:34:56' } }, 'an existing subpath wins')
  const arch = await get('i386/ipxe.efi')
  t.match(arch, { name: 'ipxe.efi' })
  t.notOk(arch && !Buffer.isBuffer(arch) && arch.tags, 'an arch prefix names no machine')
  t.equal(await get('unknown-dir/ipxe.efi'), null, 'only MAC and arch prefixes fall back')
  t.equal(await get('missing'), null)
})

t.test('resolvers are tried in order for each candidate; generated files see the prefixes', async (t) => {
  const root = await randomRoot({ 'boot.ipxe': 10, 'grub.cfg': 10 })
  const assets = await randomRoot({ 'shim.efi': 10 })
  t.teardown(async () => {
    await root.cleanup()
    await assets.cleanup()
  })
  const generated: BootFileResolver = (req) => (req.path === 'boot.ipxe' ? Buffer.from(`${req.mac}|${req.arch}`) : undefined)
  const handler = createBootFileHandler({
    resolvers: [generated, folderFiles(createTftpFolder({ root: assets.dir }), 'assets/'), folderFiles(createTftpFolder({ root: root.dir }))],
  })
  const get = (filename: string) => handler({ filename, peer })
  const f = await get('01-52-54-00-12-34-56/x86_64/boot.ipxe')
  t.equal(content(f), '52:54:00:12:34:56|x86_64', 'the generated file comes before the disk and sees both prefixes')
  t.match(f, { name: 'boot.ipxe', tags: { mac: '52:54:00:12:34:56' } })
  const shim = await get('52-54-00-12-34-56/assets/shim.efi')
  t.match(shim, { name: 'assets/shim.efi', size: 10, tags: { mac: '52:54:00:12:34:56' } }, 'a mapped folder under its prefix')
  t.equal(await get('shim.efi'), null, 'the mapped folder answers only under its prefix')
  t.match(await get('grub.cfg'), { name: 'grub.cfg', size: 10 }, 'then the root')
})

t.test('transfer log entries become boot events; a dropped datagram carries no address', async (t) => {
  const events = memoryEvents()
  const record = bootTransferEvents(events)
  const time = new Date(0).toISOString()
  record({
    time, peer: { address: '10.213.0.5', port: 2000 }, path: 'ipxe.efi', outcome: 'ok', bytes: 5, blksize: 1468, windowsize: 1,
    durationMs: 3, finalAck: false, tags: { mac: '52:54:00:12:34:56' },
  })
  record({ time, peer: { address: '10.213.0.5', port: 2000 }, path: 'x', outcome: 'refused', reason: 'rate limit' })
  record({ time, peer: { address: '10.213.0.6', port: 0 }, outcome: 'dropped', reason: 'source port 0' })
  t.same(events.events, [
    {
      time, kind: 'tftp', step: 'file', outcome: 'ok', ip: '10.213.0.5', mac: '52:54:00:12:34:56',
      detail: { file: 'ipxe.efi', bytes: 5, blksize: 1468, windowsize: 1, duration_ms: 3, final_ack: false },
    },
    { time, kind: 'tftp', step: 'file', outcome: 'refused', ip: '10.213.0.5', detail: { file: 'x', reason: 'rate limit' } },
    { time, kind: 'tftp', step: 'file', outcome: 'dropped', detail: { reason: 'source port 0' } },
  ])
})

t.test('a resolver may tag the step: the local-boot GRUB config is step local-boot (issue 19)', async (t) => {
  const events = memoryEvents()
  const time = new Date(0).toISOString()
  bootTransferEvents(events)({ time, peer: { address: '10.213.0.5', port: 2000 }, path: 'grub/grub.cfg-01-52-54-00-12-34-56', outcome: 'ok', bytes: 9, tags: { mac: '52:54:00:12:34:56', step: 'local-boot' } })
  t.match(events.events, [{ kind: 'tftp', step: 'local-boot', mac: '52:54:00:12:34:56', detail: { file: 'grub/grub.cfg-01-52-54-00-12-34-56' } }])
})

t.test('over the wire: prefixes fall back, generated files are served, the MAC goes into the event', async (t) => {
  const root = await randomRoot({ 'f1k.bin': 1024 })
  await mkdir(join(root.dir, 'x86_64'))
  const own = randomBytes(700)
  await writeFile(join(root.dir, 'x86_64', 'f1k.bin'), own)
  const events = memoryEvents()
  const script = Buffer.from('#!ipxe\nchain http://10.213.0.1/boot.ipxe?mac=${mac:hexhyp}\n')
  const server = await startTftp({
    address: '127.0.0.1',
    port: 0,
    ...pxeTftp({
      root: root.dir,
      events,
      resolvers: [(req) => (req.path === 'autoexec.ipxe' ? Buffer.from(`${script}# ${req.mac ?? 'none'}\n`) : undefined)],
    }),
  })
  t.teardown(async () => {
    await server.close()
    await root.cleanup()
  })
  const waitFor = async (cond: () => boolean) => {
    const deadline = Date.now() + 5000
    while (!cond() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10))
  }
  const cases: Array<[string, string, string | undefined]> = [
    ['01-52-54-00-12-34-56/f1k.bin', root.hashes['f1k.bin']!, '52:54:00:12:34:56'],
    ['52:54:00:12:34:57/f1k.bin', root.hashes['f1k.bin']!, '52:54:00:12:34:57'],
    ['arm64/f1k.bin', root.hashes['f1k.bin']!, undefined],
    ['x86_64/f1k.bin', sha256(own), undefined],
    ['/52-54-00-aa-bb-cc/x86_64/f1k.bin', sha256(own), '52:54:00:aa:bb:cc'],
  ]
  for (const [file, hash, mac] of cases) {
    const before = events.events.length
    const r = await tftpGet({ host: '127.0.0.1', port: server.port, file, blksize: 1468 })
    t.equal(r.sha256, hash, `${file} serves the expected file`)
    await waitFor(() => events.events.length === before + 1)
    t.match(events.events[before], { kind: 'tftp', step: 'file', outcome: 'ok', ip: '127.0.0.1' }, `${file}: a boot event`)
    t.equal(events.events[before]?.mac, mac, `${file}: event MAC ${mac}`)
  }
  const r = await tftpGet({ host: '127.0.0.1', port: server.port, file: 'autoexec.ipxe', tsize: true })
  t.equal(r.data?.toString(), `${script}# none\n`)
  t.equal(r.oack?.tsize, String(script.length + 7))
  const m = await tftpGet({ host: '127.0.0.1', port: server.port, file: '52-54-00-12-34-56/autoexec.ipxe' })
  t.equal(m.data?.toString(), `${script}# 52:54:00:12:34:56\n`)
})
