/**
 * The PXE file handler for TFTP: what a booting machine's file name means. A leading `<mac>/` and/or `<arch>/`
 * (pxelinux-style per-machine folders, iPXE's `${buildarch}`/`${platform}`) falls back to the plain file, and the MAC
 * it names is attached to the transfer so the boot event lands in that machine's timeline. Each candidate path is
 * offered to a list of resolvers in order (generated files, then folders), so a new generated file or a mapped folder
 * is one more entry in the list. The transfer log (tftp/server.ts onTransfer) becomes boot events here.
 */
import {
  createTftpFolder,
  normalizeRequestPath,
  type TftpFile,
  type TftpFileHandler,
  type TftpFolder,
  type TftpTransferEntry,
} from '../tftp/index.js'
import type { BootEvent, EventSink } from '../machines/events.js'

/** One candidate a resolver is asked about: the path with its prefixes stripped, and what they named. */
export interface BootFileRequest {
  /** Relative path (normalized, prefixes stripped progressively). */
  path: string
  /** Canonical colon MAC of a `<mac>/` prefix. */
  mac?: string
  /** Lowercase name of an `<arch>/` prefix. */
  arch?: string
  peer: { address: string; port: number }
}

/**
 * One source of files: a file for this candidate, or undefined to let the next resolver (or the next candidate) try.
 * A generated file (an iPXE script, a GRUB config) is a resolver returning a Buffer for its name. Throwing
 * TftpAccessError refuses the request.
 */
export type BootFileResolver = (request: BootFileRequest) => Promise<TftpFile | Buffer | undefined> | TftpFile | Buffer | undefined

/** Default architecture prefixes: iPXE's ${buildarch} values and ${platform} names. */
export const DEFAULT_ARCH_PREFIXES: readonly string[] = ['i386', 'x86_64', 'arm32', 'arm64', 'pcbios', 'efi']

const MAC_SEPARATED = /^(?:01-)?([0-9a-f]{2})([-:])([0-9a-f]{2})\2([0-9a-f]{2})\2([0-9a-f]{2})\2([0-9a-f]{2})\2([0-9a-f]{2})$/i
const MAC_BARE = /^[0-9a-f]{12}$/i

/** Canonical lowercase colon MAC when `segment` spells one (pxelinux `01-aa-bb-..`, `aa:bb:..`, `aa-bb-..`, bare hex). */
export function macFromSegment(segment: string): string | undefined {
  const m = MAC_SEPARATED.exec(segment)
  if (m) return [m[1], m[3], m[4], m[5], m[6], m[7]].join(':').toLowerCase()
  if (MAC_BARE.test(segment)) return (segment.match(/../g) as string[]).join(':').toLowerCase()
  return undefined
}

interface CandidatePath {
  path: string
  mac?: string
  arch?: string
}

/** The request path, then with a leading `<mac>/` and/or `<arch>/` removed (at most two levels). */
export function candidatePaths(path: string, archPrefixes: ReadonlySet<string>): CandidatePath[] {
  const out: CandidatePath[] = [{ path }]
  let mac: string | undefined
  let arch: string | undefined
  let rest = path.split('/')
  for (let level = 0; level < 2 && rest.length > 1; level++) {
    const head = rest[0] as string
    const headMac = macFromSegment(head)
    if (headMac !== undefined && mac === undefined) mac = headMac
    else if (archPrefixes.has(head.toLowerCase()) && arch === undefined) arch = head.toLowerCase()
    else break
    rest = rest.slice(1)
    out.push({ path: rest.join('/') })
  }
  for (const c of out) {
    if (mac !== undefined) c.mac = mac
    if (arch !== undefined) c.arch = arch
  }
  return out
}

/**
 * A resolver serving `folder`: every candidate path, or with `prefix` (e.g. `assets/`) only paths under it, looked up
 * in the folder without the prefix.
 */
export function folderFiles(folder: TftpFolder, prefix?: string): BootFileResolver {
  return async (request) => {
    let path = request.path
    if (prefix !== undefined) {
      if (!path.startsWith(prefix)) return undefined
      path = path.slice(prefix.length)
    }
    return (await folder.open(path)) ?? undefined
  }
}

