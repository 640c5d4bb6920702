/**
 * Filling the outage layer's copy (mirror-copy.ts) from the shared store: a new copy, or one whose history the remote
 * compacted away. Every kind is read a page at a time (Store.page), each page written to the copy as it arrives, so
 * memory holds one page, not 100,000 machine records and their timelines at once; every page is read at the first
 * page's revision, so the copy ends as one snapshot of the remote and its watch resumes right after it. When the
 * remote compacts that revision before the last page (etcd's auto-compaction during a long fill), the fill starts
 * over at the current revision, up to FILL_ATTEMPTS times.
 */
import type { MirrorCopy } from './mirror-copy.js'
import { StoreCompactedError, type Store } from './store.js'

/** Documents per page of a fill: a few hundred KB of machine records or timelines. */
export const FILL_PAGE = 500
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
      copy.fillSpan(kind, after, page.next, page.entries)
      if (page.next === undefined) break
      after = page.next
    }
  }
  // No kinds at all: the copy holds the remote as of now.
  revision ??= await remote.revision()
  copy.listedAt(Math.max(revision, copy.applied()))
  return { revision, documents }
}
