/**
 * The authoritative server's lease store: an append-only log of JSON lines in `<data_dir>/leases.log`, one line per
 * lease change (a grant, a renewal, a release as `expires <= at`); the latest line for a MAC wins.
 *
 * Why a log rather than rewriting a table: a grant costs one small append and one fdatasync, and appends that arrive
 * while an fsync is running are written and synced together (group commit), so a burst of clients costs a few
 * fsyncs, not one each. The server sends its ACK only after the append's fsync resolved, so a crash or `kill -9`
 * at any moment loses no acknowledged lease: either the line is complete on disk, or no ACK went out.
 *
 * Full disk: write(2) may write only part of a batch (tmpfs or ext4 at ENOSPC cut a line to one byte). Every byte is
 * checked: short writes are continued, and a write that fails (ENOSPC, EIO) rejects the whole batch, so no ACK goes
 * out, and the file is truncated back to the last fully written batch, so a torn fragment never glues itself to the
 * next record. If even the truncation fails, the next batch retries it before writing.
 *
 * Recovery: a line is a record only when it ends in a newline and parses with every field valid (a MAC, a dotted quad
 * through the one IPv4 parser in ipv4.ts, finite times). A torn last line (the crash hit mid-write; it was never ACKed)
 * and any corrupt line are reported with the file and byte offset and dropped, never fatal. A corrupt line that
 * contains a record start (`{"mac":`) is resynced there, so a torn fragment left by an older build does not take the
 * complete record appended after it down with it.
 * On open, and when the log grows well past the live table, it is compacted: the live records are written to a temp
 * file, fsynced and renamed over the log (durable.ts), which also removes any torn tail.
 */
import { open, readFile, type FileHandle } from 'node:fs/promises'
import { silentLogger, type Logger } from '../host/log.js'
import { writeFileDurably } from '../host/durable-file.js'
import { ipToInt } from '../host/ipv4.js'

/** One lease: `mac` holds `ip` until `expires` (ms since the epoch). */
export interface LeaseRecord {
  mac: string
  ip: string
  expires: number
  /** When it was granted or changed (ms). */
  at: number
  uuid?: string
  hostname?: string
}

/** A record or tail the loader dropped. */
export interface LeaseLogProblem {
  offset: number
  reason: string
}

/** An open lease log. */
export interface LeaseLog {
  readonly file: string
  /** The latest record per MAC, as loaded and as appended since. */
  readonly leases: ReadonlyMap<string, LeaseRecord>
  /** What the loader dropped at open. */
  readonly problems: readonly LeaseLogProblem[]
  /**
   * Appends and fsyncs; resolves only when every byte of the record is durable, rejects (the caller sends no ACK)
   * when any write or the fsync failed, e.g. ENOSPC.
   */
  append(record: LeaseRecord): Promise<void>
  close(): Promise<void>
}

/** Longest hostname (RFC 1035: 255 octets) and UUID text a record may carry. */
const MAX_TEXT = 255

const optionalText = (v: unknown): boolean => v === undefined || (typeof v === 'string' && v.length <= MAX_TEXT)

/**
 * Every field checked: a hand-edited or corrupted line (or a store document) with ip 999.999.999.999 must not reach
 * the pool.
 */
export const isLeaseRecord = (v: unknown): v is LeaseRecord => {
  const r = v as LeaseRecord
  return (
    typeof r === 'object' && r !== null &&
    typeof r.mac === 'string' && /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/.test(r.mac) &&
    typeof r.ip === 'string' && ipToInt(r.ip) !== undefined &&
    Number.isSafeInteger(r.expires) && r.expires >= 0 && Number.isSafeInteger(r.at) && r.at >= 0 &&
    optionalText(r.uuid) && optionalText(r.hostname)
  )
}

/** JSON.stringify writes `mac` first: where a record starts. */
const RECORD_START = '{"mac":'

const parseRecord = (text: string): LeaseRecord | undefined => {
  try {
    const value: unknown = JSON.parse(text)
    return isLeaseRecord(value) ? value : undefined
  } catch {
    return undefined
  }
}

