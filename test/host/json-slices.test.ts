/**
 * stringifyInSlices: the same bytes as JSON.stringify, produced with the event loop free between slices (a 5 MB
 * machines.json stringified in one go stalled DHCP offers in bench/abuse).
 */
import t from 'tap'
import { stringifyInSlices } from '../../src/host/json-slices.js'

const record = (i: number) => ({ mac: `52:54:00:00:${(i >> 8).toString(16)}:${(i & 255).toString(16)}`, name: `m\u00e9${i}"\n`, n: i, ok: i % 2 === 0 })

t.test('the bytes are JSON.stringify of the whole document, at every slice boundary', async (t) => {
  for (const n of [0, 1, 2, 9, 10, 11, 25]) {
    const items: unknown[] = Array.from({ length: n }, (_, i) => record(i))
    if (n === 25) items.push(undefined, 'text', 3)
    const got = await stringifyInSlices({ version: 1, extra: 'x' }, 'machines', items, 5)
    t.equal(got.toString('utf8'), JSON.stringify({ version: 1, extra: 'x', machines: items }), `${n} items`)
  }
})

t.test('the event loop runs between slices, and later changes to the collection do not break the document', async (t) => {
  const items = new Map(Array.from({ length: 1000 }, (_, i) => [i, record(i)]))
  let turns = 0
  const spin = (): void => {
    turns++
    if (turns < 10_000) setImmediate(spin)
  }
  setImmediate(spin)
  const pending = stringifyInSlices({ version: 1 }, 'machines', items.values(), 100)
  items.clear() // the caller's map changes while the write is in progress
  const doc = JSON.parse((await pending).toString('utf8')) as { machines: unknown[] }
  const seen = turns
  turns = 10_000 // stops the spinner
  t.equal(doc.machines.length, 1000, 'the items as they were when asked')
  t.ok(seen >= 9, `other callbacks ran while 10 slices were serialized (${seen} turns)`)
})
