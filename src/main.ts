#!/usr/bin/env -S node --max-semi-space-size=2 --heap-growing-percent=20
/**
 * The pxebox command line. The only module that reads argv, the environment and the config file path, and the only
 * one that calls process.exit. Exit codes: 0 ok, 1 runtime failure, 2 bad usage / bad config / missing privileges.
 */
import { parseArgs } from 'node:util'
import { VERSION } from './host/version.js'
// Everything else (the config loader with its compiled schema, pino, fastify) is imported where it is used, after
// `serve` has installed its signal handlers: those imports take 100+ ms, and a signal before the handlers exist gets
// the default action (SIGHUP kills the process).

const HELP = `pxebox ${VERSION}: one daemon for PXE (proxyDHCP, TFTP, HTTP boot)

Usage:
  pxebox serve --config FILE      run the daemon (DHCP, TFTP and HTTP, each switchable in config)
  pxebox validate --config FILE   check a config and its groups/profiles; exit 0 if good, else print every problem, exit 2
  pxebox demo                     (root) boot one UEFI VM through pxebox in a private network namespace and watch it
  pxebox version                  print the version
  pxebox --help                   this text

Signals (serve): SIGHUP reloads the config (an invalid one is rejected, the old one keeps serving);
SIGTERM/SIGINT stop cleanly.
Docs: README.md; every config key: config/config.example.yaml`

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv
  if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
    console.log(HELP)
    return command === undefined ? 2 : 0
  }
  if (command === 'version' || command === '--version') {
    console.log(VERSION)
    return 0
  }
  if (command === 'demo') return demo()
  if (command !== 'serve' && command !== 'validate') {
    console.error(`pxebox: unknown command "${command}"\n\n${HELP}`)
    return 2
  }
  let values: { config?: string; help?: boolean }
  try {
    ;({ values } = parseArgs({ args: rest, options: { config: { type: 'string', short: 'c' }, help: { type: 'boolean', short: 'h' } } }))
  } catch (err) {
    console.error(`pxebox ${command}: ${(err as Error).message}`)
    return 2
  }
  if (values.help) {
    console.log(HELP)
    return 0
  }
  if (!values.config) {
    console.error(`pxebox ${command}: --config FILE is required (the default config is config/config.yaml)`)
    return 2
  }
  return command === 'validate' ? validate(values.config) : serve(values.config)
}

/** `pxebox demo`: the namespace, site DHCP server, pxebox and VM are set up by scripts/demo.sh (shared with docs). */
async function demo(): Promise<number> {
  const { spawn } = await import('node:child_process')
  const script = new URL('../../scripts/demo.sh', import.meta.url).pathname
  const child = spawn('bash', [script], { stdio: 'inherit' })
  // Ctrl-C reaches the script through the terminal's process group; it cleans up and exits.
  process.on('SIGINT', () => {})
  return new Promise((resolve) => child.on('exit', (code) => resolve(code ?? 1)))
}

async function validate(file: string): Promise<number> {
  // Loaded on demand so `pxebox version` and `--help` answer without loading fastify and every service.
  const { validateAll } = await import('./daemon/validate.js')
  const { problems, warnings } = await validateAll(file)
  for (const w of warnings) console.error(`warning: ${w}`)
  if (problems.length === 0) {
    console.log(`${file}: ok`)
    return 0
  }
  console.error(`${problems.length} problem${problems.length === 1 ? '' : 's'}:`)
  for (const p of problems) console.error('  ' + p)
  return 2
}

/**
 * `pxebox serve`. Signal handlers come first, before anything is loaded (issue 14 item 4, issue 15): until they
 * exist, SIGHUP's default action kills the process (`systemctl reload` or logrotate right after a start), and as
 * PID 1 in a container SIGTERM and SIGHUP have no default action at all, so they were lost.
 * - SIGHUP during start-up is remembered and applied once started; afterwards each SIGHUP schedules a reload off
 *   the handler, and SIGHUPs during a reload coalesce into one more reload after it.
 * - SIGTERM/SIGINT during start-up stop as soon as whatever was started is closed (exit 0); afterwards they stop at
 *   once, a reload in progress notwithstanding.
 */
