/**
 * The OpenAPI 3.1 document of `/v1`, written from the routes' own schemas (the ones that validate requests and
 * responses), so the document cannot drift from what the server enforces. OpenAPI 3.1 schemas are JSON Schema, which
 * is what typebox produces; only path parameters are lifted out of their object schema as the format requires.
 */
import type { FastifySchema } from 'fastify'

/** A route as registered, for the document. */
export interface DocumentedRoute {
  readonly method: string | string[]
  readonly url: string
  readonly schema: FastifySchema & Record<string, unknown>
  readonly access: 'open' | 'read' | 'write' | 'machine'
}

type JsonSchema = { properties?: Record<string, unknown>; required?: string[]; description?: string; [k: string]: unknown }

/** Drop typebox's symbol keys and undefined values by a JSON round trip. */
const plain = <T>(v: T): T => JSON.parse(JSON.stringify(v)) as T

const ACCESS_TEXT: Record<DocumentedRoute['access'], string> = {
  open: 'No token.',
  read: 'Bearer token unless the config sets api.open_reads: true.',
  write: 'Bearer token (api.token / api.token_file).',
  machine: 'No token from an IP address the machine was seen using; else the bearer token.',
}

/** Build the document. */
export function openApiDocument(routes: readonly DocumentedRoute[], version: string): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {}
  for (const r of routes) {
    const path = r.url.replace(/:([A-Za-z0-9_]+)/g, '{$1}')
    const methods = (Array.isArray(r.method) ? r.method : [r.method]).filter((m) => m !== 'HEAD')
    for (const method of methods) {
      const s = r.schema
      const parameters: unknown[] = []
      for (const [where, schema] of [['path', s.params], ['query', s.querystring]] as const) {
        const obj = schema as JsonSchema | undefined
        for (const [name, prop] of Object.entries(obj?.properties ?? {})) {
          parameters.push({ name, in: where, required: where === 'path' || (obj?.required ?? []).includes(name), schema: plain(prop) })
        }
      }
      const responses: Record<string, unknown> = {}
      for (const [code, schema] of Object.entries((s.response ?? {}) as Record<string, JsonSchema>)) {
        const produces = (s.produces as string[] | undefined)?.[0] ?? 'application/json'
        responses[code] =
          code === '204'
            ? { description: 'no content' }
            : { description: schema.description ?? (Number(code) < 400 ? 'ok' : 'error'), content: { [produces]: { schema: plain(schema) } } }
      }
      paths[path] ??= {}
      paths[path][method.toLowerCase()] = {
        ...(s.summary ? { summary: s.summary } : {}),
        description: [s.description, `Access: ${ACCESS_TEXT[r.access]}`].filter(Boolean).join('\n\n'),
        ...(s.tags ? { tags: s.tags } : {}),
        ...(parameters.length ? { parameters } : {}),
        ...(s.body ? { requestBody: { required: true, content: { 'application/json': { schema: plain(s.body) } } } } : {}),
        responses,
        ...(r.access === 'write' || r.access === 'read' ? { security: [{ bearer: [] }] } : {}),
      }
    }
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'pxebox API',
      version,
      description: 'Machines and their boot timelines, leases and findings, groups and profiles. Boot endpoints (/ipxe, /ignition, ...) are not part of it.',
    },
    servers: [{ url: '/' }],
    components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
    paths,
  }
}
