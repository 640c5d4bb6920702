/**
 * What the TFTP server asks of whoever serves its files: a handler from a request (file name and client address) to a
 * file, a not-found or a refusal, and how RRQ file names become relative paths. Which file a name means (folders,
 * generated files, per-machine prefixes) is the handler's business, not the server's.
 */
import { posix } from 'node:path'

/** Who asked for what, as the server saw it. */
export interface TftpRequestInfo {
  /** The file name as sent in the RRQ (latin1-decoded bytes). */
  filename: string
  peer: { address: string; port: number }
}

/** A file on disk, streamed with positional reads because it is too large to keep in memory. */
export interface DiskContent {
  path: string
  size: number
}

/** A file ready to serve. */
export interface TftpFile {
  /** Normalized name relative to the root, for logs and events. */
  name: string
  size: number
  /** Whole content in memory, or a file to stream. */
  content: Buffer | DiskContent
  /**
   * Fields the handler attaches to the transfer: handed back in its TftpTransferEntry (server.ts), so the caller
   * can attribute the transfer (the boot layer puts the MAC of a `<mac>/` prefix here) without the server knowing.
   */
  tags?: Readonly<Record<string, string>>
}

/**
 * Resolves a request. `null` means not found (ERROR 1); throwing TftpAccessError means refused (ERROR 2); a Buffer
 * is served as-is (a virtual file).
 */
export type TftpFileHandler = (request: TftpRequestInfo) => Promise<TftpFile | Buffer | null>

/** A request refused for safety (path escapes the root, NUL in the name): ERROR 2. */
export class TftpAccessError extends Error {
  readonly code = 'ERR_TFTP_ACCESS'
  constructor(message: string) {
    super(message)
    this.name = 'TftpAccessError'
  }
}

/**
 * Turns an RRQ file name into a path relative to the root, or throws TftpAccessError. Leading slashes are stripped
 * (firmware commonly asks for `/pxelinux.0` meaning the root), backslashes count as separators (Windows-built boot
 * files ask for `boot\x86\wdsnbp.com`), and anything that normalizes outside the root is refused.
 */
export function normalizeRequestPath(filename: string): string {
  // The codec keeps raw bytes as latin1; file names on disk are UTF-8.
  const name = Buffer.from(filename, 'latin1').toString('utf8')
  if (name.includes('\0')) throw new TftpAccessError('file name contains NUL')
  const slashed = name.replace(/\\/g, '/').replace(/^\/+/, '')
  const normalized = posix.normalize(slashed)
  if (normalized === '..' || normalized.startsWith('../') || posix.isAbsolute(normalized)) {
    throw new TftpAccessError('file name escapes the root')
  }
  return normalized === '.' ? '' : normalized.replace(/\/+$/, '')
}
