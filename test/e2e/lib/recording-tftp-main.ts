/**
 * The recording TFTP server process (recording-tftp.ts explains why it exists):
 *   ip netns exec NS node dist/test/e2e/lib/recording-tftp-main.js ADDRESS TABLE.json LOG.jsonl
 * TABLE.json is a RecordingTftpTable; every request and transfer end is appended to LOG.jsonl. Prints `listening`
 * once bound; SIGTERM closes it.
 */
import { appendFileSync, readFileSync, statSync } from 'node:fs'
import { startTftp, type TftpTransferEntry } from '../../../src/tftp/index.js'
import { tableKey, type RecordingTftpEntry, type RecordingTftpTable } from './recording-tftp.js'

async function main(): Promise<void> {
  const [address, tablePath, logPath] = process.argv.slice(2)
  if (address === undefined || tablePath === undefined || logPath === undefined) {
    throw new Error('usage: recording-tftp ADDRESS TABLE.json LOG.jsonl')
  }
  const table = JSON.parse(readFileSync(tablePath, 'utf8')) as RecordingTftpTable
  const started = Date.now()
  const log = (entry: RecordingTftpEntry): void => appendFileSync(logPath, JSON.stringify(entry) + '\n')
  const server = await startTftp({
    address,
    port: 69,
    fileHandler: async ({ filename, peer }) => {
      const key = tableKey(filename)
      const text = table.texts?.[key]
      const path = table.files?.[key]
      const found = text !== undefined || path !== undefined
      log({ kind: 'request', ms: Date.now() - started, peer: peer.address, filename, found })
      if (text !== undefined) return Buffer.from(text, 'utf8')
      if (path !== undefined) return { name: key, size: statSync(path).size, content: { path, size: statSync(path).size } }
      return null
    },
    onTransfer(e: TftpTransferEntry) {
      log({
        kind: 'transfer',
        ms: Date.now() - started,
        peer: e.peer.address,
        file: e.path ?? '',
        outcome: e.outcome,
        ...(e.bytes !== undefined ? { bytes: e.bytes } : {}),
        ...(e.tsizeProbe ? { tsizeProbe: true } : {}),
        ...(e.blksize !== undefined ? { blksize: e.blksize } : {}),
        ...(e.windowsize !== undefined ? { windowsize: e.windowsize } : {}),
        ...(e.durationMs !== undefined ? { durationMs: e.durationMs } : {}),
      })
    },
    // Firmware, shim and GRUB each fetch several files within a second.
    limits: { maxRequestsPerClientPerSecond: 1000 },
  })
  console.log(`listening on ${server.address}:${server.port}`)
  process.once('SIGTERM', () => void server.close())
}

main().catch((err: unknown) => {
  console.error(err)
  process.exitCode = 1
})
