/**
 * Runs the real pxebox binary (dist/src/main.js, built by `npm test`) as a child process, optionally inside a
 * network namespace, and reads what it prints. Used by the CLI and end-to-end tests.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'

/** Absolute path of the compiled CLI. */
export const PXEBOX_BIN = fileURLToPath(new URL('../../dist/src/main.js', import.meta.url))

/** A running pxebox child with its output collected. */
export interface RunningPxebox {
  child: ChildProcess
  /** Everything written to stdout so far. */
  stdout(): string
  stderr(): string
  /** Resolves when stdout+stderr match `pattern`; rejects after `ms` (default 60 s). */
  waitFor(pattern: RegExp, ms?: number): Promise<RegExpMatchArray>
  /** Resolves with the exit code (or signal name) when the process ends. */
  exited: Promise<number | string>
  /** SIGKILL if still running (teardown). */
  kill(): void
}

/**
 * The environment for a pxebox child: tap's NODE_OPTIONS (TypeScript loader, coverage hooks) are dropped, since the
 * child runs compiled JavaScript and those hooks cost seconds per start.
 */
export function childEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env = { ...process.env, ...extra }
  delete env.NODE_OPTIONS
  return env
}

/** Start `pxebox ...args`; with `netns`, inside that namespace (`ip netns exec` execs, so the PID is pxebox's). */
export function runPxebox(args: string[], opts: { netns?: string; prefix?: string[]; env?: NodeJS.ProcessEnv } = {}): RunningPxebox {
  const argv = [...(opts.prefix ?? []), process.execPath, PXEBOX_BIN, ...args]
  const cmd = opts.netns ? ['ip', 'netns', 'exec', opts.netns, ...argv] : argv
  const child = spawn(cmd[0]!, cmd.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], env: opts.env ?? childEnv() })
  let out = ''
  let err = ''
  const listeners = new Set<() => void>()
  child.stdout!.on('data', (d: Buffer) => {
    out += d.toString()
    for (const l of listeners) l()
  })
  child.stderr!.on('data', (d: Buffer) => {
    err += d.toString()
    for (const l of listeners) l()
  })
  const exited = once(child, 'close').then(([code, signal]) => (code ?? signal) as number | string)
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    exited,
    kill: () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    },
    // 60 s: a wait for output, not a speed goal; a start costs ~2 s of CPU, 7-12 s of wall time at load 15.
    waitFor(pattern, ms = 60_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const m = (out + err).match(pattern)
          if (m) {
            finish()
            resolve(m)
          }
        }
        const timer = setTimeout(() => {
          finish()
          reject(new Error(`pxebox did not print ${pattern} within ${ms} ms; stdout:\n${out}\nstderr:\n${err}`))
        }, ms)
        const gone = () => {
          finish()
          const m = (out + err).match(pattern)
          if (m) resolve(m)
          else reject(new Error(`pxebox exited before printing ${pattern}; stdout:\n${out}\nstderr:\n${err}`))
        }
        const finish = () => {
          clearTimeout(timer)
          listeners.delete(check)
          child.off('close', gone)
        }
        listeners.add(check)
        child.once('close', gone)
        check()
      })
    },
  }
}