/** Options for createBootFileHandler. */
export interface BootFileHandlerOptions {
  /** Tried in order for each candidate path; the first file found is served. */
  resolvers: readonly BootFileResolver[]
  /** Folder names treated as architecture prefixes (default DEFAULT_ARCH_PREFIXES). */
  archPrefixes?: readonly string[]
}

/**
 * The PXE file handler: for the request path, then each prefix-stripped form of it, ask the resolvers in order. A
 * longer path wins over a stripped one, so `52-54-00-12-34-56/ipxe.efi` on disk beats the shared `ipxe.efi`. The
 * transfer carries the MAC of a `<mac>/` prefix as a tag (see bootTransferEvents).
 */
export function createBootFileHandler(options: BootFileHandlerOptions): TftpFileHandler {
  const archPrefixes = new Set((options.archPrefixes ?? DEFAULT_ARCH_PREFIXES).map((a) => a.toLowerCase()))
  return async (request) => {
    const path = normalizeRequestPath(request.filename)
    for (const candidate of candidatePaths(path, archPrefixes)) {
      const req: BootFileRequest = { ...candidate, peer: request.peer }
      for (const resolve of options.resolvers) {
        const found = await resolve(req)
        if (found === undefined) continue
        const file: TftpFile = Buffer.isBuffer(found) ? { name: candidate.path, size: found.length, content: found } : { ...found, name: candidate.path }
        if (candidate.mac !== undefined) file.tags = { ...file.tags, mac: candidate.mac }
        return file
      }
    }
    return null
  }
}

/**
 * The TFTP transfer log as boot events (kind 'tftp', step 'file', or the `step` a resolver tagged: a GRUB config that
 * boots the local disk is step 'local-boot'), attributed to the MAC the file handler tagged. A dropped datagram
 * carries no address: its source may be spoofed and must not land in a machine's timeline.
 */
export function bootTransferEvents(sink: EventSink): (entry: TftpTransferEntry) => void {
  return (entry) => {
    const detail: Record<string, unknown> = {}
    if (entry.path !== undefined) detail.file = entry.path
    if (entry.reason !== undefined) detail.reason = entry.reason
    if (entry.bytes !== undefined) detail.bytes = entry.bytes
    if (entry.blksize !== undefined) detail.blksize = entry.blksize
    if (entry.windowsize !== undefined) detail.windowsize = entry.windowsize
    if (entry.durationMs !== undefined) detail.duration_ms = entry.durationMs
    if (entry.tsizeProbe) detail.tsize_probe = true
    if (entry.finalAck === false) detail.final_ack = false
    if (entry.peerError !== undefined) detail.peer_error = entry.peerError
    const event: BootEvent = { time: entry.time, kind: 'tftp', step: entry.tags?.step ?? 'file', outcome: entry.outcome, detail }
    if (entry.outcome !== 'dropped') event.ip = entry.peer.address
    const mac = entry.tags?.mac
    sink.record(mac === undefined ? event : { ...event, mac })
  }
}

/** What startTftp needs to serve PXE clients: the file handler and the transfer log; close() once TFTP has stopped. */
export interface PxeTftp {
  fileHandler: TftpFileHandler
  onTransfer: (entry: TftpTransferEntry) => void
  /** Releases the root folder's remembered resolutions and their directory watches (tftp/folder.ts). */
  close(): void
}

/**
 * The daemon's TFTP wiring: the TFTP root with `<mac>/` and `<arch>/` prefixes, transfers recorded as boot events.
 * Generated files and mapped folders go in `resolvers`, tried before the root for each candidate path.
 */
export function pxeTftp(options: { root: string; events: EventSink; resolvers?: readonly BootFileResolver[] }): PxeTftp {
  const folder = createTftpFolder({ root: options.root })
  return {
    fileHandler: createBootFileHandler({ resolvers: [...(options.resolvers ?? []), folderFiles(folder)] }),
    onTransfer: bootTransferEvents(options.events),
    close: () => folder.close(),
  }
}
