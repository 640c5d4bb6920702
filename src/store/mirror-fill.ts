/**
 * Filling the outage layer's copy (mirror-copy.ts) from the shared store: a new copy, or one whose history the remote
 * compacted away. Every kind is read a page at a time (Store.page), each page written to the copy as it arrives, so
 * memory holds one page, not 100,000 machine records and their timelines at once; every page is read at the first
 * page's revision, so the copy ends as one snapshot of the remote and its watch resumes right after it. A page is
 * written FILL_CHUNK documents per transaction, the loop getting a turn between them (boot answers wait for none).
 * When the remote compacts that revision before the last page (etcd's auto-compaction during a long fill), the fill
 * starts over at the current revision, up to FILL_ATTEMPTS times.
 */
import type { MirrorCopy } from './mirror-copy.js'
import { StoreCompactedError, type Store, type StoreEntry } from './store.js'

/** Documents per page of a fill: a few hundred KB of machine records or timelines. */
export const FILL_PAGE = 500
/**
 * Documents per transaction of the copy: a page of 500 timelines (1.2 MB) in one held the loop up to 136-208 ms
 * (bench/fleet-list.ts --timelines, 50,000 machines, load 5-6); chunks of 100, 48-82 ms.
 */
const FILL_CHUNK = 100
/** Fills started over after the remote compacted the revision being read, before giving up. */
const FILL_ATTEMPTS = 3

/** What a fill read. */
export interface Filled {
  /** The remote revision the copy now holds. */
  readonly revision: number
  /** Documents read, all kinds together. */
  readonly documents: number
}

/**
 * Read every document of `kinds` from `remote` into `copy`, then mark the copy at the listing's revision.
 * `stopped()` is asked between pages: a closed store stops filling (resolves undefined, the copy unmarked).
 */
export async function fillCopy(remote: Store, copy: MirrorCopy, kinds: readonly string[], stopped: () => boolean): Promise<Filled | undefined> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fillOnce(remote, copy, kinds, stopped)
    } catch (err) {
      if (!(err instanceof StoreCompactedError) || attempt >= FILL_ATTEMPTS) throw err
    }
  }
}

async function fillOnce(remote: Store, copy: MirrorCopy, kinds: readonly string[], stopped: () => boolean): Promise<Filled | undefined> {
  let revision: number | undefined
  let documents = 0
  for (const kind of kinds) {
    let after: string | undefined
    for (;;) {
      const page = await remote.page(kind, { limit: FILL_PAGE, ...(after === undefined ? {} : { after }), ...(revision === undefined ? {} : { revision }) })
      if (stopped()) return undefined
      revision = page.revision
      documents += page.entries.length
      if (!(await writeSpan(copy, kind, after, page.next, page.entries, stopped))) return undefined
      if (page.next === undefined) break
      after = page.next
    }
  }
  // No kinds at all: the copy holds the remote as of now.
  revision ??= await remote.revision()
  copy.listedAt(Math.max(revision, copy.applied()))
  return { revision, documents }
}

/** One page into the copy, FILL_CHUNK documents per transaction, the loop getting a turn between them; false: stopped. */
async function writeSpan(copy: MirrorCopy, kind: string, after: string | undefined, through: string | undefined, entries: readonly StoreEntry[], stopped: () => boolean): Promise<boolean> {
  if (entries.length === 0) copy.fillSpan(kind, after, through, entries)
  for (let i = 0; i < entries.length; i += FILL_CHUNK) {
    if (stopped()) return false
    const chunk = entries.slice(i, i + FILL_CHUNK)
    const last = i + FILL_CHUNK >= entries.length
    copy.fillSpan(kind, i === 0 ? after : entries[i - 1]!.id, last ? through : chunk[chunk.length - 1]!.id, chunk)
    if (!last) await new Promise((resolve) => setImmediate(resolve))
  }
  return true
}
