#!/usr/bin/env node
/**
 * The pxebox command line. The only module that reads argv, the environment and the config file path, and the only
 * one that calls process.exit. Exit codes: 0 ok, 1 runtime failure, 2 bad usage / bad config / missing privileges.
 */
import { parseArgs } from 'node:util'
import { ConfigError } from './config/errors.js'
import { loadConfig } from './config/load.js'
import { createLogger } from './log.js'
import { VERSION } from './version.js'

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
  const { validateAll } = await import('./validate.js')
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

async function serve(file: string): Promise<number> {
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
  const logger = createLogger(config.log_level)
  const { startDaemon, StartError } = await import('./daemon.js')
  let daemon
  try {
    daemon = await startDaemon(config, logger)
  } catch (err) {
    if (err instanceof StartError) {
      logger.fatal({ code: err.code }, err.message)
      console.error(`pxebox: ${err.message}`)
      logger.flush()
      return 2
    }
    throw err
  }
  console.log(daemon.banner())

  return new Promise<number>((done) => {
    let stopping = false
    const stop = (signal: string) => {
      if (stopping) return
      stopping = true
      logger.info({ signal }, 'stopping')
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
    process.on('SIGTERM', () => stop('SIGTERM'))
    process.on('SIGINT', () => stop('SIGINT'))
    process.on('SIGHUP', () => {
      let next
      try {
        next = loadConfig(file)
      } catch (err) {
        const problems = err instanceof ConfigError ? err.problems.length : 1
        logger.error({ problems, detail: (err as Error).message }, 'SIGHUP: new config rejected, the old one keeps serving')
        return
      }
      daemon.reload(next).then(
        (r) => logger.info({ ...r }, 'SIGHUP: config reloaded'),
        (err: unknown) => logger.error({ err }, 'SIGHUP: reload failed, the old config keeps serving'),
      )
    })
  })
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error('pxebox: unexpected failure:', err)
    process.exit(1)
  },
)
