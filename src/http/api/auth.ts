/**
 * `/v1` access: writes need `Authorization: Bearer <api.token>`; reads too unless `api.open_reads`. Boot endpoints
 * never do (firmware cannot authenticate). Without a configured token, writes are refused outright (403): an
 * appliance on a shared VLAN must not accept unauthenticated changes because nobody set a password.
 */
import { createHash, timingSafeEqual } from 'node:crypto'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { readConfigFileSync } from '../../host/read-file.js'

/** What the API needs to check requests; `token()` is read per request so a reload can change it. */
export interface ApiAuth {
  /** The bearer token (config api.token or the contents of api.token_file); undefined: writes disabled. */
  token(): string | undefined
  /** GETs need no token. */
  readonly openReads: boolean
}

/** How a request's credentials compare with the configured token. */
export type TokenCheck = 'ok' | 'missing' | 'wrong' | 'not-configured'

const digest = (s: string) => createHash('sha256').update(s).digest()

/** Compare the request's bearer token with the configured one in constant time. */
export function checkToken(req: FastifyRequest, auth: ApiAuth): TokenCheck {
  const expected = auth.token()
  const header = req.headers.authorization
  const m = typeof header === 'string' ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null
  if (expected === undefined || expected === '') return m ? 'wrong' : 'not-configured'
  if (!m) return 'missing'
  return timingSafeEqual(digest(m[1]!), digest(expected)) ? 'ok' : 'wrong'
}

/** Answer 401/403 unless the request carries the token. Returns true when it may go on. */
export function requireToken(req: FastifyRequest, reply: FastifyReply, auth: ApiAuth): boolean {
  const check = checkToken(req, auth)
  if (check === 'ok') return true
  if (check === 'not-configured') {
    void reply.code(403).send({ error: 'API writes are disabled: set api.token or api.token_file in the config' })
    return false
  }
  void reply
    .code(401)
    .header('www-authenticate', 'Bearer realm="pxebox"')
    .send({ error: check === 'missing' ? 'missing bearer token (Authorization: Bearer <api.token>)' : 'wrong bearer token' })
  return false
}

/** Route-level guard for reads: open when `openReads`, else the token. */
export function requireRead(req: FastifyRequest, reply: FastifyReply, auth: ApiAuth): boolean {
  return auth.openReads || requireToken(req, reply, auth)
}

/** Thrown by readApiToken when `api.token_file` cannot be used. */
export class ApiTokenError extends Error {
  readonly code = 'PXEBOX_API_TOKEN'
}

/**
 * The token from config `api`: `token`, or the first line of `token_file` (as systemd credentials and Kubernetes
 * secrets are mounted). Undefined when neither is set. Read at start and on reload.
 */
export function readApiToken(api: { readonly token?: string | undefined; readonly token_file?: string | undefined }): string | undefined {
  if (api.token !== undefined) return api.token
  if (api.token_file === undefined) return undefined
  let text: string
  try {
    // A regular file of at most 64 KiB: a token file pointed at a FIFO or /dev/zero must not stall a reload.
    text = readConfigFileSync(api.token_file, 64 * 1024)
  } catch (err) {
    throw new ApiTokenError(`api.token_file ${api.token_file} cannot be read: ${(err as Error).message}`)
  }
  const token = text.split(/\r?\n/)[0]!.trim()
  if (token.length < 16) throw new ApiTokenError(`api.token_file ${api.token_file}: the token on its first line must be 16 or more characters`)
  return token
}
