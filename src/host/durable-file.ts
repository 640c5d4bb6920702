/**
 * Durable state files in data_dir (machine records, the observed address table, lease log compaction, API overlay):
 * written whole with write-temp + fsync + rename + fsync(dir), so after a crash or power cut a file holds either the
 * previous or the new content, never a torn mix (rename(2) is atomic within a file system; the folder fsync makes the
 * rename itself survive). A file that does not parse is moved aside (`<file>.corrupt-<time>`) and reported, never
 * fatal: losing some history is better than a PXE appliance that will not start during a rack power-on.
 */
import { access, mkdir, open, readFile, rename, unlink } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'

/** Atomically replace `file` with `data`, creating its folder if needed. */
export async function writeFileDurably(file: string, data: string | Buffer): Promise<void> {
  await mkdir(dirname(file), { recursive: true })
  const tmp = join(dirname(file), `.${basename(file)}.${process.pid}.tmp`)
  const fh = await open(tmp, 'w', 0o640)
  try {
    await fh.writeFile(data)
    await fh.sync()
  } catch (err) {
    await fh.close()
    await unlink(tmp).catch(() => undefined)
    throw err
  }
  await fh.close()
  await rename(tmp, file)
  await syncDir(dirname(file))
}

/** fsync a folder so a rename or a new file in it survives a crash. */
export async function syncDir(dir: string): Promise<void> {
  const dh = await open(dir, 'r')
  try {
    await dh.sync()
  } finally {
    await dh.close()
  }
}

/** What reading a JSON state file found. */
export type JsonRead = { state: 'missing' } | { state: 'ok'; value: unknown } | { state: 'corrupt'; reason: string; movedTo?: string }

/** Read and parse `file`; a file that does not parse is renamed aside so the next write does not destroy evidence. */
export async function readJsonFile(file: string, now: Date = new Date()): Promise<JsonRead> {
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { state: 'missing' }
    return { state: 'corrupt', reason: `cannot read: ${(err as Error).message}` }
  }
  try {
    return { state: 'ok', value: JSON.parse(text) as unknown }
  } catch (err) {
    const movedTo = await moveCorruptAside(file, now)
    return { state: 'corrupt', reason: (err as Error).message, ...(movedTo === undefined ? {} : { movedTo }) }
  }
}

/**
 * Renames a state file that does not parse to `<file>.corrupt-<time>` (a `-<n>` suffix if that name is taken), so
 * the next save does not destroy the evidence and a second corruption never overwrites the first. Returns the new
 * name, or undefined when the rename failed (the file stays; the caller starts empty either way).
 */
export async function moveCorruptAside(file: string, now: Date = new Date()): Promise<string | undefined> {
  const base = `${file}.corrupt-${now.toISOString().replace(/[:.]/g, '-')}`
  for (let n = 0; n < 100; n++) {
    const name = n === 0 ? base : `${base}-${n}`
    const taken = await access(name).then(
      () => true,
      () => false,
    )
    if (taken) continue
    try {
      await rename(file, name)
      return name
    } catch {
      return undefined
    }
  }
  return undefined
}
