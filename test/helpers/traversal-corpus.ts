/**
 * One traversal corpus for every place that serves files under a root: host/confine.ts directly
 * (test/host/confine.test.ts), TFTP over the wire (test/tftp/traversal.test.ts) and HTTP over the wire
 * (test/http/assets.test.ts). Each entry is the relative path a protocol hands to the confinement after undoing its
 * own wire syntax; each protocol test sends it in its wire forms (HTTP: as-is and percent-encoded; TFTP: slashes and
 * backslashes) and keeps a few entries only its syntax can express.
 */
import { mkdir, symlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'

/** What a server must do with an entry: serve the file, answer not-found, or refuse (TFTP ERROR 2, HTTP 403). */
export type TraversalOutcome = 'served' | 'not-found' | 'refused'

/** One request path and its required outcome. */
export interface TraversalCase {
  path: string
  outcome: TraversalOutcome
  why: string
}

/** The secret outside the root: no response body may contain it. */
export const SECRET = 'top secret, outside the root\n'
/** The content of `inside.bin`, which `inside-link.bin` also names. */
export const INSIDE = 'inside the root\n'

/**
 * Builds the tree the corpus is written against: `<dir>/root` (the served folder) and `<dir>/outside`. Returns the
 * root. Layout: root/inside.bin, root/sub/ (a folder), root/inside-link.bin -> inside.bin, root/escape.txt ->
 * outside/secret.txt, root/escdir -> outside; outside/secret.txt holds SECRET.
 */
export async function buildTraversalTree(dir: string): Promise<string> {
  const root = join(dir, 'root')
  const outside = join(dir, 'outside')
  await mkdir(join(root, 'sub'), { recursive: true })
  await mkdir(outside, { recursive: true })
  await writeFile(join(outside, 'secret.txt'), SECRET)
  await writeFile(join(root, 'inside.bin'), INSIDE)
  await symlink('inside.bin', join(root, 'inside-link.bin'))
  await symlink(join(outside, 'secret.txt'), join(root, 'escape.txt'))
  await symlink(outside, join(root, 'escdir'))
  return root
}

/** The corpus. Every protocol must give these outcomes for these paths (in each of its wire forms). */
export const TRAVERSAL_CORPUS: readonly TraversalCase[] = [
  { path: '../outside/secret.txt', outcome: 'refused', why: 'parent of the root' },
  { path: 'sub/../../outside/secret.txt', outcome: 'refused', why: 'normalizes to ../outside' },
  { path: '../../../../../../etc/passwd', outcome: 'refused', why: 'many parents' },
  { path: 'escape.txt', outcome: 'refused', why: 'symlink inside the root pointing outside' },
  { path: 'escdir/secret.txt', outcome: 'refused', why: 'directory symlink leading outside' },
  { path: 'inside.bin\0../outside/secret.txt', outcome: 'refused', why: 'NUL inside the name' },
  { path: 'inside.bin', outcome: 'served', why: 'a plain file' },
  { path: 'inside-link.bin', outcome: 'served', why: 'a symlink that stays inside the root' },
  { path: 'sub', outcome: 'not-found', why: 'a folder is not a file' },
  { path: '', outcome: 'not-found', why: 'the root itself' },
  { path: 'missing.bin', outcome: 'not-found', why: 'no such file' },
  { path: 'inside.bin/x', outcome: 'not-found', why: 'a file used as a folder (ENOTDIR)' },
]
