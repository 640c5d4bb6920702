/**
 * Logging: pino everywhere. Library modules take a Logger argument and default to `silentLogger`.
 */
import { pino, type Logger, type LevelWithSilent } from 'pino'

export type { Logger }

/** A logger that writes nothing: the default for library modules and most tests. */
export const silentLogger: Logger = pino({ level: 'silent' })

/**
 * The daemon's root logger: JSON lines by default, pretty-printed when stdout is a terminal so an operator running
 * pxebox by hand can read it.
 */
export function createLogger(level: LevelWithSilent, opts: { pretty?: boolean } = {}): Logger {
  const pretty = opts.pretty ?? process.stdout.isTTY === true
  if (pretty) {
    return pino({
      level,
      transport: { target: 'pino-pretty', options: { colorize: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' } },
    })
  }
  return pino({ level, base: { pid: process.pid } })
}
