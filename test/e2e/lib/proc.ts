/**
 * Processes the e2e harness starts inside network namespaces, tracked by PID and stopped by PID only.
 *
 * `ip netns exec NS prog` execs `prog` (no fork), so the PID we spawn is the daemon's own PID: signalling it reaches
 * the daemon, never anything else on the machine.
 */
import { spawn, execFile } from 'node:child_process'
import { openSync, closeSync, readFileSync, existsSync } from 'node:fs'
import { promisify } from 'node:util'

const execFileP = promisify(execFile)

/** How a managed process ended. */
export interface ProcessExit {
  code: number | null
  signal: NodeJS.Signals | null
}

/** A process the harness started; its stdout and stderr go to `logPath`. */
export interface ManagedProcess {
  readonly name: string
  readonly pid: number
  readonly logPath: string
  /** Resolves when the process has exited (never rejects). */
  readonly exited: Promise<ProcessExit>
  /** Undefined while running. */
  exitStatus(): ProcessExit | undefined
  /** SIGTERM, then SIGKILL after `graceMs`; resolves once the process is gone. Safe to call twice. */
  stop(graceMs?: number): Promise<void>
}

/**
 * Start `cmd args` inside namespace `ns` (or in the current namespace when `ns` is undefined), output to `logPath`.
 * Throws if the process cannot be spawned at all.
 */
export function spawnManaged(name: string, ns: string | undefined, cmd: string, args: string[], logPath: string): ManagedProcess {
  // setpriv --pdeathsig KILL (util-linux) execs the program with PR_SET_PDEATHSIG: if the test process dies without
  // its teardown (tap's per-file timeout, a crash), QEMU and the daemons die with it instead of eating the CPU.
  // Like `ip netns exec`, setpriv execs, so the PID stays the program's own.
  const guarded = ['setpriv', '--pdeathsig', 'KILL', '--', cmd, ...args]
  const argv = ns === undefined ? guarded : ['ip', 'netns', 'exec', ns, ...guarded]
  const fd = openSync(logPath, 'a')
  const child = spawn(argv[0] as string, argv.slice(1), { stdio: ['ignore', fd, fd] })
  closeSync(fd)
  if (child.pid === undefined) throw new Error(`cannot start ${name}: ${argv.join(' ')}`)
  const pid = child.pid
  let status: ProcessExit | undefined
  const exited = new Promise<ProcessExit>((resolve) => {
    child.once('exit', (code, signal) => {
      status = { code, signal }
      resolve(status)
    })
    child.once('error', () => {
      status = { code: -1, signal: null }
      resolve(status)
    })
  })
  return {
    name,
    pid,
    logPath,
    exited,
    exitStatus: () => status,
    async stop(graceMs = 3000) {
      if (status !== undefined) return
      try {
        process.kill(pid, 'SIGTERM')
      } catch {
        return
      }
      const timer = new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), graceMs).unref())
      if ((await Promise.race([exited, timer])) === 'timeout') {
        try {
          process.kill(pid, 'SIGKILL')
        } catch {
          /* already gone */
        }
        await exited
      }
    },
  }
}

/** Run a short command to completion (inside `ns` when given); rejects with its stderr when it fails. */
export async function run(ns: string | undefined, cmd: string, args: string[]): Promise<string> {
  const argv = ns === undefined ? [cmd, ...args] : ['ip', 'netns', 'exec', ns, cmd, ...args]
  try {
    const { stdout } = await execFileP(argv[0] as string, argv.slice(1), { timeout: 30_000 })
    return stdout
  } catch (err) {
    const e = err as { stderr?: string; message: string }
    throw new Error(`${argv.join(' ')} failed: ${(e.stderr ?? '').trim() || e.message}`)
  }
}

/** The file's text, or '' if it does not exist (yet). */
export function readText(path: string): string {
  return existsSync(path) ? readFileSync(path, 'utf8') : ''
}

/** The last `lines` lines of a file, for failure messages. */
export function tail(path: string, lines = 30): string {
  return readText(path).split('\n').slice(-lines).join('\n')
}

/**
 * Poll `path` every 100 ms until `pattern` matches its text; returns the match. Rejects after `timeoutMs`, or early
 * when `proc` (the process writing the file) exits, with the file's tail in the message.
 */
export async function waitForText(path: string, pattern: RegExp, timeoutMs: number, proc?: ManagedProcess): Promise<RegExpMatchArray> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const m = readText(path).match(pattern)
    if (m) return m
    const st = proc?.exitStatus()
    if (st !== undefined) {
      throw new Error(`${proc?.name} exited (code ${st.code}, signal ${st.signal}) before ${pattern}:\n${tail(path)}`)
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${pattern} in ${path}:\n${tail(path)}`)
    await sleep(100)
  }
}

/** Resolve after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}
