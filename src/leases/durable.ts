/**
 * Durable small-file writes: write a temporary file, fsync it, rename it over the target, fsync the folder. After a
 * crash the target is either the old or the new content, never a mix (rename(2) is atomic within a file system;
 * the folder fsync makes the rename itself survive a power cut).
 */
import { open, rename, unlink } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'

/** Atomically replaces `file` with `data`. */
export async function writeFileDurably(file: string, data: string | Buffer): Promise<void> {
  const tmp = join(dirname(file), `.${basename(file)}.${process.pid}.tmp`)
  const fh = await open(tmp, 'w', 0o644)
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
