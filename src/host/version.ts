/** pxebox's version, read once from package.json so `pxebox version`, logs and `GET /` agree. */
import { readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

function readVersion(): string {
  // The nearest package.json named pxebox above this file: sources are src/host/, compiled code dist/src/host/, and
  // the Debian package keeps the same layout under /usr/lib/pxebox.
  let dir = dirname(fileURLToPath(import.meta.url))
  for (let i = 0; i < 5; i++) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: string; version?: string }
      if (pkg.name === 'pxebox' && pkg.version) return pkg.version
    } catch {
      // not here: one folder up
    }
    dir = dirname(dir)
  }
  return '0.0.0-unknown'
}

/** The running pxebox version. */
export const VERSION: string = readVersion()
