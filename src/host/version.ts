/** pxebox's version, read once from package.json so `pxebox version`, logs and `GET /` agree. */
import { readFileSync } from 'node:fs'

function readVersion(): string {
  // Compiled code lives in dist/src/, sources in src/: package.json is two or one levels up.
  for (const rel of ['../../package.json', '../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(rel, import.meta.url), 'utf8')) as { name?: string; version?: string }
      if (pkg.name === 'pxebox' && pkg.version) return pkg.version
    } catch {
      // try the next candidate
    }
  }
  return '0.0.0-unknown'
}

/** The running pxebox version. */
export const VERSION: string = readVersion()
