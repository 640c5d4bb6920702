/**
 * The authoritative server's lease store: an append-only log of JSON lines in `<data_dir>/leases.log`, one line per
 * lease change (a grant, a renewal, a release as `expires <= at`); the latest line for a MAC wins.
 *
 * Why a log rather than rewriting a table: a grant costs one small append and one fdatasync, and appends that arrive
 * while an fsync is running are written and synced together (group commit), so a burst of clients costs a few
 * fsyncs, not one each. The server sends its ACK only after the append's fsync resolved, so a crash or `kill -9`
 * at any moment loses no acknowledged lease: either the line is complete on disk, or no ACK went out.
 *
 * Recovery: a line is a record only when it ends in a newline and parses. A torn last line (the crash hit mid-write;
 * it was never ACKed) and any corrupt line are reported with the file and byte offset and dropped, never fatal.
 * On open, and when the log grows well past the live table, it is compacted: the live records are written to a temp
 * file, fsynced and renamed over the log (durable.ts), which also removes any torn tail.
 */
import { open, readFile, type FileHandle } from 'node:fs/promises'
import { silentLogger, type Logger } from '../log.js'
import { writeFileDurably } from '../durable-file.js'

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
  /** Appends and fsyncs; resolves only when the record is durable. */
  append(record: LeaseRecord): Promise<void>
  close(): Promise<void>
}

const isRecord = (v: unknown): v is LeaseRecord => {
  const r = v as LeaseRecord
  return (
    typeof r === 'object' && r !== null &&
    typeof r.mac === 'string' && /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/.test(r.mac) &&
    typeof r.ip === 'string' && /^\d{1,3}(\.\d{1,3}){3}$/.test(r.ip) &&
    Number.isFinite(r.expires) && Number.isFinite(r.at)
  )
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
      let value: unknown
      try {
        value = JSON.parse(line)
      } catch {
        value = undefined
      }
      if (isRecord(value)) leases.set(value.mac, value)
      else problems.push({ offset: pos, reason: 'corrupt record (not a lease JSON line)' })
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
  let appended = 0
  const compactAfter = opts.compactAfter ?? 10_000

  let queue: { text: string; resolve: () => void; reject: (err: Error) => void }[] = []
  let flushing = false
  let closed = false
  const flush = async (): Promise<void> => {
    flushing = true
    while (queue.length > 0) {
      const batch = queue
      queue = []
      try {
        await fh.write(batch.map((b) => b.text).join(''))
        await fh.datasync()
        for (const b of batch) b.resolve()
      } catch (err) {
        for (const b of batch) b.reject(err as Error)
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
        fh = await open(file, 'a')
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
      leases.set(record.mac, record)
      return new Promise<void>((resolve, reject) => {
        queue.push({ text: line(record), resolve, reject })
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
