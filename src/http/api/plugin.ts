/**
 * The `/v1` API as one encapsulated fastify plugin: its own Ajv for request validation (unknown keys rejected, no
 * silent stripping or coercion), response validation against the same schemas before anything is sent (a bug that
 * would send a malformed machine record becomes a logged 500 instead), JSON errors, bearer-token access per route
 * (`config.access`), and the route list the OpenAPI document is written from.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest, FastifySchema, RouteOptions } from 'fastify'
import { Ajv, type ValidateFunction } from 'ajv'
import { requireRead, requireToken } from './auth.js'
import type { Access, ApiDeps } from './deps.js'
import { registerMachineRoutes } from './machine-routes.js'
import { registerBootConfigRoutes } from './boot-config-routes.js'
import { registerAssignRoute } from './assign-route.js'
import { registerTrackingRoutes } from './tracking-routes.js'
import { registerApplianceRoutes } from './appliance-routes.js'
import { registerFleetFindingsRoute } from './fleet-findings-routes.js'
import { registerEventStream } from './events-route.js'
import { openApiDocument, type DocumentedRoute } from './openapi.js'
import { MAX_BODY_BYTES, parseJsonBody } from './json-body.js'
import { MAX_FILE_BYTES } from '../../catalog/matchbox-dir.js'
import { registerFileRoutes } from './file-routes.js'
import { StoreError } from '../../store/index.js'

declare module 'fastify' {
  interface FastifyContextConfig {
    access?: Access
  }
  /** Documentation keys of a route schema, published in the OpenAPI document (as @fastify/swagger reads them). */
  interface FastifySchema {
    summary?: string
    description?: string
    tags?: string[]
    produces?: string[]
  }
}

const STORE_DOWN = 'the shared store (etcd) does not answer: API writes are refused until it does (pxebox_store_up in /metrics)'

/** Register `/v1` on `app` (loaded with the app's other plugins at `ready()`/`listen()`). */
export function registerApi(app: FastifyInstance, deps: ApiDeps): void {
  void app.register(
    async (api) => {
      const ajv = new Ajv({ allErrors: true, strict: false })
      const compiled = new WeakMap<object, ValidateFunction>()
      const compile = (schema: object): ValidateFunction => {
        let v = compiled.get(schema)
        if (!v) compiled.set(schema, (v = ajv.compile(schema)))
        return v
      }
      // Each schema is compiled on its first use, not at registration: compiling every route's request and response
      // schemas was 1.4 s of the daemon's 2 s of start-up CPU (7-12 s before the banner at load 15), for routes a
      // booting fleet never calls. fastify reads a failed validator's `errors` off the function it was given.
      const lazy = (schema: object): (() => ValidateFunction) => {
        let v: ValidateFunction | undefined
        return () => (v ??= compile(schema))
      }
      api.setValidatorCompiler(({ schema }) => {
        const validator = lazy(schema)
        const check = Object.assign(
          (data: unknown): boolean => {
            const v = validator()
            const ok = v(data) as boolean
            check.errors = v.errors
            return ok
          },
          { errors: undefined as ValidateFunction['errors'] },
        )
        return check
      })
      api.setSerializerCompiler(({ schema, method, url, httpStatus }) => {
        const validator = lazy(schema)
        return (data: unknown) => {
          const validate = validator()
          if (!validate(data)) {
            throw Object.assign(new Error(`response for ${method} ${url} (${httpStatus}) breaks its schema: ${ajv.errorsText(validate.errors)}`), {
              statusCode: 500,
            })
          }
          return JSON.stringify(data)
        }
      })
      // Bodies are bounded in size and nesting before validation or loading recurse into them (json-body.ts).
      api.removeContentTypeParser('application/json')
      api.addContentTypeParser('application/json', { parseAs: 'string', bodyLimit: MAX_BODY_BYTES }, (_req, body, done) => {
        try {
          done(null, parseJsonBody(body as string))
        } catch (err) {
          done(err as Error, undefined)
        }
      })
      // A file the API stores (file-routes.ts) is sent as itself; bounded as the loader bounds a file it reads.
      api.removeContentTypeParser('text/plain')
      api.addContentTypeParser('text/plain', { parseAs: 'string', bodyLimit: MAX_FILE_BYTES }, (_req, body, done) => done(null, body))
      const routes: DocumentedRoute[] = []
      api.addHook('onRoute', (r: RouteOptions) => {
        if (r.method === 'HEAD' || (Array.isArray(r.method) && r.method.length === 1 && r.method[0] === 'HEAD')) return
        routes.push({ method: r.method, url: r.url, schema: (r.schema ?? {}) as FastifySchema & Record<string, unknown>, access: r.config?.access ?? 'read' })
      })
      api.addHook('onRequest', async (req: FastifyRequest, reply: FastifyReply) => {
        const access = req.routeOptions.config.access ?? 'read'
        if (access === 'open' || access === 'machine') return
        const ok = access === 'write' ? requireToken(req, reply, deps.auth) : requireRead(req, reply, deps.auth)
        if (!ok) return reply
        // A write pxebox could not make durable on the shared store is refused, not half-applied (issue 17).
        if (access === 'write' && deps.storeUp?.() === false) return reply.code(503).send({ error: STORE_DOWN })
      })
      api.setErrorHandler((err: Error & { statusCode?: number; validation?: unknown; validationContext?: string }, req, reply) => {
        if (err.validation) return reply.code(400).send({ error: `${err.validationContext ?? 'request'}: ${err.message}` })
        // The shared store (etcd) is unreachable: the write was refused, not failed; the operator retries later.
        if (err instanceof StoreError && err.code === 'PXEBOX_STORE_UNAVAILABLE') return reply.code(503).send({ error: err.message })
        const status = err.statusCode && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 500
        if (status === 500) req.log.error({ err, path: req.url }, 'API request failed')
        return reply.code(status).send({ error: status === 500 ? 'internal error' : err.message })
      })
      api.setNotFoundHandler((req, reply) => reply.code(404).send({ error: `no such endpoint: ${req.method} ${req.url.split('?')[0]}` }))

      const now = deps.now ?? Date.now
      registerMachineRoutes(api, deps, now)
      registerBootConfigRoutes(api, deps)
      registerFileRoutes(api, deps)
      registerAssignRoute(api, deps, now)
      registerTrackingRoutes(api, deps)
      registerApplianceRoutes(api, deps)
      registerFleetFindingsRoute(api, deps)
      const fanout = registerEventStream(api, deps, now)
      deps.publishEventStats?.(() => fanout.stats())
      let doc: string | undefined
      api.get('/openapi.json', { config: { access: 'open' }, schema: { summary: 'This document (OpenAPI 3.1)', tags: ['meta'] } }, (_req, reply) => {
        doc ??= JSON.stringify(openApiDocument(routes, deps.version))
        return reply.type('application/json; charset=utf-8').send(doc)
      })
    },
    { prefix: '/v1' },
  )
}
