/**
 * JSON for a state file too big to stringify in one go: `{..."key": [items], ...}` built a slice of items at a time,
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
  return stringifyFieldsInSlices(head, [[key, [...items]]], slice)
}

/**
 * The UTF-8 bytes of `{...head, [key1]: [...items1], [key2]: [...items2], ...}` (the same text JSON.stringify gives;
 * no field key may also be a key of `head`), `slice` items at a time with the event loop free between slices. Each
 * iterable is pulled only as its slices are reached, so a lazy one (a generator rendering entries from a list of keys
 * copied earlier) spreads its rendering over the slices too: the caller must hand iterables that stay valid while the
 * loop runs (a live Map iterator does not).
 */
export async function stringifyFieldsInSlices(
  head: Record<string, unknown>,
  fields: readonly (readonly [string, Iterable<unknown>])[],
  slice = DEFAULT_SLICE,
): Promise<Buffer> {
  const opening = JSON.stringify(head)
  const chunks: Buffer[] = [Buffer.from(opening.slice(0, -1))] // without the closing '}'
  let separator = opening === '{}' ? '' : ','
  let inSlice = 0
  for (const [key, items] of fields) {
    let text = `${separator}${JSON.stringify(key)}:[`
    separator = ','
    let first = true
    for (const item of items) {
      if (inSlice === slice) {
        chunks.push(Buffer.from(text))
        text = ''
        inSlice = 0
        await yieldToLoop()
      }
      text += `${first ? '' : ','}${JSON.stringify(item) ?? 'null'}` // undefined becomes null in arrays, as JSON.stringify does
      first = false
      inSlice++
    }
    chunks.push(Buffer.from(`${text}]`))
  }
  chunks.push(Buffer.from('}'))
  return Buffer.concat(chunks)
}
