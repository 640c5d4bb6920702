/**
 * Reading the files an operator names in config: config.yaml itself, api.token_file, the Matchbox directory's JSON
 * and the Ignition/Butane/generic templates. One rule for all of them, because each was once pointed at the wrong
 * thing: only a regular file is read, and only up to a stated size.
 * - `config.yaml -> /dev/zero` read until the OOM killer came (a character device never ends);
 * - a FIFO made open() block forever, on the SIGHUP path, and SIGTERM then went unanswered.
 * So the file is opened with O_NONBLOCK (open() on a FIFO with no writer returns at once instead of waiting for
 * one), fstat'ed on the open descriptor (no race with a rename between a stat and the open), refused unless it is
 * a regular file, and read with a cap that also holds when the size fstat reports is wrong (files in /proc say 0).
 */
import { closeSync, constants, fstatSync, openSync, readSync, type Stats } from 'node:fs'
import { open } from 'node:fs/promises'

/** The largest config.yaml read: far above any real one (10,000 groups are ~1 MiB), far below what hurts. */
export const MAX_CONFIG_BYTES = 16 * 1024 * 1024

/** Why a file named in config was not read; `code` is an errno code (ENOENT, EACCES...) or one of ours. */
export class ConfigFileError extends Error {
  constructor(
    readonly code: 'ENOTREG' | 'ETOOBIG' | string,
    message: string,
  ) {
    super(message)
    this.name = 'ConfigFileError'
  }
}

const OPEN_FLAGS = constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY

/** What a non-regular file is, in words an operator recognises. */
function kindOf(st: Stats): string {
  if (st.isDirectory()) return 'a folder'
  if (st.isFIFO()) return 'a FIFO (named pipe)'
  if (st.isCharacterDevice()) return 'a character device'
  if (st.isBlockDevice()) return 'a block device'
  if (st.isSocket()) return 'a socket'
  return 'not a regular file'
}

function checkStat(st: Stats, maxBytes: number): void {
  if (!st.isFile()) throw new ConfigFileError('ENOTREG', `not a regular file: it is ${kindOf(st)}`)
  if (st.size > maxBytes) throw new ConfigFileError('ETOOBIG', tooBig(maxBytes, `is ${st.size} bytes`))
}

const tooBig = (maxBytes: number, what: string): string => `too large: it ${what}, the limit is ${maxBytes} bytes (${maxBytes / 1024 / 1024} MiB)`

function asConfigFileError(err: unknown): ConfigFileError {
  if (err instanceof ConfigFileError) return err
  const e = err as NodeJS.ErrnoException
  const reason = e.code === 'ENOENT' ? 'file not found' : e.code === 'EACCES' ? 'permission denied' : e.message
  return new ConfigFileError(e.code ?? 'EIO', reason)
}

/** Read a regular file of at most `maxBytes` as UTF-8, synchronously (config.yaml at start and on reload). */
export function readConfigFileSync(path: string, maxBytes: number = MAX_CONFIG_BYTES): string {
  let fd: number | undefined
  try {
    fd = openSync(path, OPEN_FLAGS)
    const st = fstatSync(fd)
    checkStat(st, maxBytes)
    const chunks: Buffer[] = []
    let total = 0
    for (;;) {
      // First read sized to the file (one byte more, to see it end): a 64 KiB buffer per file made 100,000 small
      // Matchbox group files allocate 6.4 GB, and collecting it was a fifth of the load (issue 16).
      const want = total === 0 ? Math.max(st.size + 1, 1024) : 64 * 1024
      const chunk = Buffer.allocUnsafe(Math.min(want, maxBytes + 1 - total))
      const n = readSync(fd, chunk, 0, chunk.length, null)
      if (n === 0) break
      total += n
      if (total > maxBytes) throw new ConfigFileError('ETOOBIG', tooBig(maxBytes, 'has more'))
      chunks.push(chunk.subarray(0, n))
      // A regular file that gave exactly the size fstat reported, short of what was asked, has ended. Asking again
      // only to be told so cost a fifth of the system calls of reading 100,000 Matchbox group files, and the 64 KiB
      // buffer allocated for that last read (6.4 GB over 100,000 files) a large part of the collector's time (issue
      // 16). A file whose size says nothing (/proc: 0), or one that grew since fstat, is read on to its end.
      if (n < chunk.length && total === st.size) break
    }
    return chunks.length === 1 ? chunks[0]!.toString('utf8') : Buffer.concat(chunks, total).toString('utf8')
  } catch (err) {
    throw asConfigFileError(err)
  } finally {
    if (fd !== undefined) closeSync(fd)
  }
}

/** Read a regular file of at most `maxBytes`, as bytes; the same rule as readConfigFileSync, without blocking. */
export async function readConfigFileBytes(path: string, maxBytes: number = MAX_CONFIG_BYTES): Promise<Buffer> {
  let handle
  try {
    handle = await open(path, OPEN_FLAGS)
    checkStat(await handle.stat(), maxBytes)
    const chunks: Buffer[] = []
    let total = 0
    for (;;) {
      const chunk = Buffer.allocUnsafe(Math.min(64 * 1024, maxBytes + 1 - total))
      const { bytesRead } = await handle.read(chunk, 0, chunk.length, null)
      if (bytesRead === 0) break
      total += bytesRead
      if (total > maxBytes) throw new ConfigFileError('ETOOBIG', tooBig(maxBytes, 'has more'))
      chunks.push(chunk.subarray(0, bytesRead))
    }
    return Buffer.concat(chunks, total)
  } catch (err) {
    throw asConfigFileError(err)
  } finally {
    await handle?.close()
  }
}

/** readConfigFileBytes as UTF-8 text (templates, Matchbox JSON). */
export async function readConfigFile(path: string, maxBytes: number = MAX_CONFIG_BYTES): Promise<string> {
  return (await readConfigFileBytes(path, maxBytes)).toString('utf8')
}
