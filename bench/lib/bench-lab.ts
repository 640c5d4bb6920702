/**
 * What every namespace bench sets up the same way: its child processes are SIGKILLed and its network namespaces
 * deleted when it exits, however it exits (done, thrown, Ctrl-C, SIGTERM), so an aborted run leaves nothing behind
 * to collide with the next; and a wait for a server's ready line in its log.
 */
import { execFileSync, type ChildProcess } from 'node:child_process'
import { readFile } from 'node:fs/promises'

/** `ip netns del ns`, quietly when it is not there. */
export function nsDel(ns: string): void {
  try {
    execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore' })
  } catch {
    // not there
  }
}

/** A bench's children and namespaces, cleaned up at exit. */
export interface BenchCleanup {
  /** Add each child here; it is SIGKILLed at exit if still running. */
  readonly children: Set<ChildProcess>
  /** Kill the children and delete the namespaces now (also between rounds, for fresh namespaces). */
  cleanup(): void
}

/**
 * Registers the exit cleanup: `namespaces` are deleted, `children` killed, then `also` runs (e.g. removing a temp
 * folder). SIGINT and SIGTERM exit with 128 + the signal, which runs it too.
 */
export function benchCleanup(namespaces: readonly string[], also?: () => void): BenchCleanup {
  const children = new Set<ChildProcess>()
  const cleanup = (): void => {
    for (const c of children) c.kill('SIGKILL')
    for (const ns of namespaces) nsDel(ns)
    also?.()
  }
  process.on('exit', cleanup)
  process.on('SIGINT', () => process.exit(130))
  process.on('SIGTERM', () => process.exit(143))
  return { children, cleanup }
}

/** Resolves once `file` matches `pattern`; throws with the log if `child` exits first or `ms` pass. */
export async function waitForLog(file: string, pattern: RegExp, child: ChildProcess, ms: number): Promise<void> {
  const until = Date.now() + ms
  while (Date.now() < until) {
    const text = await readFile(file, 'utf8').catch(() => '')
    if (pattern.test(text)) return
    if (child.exitCode !== null) throw new Error(`server exited (${child.exitCode}) before ready:\n${text}`)
    await new Promise((r) => setTimeout(r, 100))
  }
  throw new Error(`server not ready after ${ms} ms:\n${await readFile(file, 'utf8').catch(() => '')}`)
}
