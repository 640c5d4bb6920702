/**
 * Block sources for a transfer: memory copies for cached files, chunked positional reads with read-ahead for large
 * ones, so the send loop touches the disk (through the thread pool) once per chunk instead of once per block.
 */
import { open, type FileHandle } from 'node:fs/promises'
import type { DiskContent } from './files.js'

/** Bytes for DATA blocks. `fill` is synchronous whenever the bytes are already in memory. */
export interface BlockSource {
  readonly size: number
  /** Copies `length` bytes at `position` into `target` at `offset`; resolves the count copied. */
  fill(position: number, target: Buffer, offset: number, length: number): number | Promise<number>
  /** True when `fill` of this range would return at once, without starting a read. */
  inMemory(position: number, length: number): boolean
  /** The whole file, when the source holds it in one Buffer (a cached or virtual file): a lock-step run sends from it. */
  readonly whole?: Buffer
  close(): Promise<void>
}

/** A source over a Buffer (cached or virtual file). */
export function memorySource(data: Buffer): BlockSource {
  return {
    size: data.length,
    fill(position, target, offset, length) {
      return data.copy(target, offset, position, Math.min(position + length, data.length))
    },
    inMemory: () => true,
    whole: data,
    async close() {},
  }
}

interface Chunk {
  start: number
  length: number
  buf: Buffer
}

/**
 * A source over a file on disk. Chunks start on block boundaries and hold a whole number of blocks, so a block never
 * straddles two chunks; the next chunk is read ahead once the sender is halfway through the current one.
 */
export async function diskSource(content: DiskContent, blockSize: number, minChunk = 256 * 1024): Promise<BlockSource> {
  const handle: FileHandle = await open(content.path, 'r')
  const chunkSize = Math.max(1, Math.ceil(minChunk / blockSize)) * blockSize
  let current: Chunk | undefined
  let spare: Buffer = Buffer.allocUnsafe(chunkSize)
  let ahead: Promise<Chunk> | undefined
  let aheadStart = -1
  let closed = false

  async function readChunk(start: number, buf: Buffer): Promise<Chunk> {
    let length = 0
    const want = Math.min(chunkSize, content.size - start)
    while (length < want) {
      const { bytesRead } = await handle.read(buf, length, want - length, start + length)
      if (bytesRead === 0) break
      length += bytesRead
    }
    return { start, length, buf }
  }

  function readAhead(): void {
    if (!current || ahead || closed) return
    const start = current.start + current.length
    if (start >= content.size) return
    const buf = spare
    aheadStart = start
    ahead = readChunk(start, buf)
    ahead.catch(() => {})
  }

  function copyFrom(chunk: Chunk, position: number, target: Buffer, offset: number, length: number): number {
    const from = position - chunk.start
    const n = chunk.buf.copy(target, offset, from, Math.min(from + length, chunk.length))
    if (from + length > chunk.length / 2) readAhead()
    return n
  }

  async function miss(position: number, target: Buffer, offset: number, length: number): Promise<number> {
    let next: Chunk
    if (ahead && aheadStart === position) {
      next = await ahead
    } else {
      // A retransmit reaching back before the current chunk, or a jump: wait out any read-ahead, then read fresh.
      if (ahead) await ahead.catch(() => undefined)
      ahead = undefined
      next = await readChunk(position, spare)
    }
    ahead = undefined
    const old = current
    current = next
    spare = old ? old.buf : Buffer.allocUnsafe(chunkSize)
    return copyFrom(current, position, target, offset, length)
  }

  function holds(position: number, length: number): boolean {
    const c = current
    return c !== undefined && position >= c.start && position + Math.min(length, content.size - position) <= c.start + c.length
  }

  return {
    size: content.size,
    fill(position, target, offset, length) {
      if (length === 0 || position >= content.size) return 0
      if (holds(position, length)) return copyFrom(current!, position, target, offset, length)
      return miss(position, target, offset, length)
    },
    inMemory: (position, length) => length === 0 || position >= content.size || holds(position, length),
    async close() {
      closed = true
      if (ahead) await ahead.catch(() => undefined)
      await handle.close()
    },
  }
}
