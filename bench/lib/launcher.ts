/** How the benches start the daemon as the Debian package does. */
import { readFileSync } from 'node:fs'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'

const here = dirname(fileURLToPath(import.meta.url))

/** The Node flags the Debian package's launcher gives the daemon (`exec /usr/bin/node FLAGS main.js`). */
export function launcherFlags(): string {
  const launcher = readFileSync(join(here, '..', '..', '..', 'debian', 'pxebox'), 'utf8')
  return /^exec \S*node((?: --\S+)*) /m.exec(launcher)?.[1]?.trim() ?? ''
}
