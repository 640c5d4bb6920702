/**
 * Shared pieces for the TFTP tests: random files in a temp dir, hashing, running a client binary with a deadline.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createHash, randomBytes } from 'node:crypto'
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { pino as pinoLogger } from 'pino'
import type { TftpTransferEntry } from '../../src/tftp/server.js'

const execFileP = promisify(execFile)

/** SHA-256 hex of a buffer. */
export function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex')
}

/** A temp root with random files of the given sizes; returns their hashes and a cleanup. */
export async function randomRoot(sizes: Record<string, number>): Promise<{
  dir: string
  hashes: Record<string, string>
  cleanup: () => Promise<void>
}> {
  const dir = await mkdtemp(join(tmpdir(), 'pxebox-tftp-'))
  const hashes: Record<string, string> = {}
  for (const [name, size] of Object.entries(sizes)) {
    const data = randomBytes(size)
    hashes[name] = sha256(data)
    await writeFile(join(dir, name), data)
  }
  return { dir, hashes, cleanup: () => rm(dir, { recursive: true, force: true }) }
}

/** Runs a program; resolves stdout/stderr/exit code, never rejects on a non-zero exit. */
export async function run(
  file: string,
  args: string[],
  timeoutMs = 60_000,
): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await execFileP(file, args, { timeout: timeoutMs, maxBuffer: 16 << 20 })
    return { code: 0, stdout, stderr }
  } catch (err) {
    const e = err as { code?: number | string; stdout?: string; stderr?: string; message: string }
    return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: `${e.stderr ?? ''}${e.message}` }
  }
}

/** Whether a program is on PATH. */
export async function have(program: string): Promise<boolean> {
  return (await run('sh', ['-c', `command -v ${program}`])).code === 0
}

/**
 * Sends `payload` in one UDP datagram from source port 0 to `host:port`, as a hostile client spoofing it would: a raw
 * socket (python3, root) writes the UDP header itself, since no UDP socket can send from port 0. With `netns`, from
 * inside that namespace.
 */
export async function sendFromPortZero(host: string, port: number, payload: Buffer, netns?: string): Promise<void> {
  const script = [
    'import socket, struct, sys',
    'host, port, data = sys.argv[1], int(sys.argv[2]), bytes.fromhex(sys.argv[3])',
    's = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_UDP)',
    // Source port 0, destination, length, checksum 0 (none, RFC 768); the kernel adds the IP header.
    "s.sendto(struct.pack('!HHHH', 0, port, 8 + len(data), 0) + data, (host, 0))",
  ].join('\n')
  const argv = ['python3', '-c', script, host, String(port), payload.toString('hex')]
  const r = netns === undefined ? await run(argv[0]!, argv.slice(1)) : await run('ip', ['netns', 'exec', netns, ...argv])
  if (r.code !== 0) throw new Error(`raw send failed: ${r.stderr}`)
}

/** A pino logger that keeps every line (trace and up) in memory. */
export function captureLogger(): { logger: import('pino').Logger; lines: Array<Record<string, unknown> & { level: number; msg: string }> } {
  const lines: Array<Record<string, unknown> & { level: number; msg: string }> = []
  const logger = pinoLogger({ level: 'trace' }, { write: (s: string) => void lines.push(JSON.parse(s)) })
  return { logger, lines }
}

/** A transfer log that keeps every entry, for startTftp's onTransfer. */
export function transferLog(): { entries: TftpTransferEntry[]; onTransfer: (entry: TftpTransferEntry) => void } {
  const entries: TftpTransferEntry[] = []
  return { entries, onTransfer: (entry) => void entries.push(entry) }
}
