/**
 * Logging: pino everywhere. Library modules take a Logger argument and default to `silentLogger`.
 */
import { pino, type Logger, type LevelWithSilent } from 'pino'

export type { Logger }

/** A logger that writes nothing: the default for library modules and most tests. */
export const silentLogger: Logger = pino({ level: 'silent' })

/**
 * Bytes of log lines the daemon holds while stdout has not taken them; beyond it lines are dropped and counted. A
 * burst of a 1,000-machine storm is ~1 MB of lines; this is room for several while a journal catches up, and the
 * bound on what a log flood can cost in memory.
 */
export const LOG_BUFFER_BYTES = 4 * 1024 * 1024
/** How long after the first dropped line the daemon says, once, how many were dropped. */
const DROP_REPORT_MS = 5000

const dropCounts = new WeakMap<Logger, { lines: number }>()

/**
 * The daemon's root logger: JSON lines by default, pretty-printed when stdout is a terminal so an operator running
 * pxebox by hand can read it.
 *
 * Lines are written asynchronously (pino's own sonic-boom destination with `sync: false`): a line is appended to a
 * buffer and written by libuv's pool, a burst in one write. With synchronous writes each line was a write(2) on the
 * event loop, and one landing on a file page under writeback or a journal pipe that is behind blocks for
 * milliseconds: in bench/storm.sh's profile those writes were 14% of the main thread's time (issue 18), time every
 * DHCP reply and lock-step TFTP block waited. pino flushes what is buffered synchronously when the process exits.
 * The buffer is bounded (LOG_BUFFER_BYTES): when stdout does not keep up, lines are dropped, counted
 * (`droppedLogLines`, `pxebox_log_lines_dropped_total`) and reported in one warning line, rather than held without end.
 */
export function createLogger(level: LevelWithSilent, opts: { pretty?: boolean; bufferBytes?: number; dropReportMs?: number } = {}): Logger {
  const pretty = opts.pretty ?? process.stdout.isTTY === true
  if (pretty) {
    return pino({
      level,
      transport: { target: 'pino-pretty', options: { colorize: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' } },
    })
  }
  const destination = pino.destination({ dest: 1, sync: false, maxLength: opts.bufferBytes ?? LOG_BUFFER_BYTES })
  const logger = pino({ level, base: { pid: process.pid } }, destination)
  const dropped = { lines: 0 }
  dropCounts.set(logger, dropped)
  let reported = 0
  let report: NodeJS.Timeout | undefined
  destination.on('drop', () => {
    dropped.lines++
    report ??= setTimeout(() => {
      report = undefined
      logger.warn({ dropped: dropped.lines - reported }, 'log lines dropped: stdout did not keep up with the log (pxebox_log_lines_dropped_total)')
      reported = dropped.lines
    }, opts.dropReportMs ?? DROP_REPORT_MS).unref()
  })
  return logger
}

/** Lines a logger from createLogger dropped because its destination did not keep up (0 for any other logger). */
export function droppedLogLines(logger: Logger): number {
  return dropCounts.get(logger)?.lines ?? 0
}
