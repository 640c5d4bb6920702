/**
 * Many small files of one folder read at once: a Matchbox folder's 100,000 group files (issue 16). Through Node each
 * file was four system calls on the event loop (open, fstat, read, close), each building a Stats object or an
 * exception: ~2.5 s of a 100,000-group start. The native addon (native/readfiles.c) reads a batch on a libuv pool
 * thread, relative to one directory descriptor, and answers once; the caller parses one batch while the next is read.
 * The rule is read-file.ts's (a regular file only, opened without blocking, at most `maxBytes`); a file the addon did
 * not read is read again by readConfigFileSync, whose error (or text, if it changed meanwhile) is the answer, so every
 * message is the one a single read gives. Without the addon every file is read by readConfigFileSync.
 */
import { readdir } from 'node:fs/promises'
import { loadNative, type NativeLoad } from './native.js'
import { ConfigFileError, readConfigFileSync } from './read-file.js'

/** Reads batches of files of one folder; see the file comment. */
export interface FileBatchReader {
  /**
   * Files per batch the caller should ask for: large with the addon (one pool round trip per batch), small without
   * it (the files are then read synchronously on the loop, and a batch is the caller's slice).
   */
  readonly batch: number
  /** Each name's text, or why it was not read (a ConfigFileError as readConfigFileSync throws it). Never rejects. */
  read(dir: string, names: readonly string[], maxBytes: number): Promise<(string | ConfigFileError)[]>
}

/** Files per native batch: ~2-5 ms of a pool thread each, and 100,000 files in ~400 round trips. */
const NATIVE_BATCH = 256
/** Files per batch without the addon: read on the loop, so about one 4 ms slice of work. */
const FALLBACK_BATCH = 16

function readOneSync(path: string, maxBytes: number): string | ConfigFileError {
  try {
    return readConfigFileSync(path, maxBytes)
  } catch (err) {
    return err as ConfigFileError // readConfigFileSync throws nothing else
  }
}

function readAllSync(dir: string, names: readonly string[], maxBytes: number): (string | ConfigFileError)[] {
  return names.map((n) => readOneSync(`${dir}/${n}`, maxBytes))
}

/** A reader over the native addon when it has readFilesAt, else over readConfigFileSync. */
export function fileBatchReader(native: NativeLoad = loadNative()): FileBatchReader {
  const addon = native.addon
  if (addon?.readFilesAt === undefined) return { batch: FALLBACK_BATCH, read: async (dir, names, max) => readAllSync(dir, names, max) }
  const readFilesAt = addon.readFilesAt.bind(addon)
  return {
    batch: NATIVE_BATCH,
    async read(dir, names, maxBytes) {
      let data: Buffer
      let results: Float64Array
      try {
        ;[data, results] = await readFilesAt(dir, names as string[], maxBytes)
      } catch {
        // ENOMEM for the batch, or a name Node would refuse too (a NUL byte): each file alone, with its own error.
        return readAllSync(dir, names, maxBytes)
      }
      const out = new Array<string | ConfigFileError>(names.length)
      for (let i = 0; i < names.length; i++) {
        const start = results[2 * i]!
        out[i] = start >= 0 ? data.toString('utf8', start, start + results[2 * i + 1]!) : readOneSync(`${dir}/${names[i]}`, maxBytes)
      }
      return out
    },
  }
}

/**
 * The names in a folder (not `.` and `..`) as UTF-8, each followed by a NUL byte, in the folder's own order. With the
 * addon the loop gets one Buffer, which the caller decodes name by name in slices; Node's readdir builds the 100,000
 * names' array in one piece on the loop (70-230 ms of a reload's longest stall, issue 16). Decoding each name on its
 * own (Buffer#toString) gives a flat string: names cut from one decoded string are V8 sliced strings, which compared
 * 3x slower when the names are sorted (260-430 ms of CPU for 100,000, against 70-160 ms). Rejects as fs.readdir does
 * (ENOENT...): on any failure of the addon the folder is listed by readdir, whose error is then the answer.
 */
export async function listFolder(dir: string, native: NativeLoad = loadNative()): Promise<Buffer> {
  const listDir = native.addon?.listDir
  if (listDir !== undefined) {
    try {
      return await listDir.call(native.addon, dir)
    } catch {
      // fall through: readdir's error (or its answer, if the folder changed meanwhile)
    }
  }
  const names = await readdir(dir)
  return Buffer.from(names.length === 0 ? '' : `${names.join('\0')}\0`, 'utf8')
}
