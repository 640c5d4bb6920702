/**
 * `/assets/*`: kernels, initrds and images from the assets directory (Matchbox's `/assets/`), with HEAD, Range and
 * conditional requests. Requests carry no labels; the step is 'kernel'/'initrd' when the path is some profile's
 * kernel/initrd and the MAC is the one that last fetched a script from the same IP.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { FileHandle } from 'node:fs/promises'
import { answerFor, copyRange, decodeRelativePath, PathError } from './static-files.js'
import { ConfinementError, createConfinedRoot, type ConfinedFile } from '../host/confine.js'
import type { HttpContext } from './context.js'
import { plainSocketFd, sendfileRange } from './sendfile.js'

/** Resolved asset paths remembered per served folder: far more than a catalog's kernels, initrds and images. */
const ASSET_CACHE_FILES = 1024

/**
 * Register `GET|HEAD <prefix>*` serving files under `root`: `/assets/` from the assets directory (Matchbox's), and
 * `/firmware/` from the TFTP root, which is where UEFI HTTP boot clients are sent for their EFI binary.
 */
export function registerAssetRoutes(app: FastifyInstance, ctx: HttpContext, prefix = '/assets/', root = ctx.assetsDir): void {
  const PREFIX = prefix
  // Resolved files are remembered, watched rather than checked again per request: a rack booting fetches the same
  // kernel and initrd hundreds of times (host/confine.ts; issue 18).
  const confined = createConfinedRoot(root, { cacheFiles: ASSET_CACHE_FILES })
  app.addHook('onClose', async () => confined.close())
  const handler = async (req: FastifyRequest, reply: FastifyReply) => {
    const url = req.raw.url ?? ''
    const q = url.indexOf('?')
    const rawPath = q >= 0 ? url.slice(0, q) : url
    const recent = ctx.recall(req.ip)
    const state = ctx.store.get()
    const record = (status: number, outcome: string, bytes?: number) => {
      ctx.events.record({
        time: new Date().toISOString(),
        kind: 'http',
        ...(recent?.mac !== undefined ? { mac: recent.mac } : {}),
        ip: req.ip,
        step: state.assetRoles.get(rawPath) ?? (prefix === '/firmware/' ? 'firmware' : 'asset'),
        outcome,
        detail: {
          path: rawPath,
          status,
          method: req.method,
          ...(recent ? { group: recent.group, profile: recent.profile } : {}),
          ...(bytes !== undefined ? { bytes } : {}),
        },
      })
    }
    const refuse = (status: number, reason: string) => {
      ctx.logger.info({ ip: req.ip, path: rawPath, reason }, 'asset refused')
      record(status, reason)
      return reply.code(status).type('text/plain; charset=utf-8').send(`${reason}\n`)
    }

    let file: ConfinedFile | undefined
    // A GET opens the file as it is confined, so the bytes sent are from the file checked (host/confine.ts open()).
    let handle: FileHandle | undefined
    try {
      const rel = decodeRelativePath(rawPath.slice(PREFIX.length))
      if (req.method === 'HEAD') file = await confined.resolve(rel)
      else ({ file, handle } = (await confined.open(rel)) ?? {})
    } catch (err) {
      if (err instanceof PathError) return refuse(err.code === 'ERR_PATH_ENCODING' ? 400 : 403, `refused: ${err.message}`)
      if (err instanceof ConfinementError) return refuse(403, `refused: ${err.message}`)
      throw err
    }
    if (file === undefined) return refuse(404, 'not found')
    try {
      const ended = (err: unknown) => ctx.logger.info({ ip: req.ip, path: rawPath, err }, 'asset transfer ended early')
      return await answerFile(req, reply, file, handle, { sender: ctx.sender, record, ended })
    } finally {
      await handle?.close()
    }
  }
  app.route({ method: ['GET', 'HEAD'], url: `${PREFIX}*`, exposeHeadRoute: false, handler })
}

/** What answering one request needs from the route besides the file. */
interface AnswerContext {
  sender: HttpContext['sender']
  /** Records the boot event for this request. */
  record: (status: number, outcome: string, bytes?: number) => void
  /** Logs a transfer that ended early. */
  ended: (err: unknown) => void
}

/**
 * Answers a GET or HEAD of `file` (RFC 9110 conditionals and ranges); a body is read from `handle`, which the caller
 * opened and closes.
 */
async function answerFile(req: FastifyRequest, reply: FastifyReply, file: ConfinedFile, handle: FileHandle | undefined, a: AnswerContext): Promise<FastifyReply | undefined> {
  const h = req.headers
  const answer = answerFor(file.stats, {
    ...(typeof h.range === 'string' ? { range: h.range } : {}),
    ...(typeof h['if-none-match'] === 'string' ? { ifNoneMatch: h['if-none-match'] } : {}),
    ...(typeof h['if-modified-since'] === 'string' ? { ifModifiedSince: h['if-modified-since'] } : {}),
    ...(typeof h['if-range'] === 'string' ? { ifRange: h['if-range'] } : {}),
  })
  void reply.code(answer.status).headers(answer.headers)
  if (answer.status === 200 || answer.status === 206) void reply.type('application/octet-stream')
  const bytes = answer.range ? answer.range.end - answer.range.start + 1 : 0
  if (handle === undefined || answer.range === undefined) {
    a.record(answer.status, 'ok', 0)
    return reply.send()
  }
  // The body bypasses fastify's stream handling: sendfile(2) on the addon's sender thread when it is built and the
  // socket is plain TCP, else copyRange with its reused buffers (see sendfile.ts and static-files.ts).
  reply.hijack()
  const res = reply.raw
  res.writeHead(answer.status, { ...(reply.getHeaders() as Record<string, string>) })
  try {
    const fd = a.sender ? plainSocketFd(res.socket) : undefined
    if (a.sender && fd !== undefined) await sendfileRange(a.sender, fd, handle, answer.range, res)
    else await copyRange(handle, answer.range, res)
    res.end()
    a.record(answer.status, 'ok', bytes)
  } catch (err) {
    a.ended(err)
    a.record(answer.status, 'aborted', bytes)
    res.destroy()
  }
  return undefined
}
