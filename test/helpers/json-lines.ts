/** The JSON lines a child process (a test runner role) prints on stdout, one parsed object per line. */
import type { Readable } from 'node:stream'
import { createInterface } from 'node:readline'

/**
 * Calls `onLine` with each line of `stream` that is a JSON object, in order. Lines that are not (a stray message from
 * a tool the role ran) are skipped: the roles print one JSON object per line and nothing else matters to a test.
 */
export function onJsonLines(stream: Readable | null | undefined, onLine: (line: Record<string, any>) => void): void {
  if (stream == null) return
  createInterface({ input: stream, crlfDelay: Infinity }).on('line', (text) => {
    if (text.startsWith('{')) onLine(JSON.parse(text) as Record<string, any>)
  })
}
