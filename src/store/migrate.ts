/**
 * The one-time move of a data_dir file written by pxebox before the Store (machines/machines.json,
 * boot/groups/*.json, boot/profiles/*.json) into it: the facade that owns the file's type reads and imports it, then
 * calls `retireLegacyFile`, which renames it to `<file>.migrated`. The old file is never deleted: an operator who
 * downgrades, or doubts the import, still has it. A file already imported and renamed is not seen again, so the
 * import runs once; a crash between the import and the rename imports it again on the next start, which the
 * facades make harmless (they write the same documents).
 */
import { access, rename } from 'node:fs/promises'

/** Rename `file` to `<file>.migrated` (`.migrated-<n>` when that name is taken). Returns the new name. */
export async function retireLegacyFile(file: string): Promise<string> {
  for (let n = 0; ; n++) {
    const name = n === 0 ? `${file}.migrated` : `${file}.migrated-${n}`
    const taken = await access(name).then(
      () => true,
      () => false,
    )
    if (taken) continue
    await rename(file, name)
    return name
  }
}
