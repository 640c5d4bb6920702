/**
 * Maps key paths in a parsed YAML document back to line:column, so schema errors found on plain objects can point
 * at the text the operator wrote.
 */
import { isMap, isPair, isScalar, isSeq, type Document, type LineCounter, type Node } from 'yaml'

/** Where a path lives in the source; `key` true when the position is that of the key rather than the value. */
export interface SourcePosition {
  line: number
  column: number
}

/**
 * Position of `path` in `doc`. For an existing key it is the key's own position (the place an operator looks for an
 * unknown or mistyped key); when the path does not exist, the position of its deepest existing parent.
 */
export function positionOf(doc: Document, lc: LineCounter, path: readonly (string | number)[]): SourcePosition {
  let node: unknown = doc.contents
  let best: number = (node as Node | null)?.range?.[0] ?? 0
  for (const part of path) {
    if (isMap(node)) {
      const pair = node.items.find((it) => isPair(it) && isScalar(it.key) && String(it.key.value) === String(part))
      if (!pair) break
      const keyStart = (pair.key as Node | null)?.range?.[0]
      if (keyStart !== undefined) best = keyStart
      node = pair.value
    } else if (isSeq(node) && typeof part === 'number') {
      const item = node.items[part] as Node | undefined
      if (!item) break
      if (item.range) best = item.range[0]
      node = item
    } else {
      break
    }
  }
  const { line, col } = lc.linePos(best)
  return { line, column: col }
}
