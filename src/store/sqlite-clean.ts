/**
 * The clean-close mark of the embedded store's database (`pxebox.db.clean`): what lets a start skip SQLite's
 * quick_check of a file pxebox itself closed cleanly and nobody wrote since.
 *
 * Why: quick_check reads every page; with 100,000 machine records (~230 MB) it was 0.6-0.9 s of CPU on every start,
 * the largest part of a restart. The check is there for a file damaged outside a clean run of pxebox: a crash or
 * kill mid-write (then SQLite's WAL recovery runs and the pages are checked too), a power cut, a file copied or
 * edited while pxebox was stopped. The mark covers exactly the other case: written after the database closed (its
 * WAL checkpointed and removed), it holds the file's identity, size and modification and change times; a start skips
 * the check only when the file still has all of them and no `-wal` is beside it, and removes the mark before any
 * write, so a run that does not end in a clean close leaves no mark. A write to the file after the mark, by anything,
 * moves its mtime and ctime: the mark is written only once the file system's clock has passed the file's last
 * write (the kernel stamps times at timer-tick granularity, so a write in the same tick would otherwise keep them).
 * What the mark cannot see is media damage below the file system (a bad sector); SQLite reports such pages as
 * SQLITE_CORRUPT when they are read, as it did between starts before.
 */
import { readFileSync, statSync, unlinkSync, writeFileSync } from 'node:fs'

/** Ticks of the file system clock waited for at most while writing the mark (each a few ms at most). */
const MAX_TRIES = 50

interface Mark {
  readonly dev: string
  readonly ino: string
  readonly size: string
  readonly mtimeNs: string
  readonly ctimeNs: string
}

const markFile = (file: string): string => `${file}.clean`

function identity(file: string): Mark | undefined {
  try {
    const s = statSync(file, { bigint: true })
    return { dev: String(s.dev), ino: String(s.ino), size: String(s.size), mtimeNs: String(s.mtimeNs), ctimeNs: String(s.ctimeNs) }
  } catch {
    return undefined
  }
}

const exists = (file: string): boolean => {
  try {
    statSync(file)
    return true
  } catch {
    return false
  }
}

/**
 * Whether `file` is as pxebox last closed it cleanly (see the file comment). Removes the mark either way, before the
 * caller opens the database: a run that is not closed cleanly must not leave one behind.
 */
export function takeCleanMark(file: string): boolean {
  let text: string
  try {
    text = readFileSync(markFile(file), 'utf8')
  } catch {
    return false
  }
  try {
    unlinkSync(markFile(file))
  } catch {
    // A mark that cannot be removed cannot be trusted to go away after this run: check the file.
    return false
  }
  let mark: Partial<Mark>
  try {
    mark = JSON.parse(text) as Partial<Mark>
  } catch {
    return false
  }
  const now = identity(file)
  if (now === undefined || exists(`${file}-wal`)) return false
  return mark.dev === now.dev && mark.ino === now.ino && mark.size === now.size && mark.mtimeNs === now.mtimeNs && mark.ctimeNs === now.ctimeNs
}

/**
 * Mark `file` closed cleanly: call after the last handle closed it (its WAL gone). Writes nothing when the WAL is
 * still there (another handle holds the file) or the clock does not move past the file's last write in time.
 */
export function writeCleanMark(file: string): void {
  const mark = markFile(file)
  try {
    for (let i = 0; i < MAX_TRIES; i++) {
      const before = identity(file)
      if (before === undefined || exists(`${file}-wal`)) return
      writeFileSync(mark, JSON.stringify(before))
      // The mark's own mtime is from the same clock: once it is past the file's, a later write to the file moves it.
      const written = statSync(mark, { bigint: true })
      const after = identity(file)
      if (after !== undefined && after.mtimeNs === before.mtimeNs && after.ctimeNs === before.ctimeNs && written.mtimeNs > BigInt(before.mtimeNs) && written.mtimeNs > BigInt(before.ctimeNs)) return
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1)
    }
    unlinkSync(mark)
  } catch {
    // No mark: the next start runs the check, which is always safe.
    try {
      unlinkSync(mark)
    } catch {
      // Not there.
    }
  }
}
