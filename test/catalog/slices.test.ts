/**
 * src/catalog/slices.ts sortSliced: the same order as a stable Array#sort by key, for input in random order, already
 * sorted (the merge's join-without-comparing path: a catalog read in file-name order), reversed and with equal keys,
 * over sizes around its run length, with a slicer that yields at every call.
 */
import t from 'tap'
import { sortSliced, type Slicer } from '../../src/catalog/slices.js'

const yielding: Slicer = { slice: () => new Promise<void>((r) => setImmediate(r)) }
const key = (x: { k: string; i: number }): string => x.k

function expected(items: { k: string; i: number }[]): { k: string; i: number }[] {
  return [...items].sort((a, b) => (a.k < b.k ? -1 : a.k > b.k ? 1 : 0)) // Array#sort is stable
}

t.test('sortSliced orders as a stable sort does', async (t) => {
  let seed = 7
  const rand = (): number => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31
  for (const n of [0, 1, 2047, 2048, 2049, 5000, 9000]) {
    const random = Array.from({ length: n }, (_, i) => ({ k: `k${Math.floor(rand() * n * 2)}`, i }))
    const sorted = expected(random).map((x, i) => ({ k: x.k, i }))
    const reversed = [...sorted].reverse().map((x, i) => ({ k: x.k, i }))
    const equal = Array.from({ length: n }, (_, i) => ({ k: i % 3 === 0 ? 'b' : 'a', i }))
    for (const [name, items] of [['random', random], ['sorted', sorted], ['reversed', reversed], ['equal keys', equal]] as const) {
      t.same(await sortSliced(items, key, yielding), expected([...items]), `${n} ${name}`)
    }
  }
})
