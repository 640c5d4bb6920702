/**
 * JSON for a state file too big to stringify in one go: `{..."key": [items]}` built a slice of items at a time,
 * yielding to the event loop between slices. machines.json at its 10,000-record cap is ~5 MB; one JSON.stringify
 * and Buffer.from of it held the loop ~85 ms of CPU once a second under bench/abuse's new-MAC flood (several times
 * that in wall time on a busy host), and every DHCP offer queued behind it.
 */
import { setImmediate as yieldToLoop } from 'node:timers/promises'

/** Items serialized between two yields: ~250 machine records are ~1-2 ms of work. */
const DEFAULT_SLICE = 250

/**
 * The UTF-8 bytes of `{...head, [key]: items}` (key last), the same text JSON.stringify gives. `items` is copied
 * first, so changes to the caller's collection while this runs do not break the document: an item changed between
 * slices is written as it is when its slice is reached.
 */
export async function stringifyInSlices(head: Record<string, unknown>, key: string, items: Iterable<unknown>, slice = DEFAULT_SLICE): Promise<Buffer> {
  const list = [...items]
  const opening = JSON.stringify({ ...head, [key]: [] })
  const chunks: Buffer[] = [Buffer.from(opening.slice(0, -2))] // up to and with the array's '['
  for (let i = 0; i < list.length; i += slice) {
    if (i > 0) await yieldToLoop()
    const part = list.slice(i, i + slice).map((item) => JSON.stringify(item) ?? 'null') // as JSON.stringify does in arrays
    chunks.push(Buffer.from(`${i > 0 ? ',' : ''}${part.join(',')}`))
  }
  chunks.push(Buffer.from(']}'))
  return Buffer.concat(chunks)
}