/** Reads a log's text into the latest record per MAC, listing what it had to drop. Pure, for tests and tools. */
export function parseLeaseLog(buf: Buffer): { leases: Map<string, LeaseRecord>; problems: LeaseLogProblem[] } {
  const leases = new Map<string, LeaseRecord>()
  const problems: LeaseLogProblem[] = []
  let pos = 0
  while (pos < buf.length) {
    const nl = buf.indexOf(10, pos)
    if (nl === -1) {
      problems.push({ offset: pos, reason: `incomplete record (${buf.length - pos} bytes without a newline at the end: a write cut short)` })
      break
    }
    const line = buf.toString('utf8', pos, nl)
    if (line.trim() !== '') {
      const record = parseRecord(line)
      if (record !== undefined) leases.set(record.mac, record)
      else {
        problems.push({ offset: pos, reason: 'corrupt record (not a valid lease JSON line)' })
        // Resync: a torn fragment followed by a whole record on the same line; keep the record.
        const start = line.lastIndexOf(RECORD_START)
        const tail = start > 0 ? parseRecord(line.slice(start)) : undefined
        if (tail !== undefined) leases.set(tail.mac, tail)
      }
    }
    pos = nl + 1
  }
  return { leases, problems }
}

const line = (r: LeaseRecord): string => JSON.stringify(r) + '\n'

/** Opens (creating if missing) and recovers the log at `file`. */
export async function openLeaseLog(file: string, opts: { logger?: Logger; compactAfter?: number } = {}): Promise<LeaseLog> {
  const log = (opts.logger ?? silentLogger).child({ proto: 'leases', file })
  let buf: Buffer
  try {
    buf = await readFile(file)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
    buf = Buffer.alloc(0)
  }
  const { leases, problems } = parseLeaseLog(buf)
  for (const p of problems) log.warn({ file, offset: p.offset }, `lease log ${file}: ${p.reason} at byte offset ${p.offset}; dropped`)
  if (leases.size > 0 || buf.length > 0) log.info({ leases: leases.size }, 'lease log loaded')

  const compact = async (): Promise<void> => {
    await writeFileDurably(file, [...leases.values()].map(line).join(''))
  }
  await compact()
  let fh: FileHandle = await open(file, 'a')
  /** Bytes of the log known to be whole records: a failed batch is truncated back to here. */
  let goodSize = (await fh.stat()).size
  let torn = false
  let appended = 0
  const compactAfter = opts.compactAfter ?? 10_000

  /** Writes every byte of `data` (write(2) may write less than asked: continue), then fdatasync. */
  const writeAll = async (data: Buffer): Promise<void> => {
    if (torn) {
      await fh.truncate(goodSize)
      torn = false
    }
    let done = 0
    try {
      while (done < data.length) {
        const { bytesWritten } = await fh.write(data, done, data.length - done)
        if (bytesWritten <= 0) throw Object.assign(new Error(`lease log ${file}: write returned ${bytesWritten}`), { code: 'EIO' })
        done += bytesWritten
      }
      await fh.datasync()
      goodSize += data.length
    } catch (err) {
      torn = done > 0 || torn
      if (torn) {
        try {
          await fh.truncate(goodSize)
          torn = false
        } catch {
          // Retried before the next batch (truncating frees space, so on a full disk it normally succeeds).
        }
      }
      throw err
    }
  }

  let queue: { record: LeaseRecord; resolve: () => void; reject: (err: Error) => void }[] = []
  let flushing = false
  let closed = false
  const flush = async (): Promise<void> => {
    flushing = true
    while (queue.length > 0) {
      const batch = queue
      queue = []
      try {
        await writeAll(Buffer.from(batch.map((b) => line(b.record)).join('')))
        // Only durable records enter the table: a compaction must never write a lease that was never ACKed.
        for (const b of batch) leases.set(b.record.mac, b.record)
        for (const b of batch) b.resolve()
      } catch (err) {
        for (const b of batch) b.reject(err as Error)
        continue
      }
      appended += batch.length
      if (appended > compactAfter + 4 * leases.size) {
        appended = 0
        try {
          await fh.close()
          await compact()
        } catch (err) {
          log.warn({ err }, 'lease log compaction failed; appending to the old log')
        }
        try {
          fh = await open(file, 'a')
          goodSize = (await fh.stat()).size
        } catch (err) {
          // The closed handle makes every later append reject: no ACK without a durable lease.
          log.error({ err }, `cannot reopen the lease log ${file}; leases cannot be granted`)
        }
      }
    }
    flushing = false
  }

  return {
    file,
    leases,
    problems,
    append(record) {
      if (closed) return Promise.reject(new Error('lease log is closed'))
      return new Promise<void>((resolve, reject) => {
        queue.push({ record, resolve, reject })
        if (!flushing) void flush()
      })
    },
    async close() {
      closed = true
      while (flushing || queue.length > 0) await new Promise((r) => setTimeout(r, 5))
      await fh.close()
    },
  }
}