async function serve(file: string): Promise<number> {
  let stopSignal: string | undefined
  let hupDuringStart = false
  // Ends a start-up that waits (the registry waiting out this host's previous run: daemon/fleet.ts).
  const starting = new AbortController()
  let onStop = (signal: string): void => {
    stopSignal ??= signal
    starting.abort()
  }
  let onHup = (): void => void (hupDuringStart = true)
  process.on('SIGTERM', () => onStop('SIGTERM'))
  process.on('SIGINT', () => onStop('SIGINT'))
  process.on('SIGHUP', () => onHup())

  const { ConfigError } = await import('./config/errors.js')
  const { loadConfig } = await import('./config/load.js')
  let config
  try {
    config = loadConfig(file)
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(err.message)
      return 2
    }
    throw err
  }
  if (stopSignal !== undefined) return 0
  const { createLogger } = await import('./host/log.js')
  const logger = createLogger(config.log_level)
  const { startDaemon, StartError } = await import('./daemon/daemon.js')
  if (stopSignal !== undefined) {
    logger.info({ signal: stopSignal }, 'stopped before start')
    logger.flush()
    return 0
  }
  let daemon: Awaited<ReturnType<typeof startDaemon>>
  try {
    daemon = await startDaemon(config, logger, { signal: starting.signal })
  } catch (err) {
    if (stopSignal !== undefined) {
      logger.info({ signal: stopSignal }, 'stopped during start')
      logger.flush()
      return 0
    }
    if (err instanceof StartError) {
      logger.fatal({ code: err.code }, err.message)
      console.error(`pxebox: ${err.message}`)
      logger.flush()
      return 2
    }
    throw err
  }
  if (stopSignal === undefined) console.log(daemon.banner())
  // systemd (Type=notify-reload): started only now, so `systemctl start` returns serving and no SIGHUP comes earlier.
  const { sdNotifier, reloadingState } = await import('./host/sdnotify.js')
  const { notify, warning } = sdNotifier((message) => logger.warn(message))
  if (warning !== undefined) logger.warn(warning)
  notify(`READY=1\nSTATUS=serving (config ${file})`)

  return new Promise<number>((done) => {
    let stopping = false
    const stop = (signal: string) => {
      if (stopping) return
      stopping = true
      logger.info({ signal }, 'stopping')
      notify('STOPPING=1')
      // A hung close must not keep the process past systemd's patience: 2 s is the promise made in the README.
      const force = setTimeout(() => {
        logger.error('clean stop took over 1.5 s; exiting anyway')
        done(1)
      }, 1500)
      force.unref()
      daemon.close().then(
        () => {
          clearTimeout(force)
          logger.info('stopped')
          logger.flush()
          done(0)
        },
        (err: unknown) => {
          logger.error({ err }, 'error while stopping')
          done(1)
        },
      )
    }

    const reloadOnce = async (): Promise<string> => {
      let next
      try {
        next = loadConfig(file)
      } catch (err) {
        const problems = err instanceof ConfigError ? err.problems.length : 1
        logger.error({ problems, detail: (err as Error).message }, 'SIGHUP: new config rejected, the old one keeps serving')
        return 'STATUS=serving; the new config was rejected (see the journal), the old one keeps serving'
      }
      try {
        const r = await daemon.reload(next)
        logger.info({ ...r }, 'SIGHUP: config reloaded')
        return `STATUS=serving (config ${file}, reloaded)`
      } catch (err) {
        logger.error({ err }, 'SIGHUP: reload failed, the old config keeps serving')
        return 'STATUS=serving; the reload failed (see the journal), the old config keeps serving'
      }
    }
    let reloading = false
    let again = false
    const reload = (): void => {
      if (stopping) return
      if (reloading) {
        again = true
        return
      }
      reloading = true
      // In the handler itself, so systemd hears RELOADING=1 as early as possible after its SIGHUP.
      notify(reloadingState())
      // Off the handler: the handler only schedules, so a slow read can never sit between a signal and the next one.
      setImmediate(() => {
        void (async () => {
          let status: string
          do {
            again = false
            status = await reloadOnce()
          } while (again && !stopping)
          reloading = false
          if (!stopping) notify(`READY=1\n${status}`)
        })()
      })
    }

    onStop = stop
    onHup = reload
    if (stopSignal !== undefined) stop(stopSignal)
    else if (hupDuringStart) {
      logger.info('SIGHUP during start-up: reloading now')
      reload()
    }
  })
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error('pxebox: unexpected failure:', err)
    process.exit(1)
  },
)
