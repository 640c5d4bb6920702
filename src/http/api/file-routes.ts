/**
 * `/v1/ignition/:name` and `/v1/generic/:name` (Matchbox's names for them): the files API-written profiles name,
 * kept in the Store beside the groups and profiles, so with etcd every appliance serves them (issue 17). The body
 * is the file itself (`content-type: text/plain`, as `curl --data-binary @node.bu` sends it with that header); the
 * name's extension decides Butane or Ignition, as in ignition_dir. A write is checked as the loader checks the file
 * (422 with its message), refused for a name the local directory has (409: the local file wins, as config.yaml's
 * own groups and profiles do), and a delete is refused while a profile names the file (409).
 */
import type { FastifyInstance } from 'fastify'
import { Type, type Static } from '@sinclair/typebox'
import type { FileKind } from '../../catalog/overlay.js'
import type { ApiDeps } from './deps.js'
import { NoContent, responses } from './schemas.js'

const NameParams = Type.Object({ name: Type.String({ minLength: 1, maxLength: 200 }) })
type NameReq = { Params: Static<typeof NameParams> }

const FileWritten = Type.Object({
  kind: Type.String(),
  name: Type.String(),
  bytes: Type.Integer({ description: 'UTF-8 length of the stored text' }),
  warnings: Type.Array(Type.String(), { description: 'loader warnings of the groups using it (missing template keys)' }),
})

/** Register the file routes on the `/v1` plugin instance. */
export function registerFileRoutes(api: FastifyInstance, deps: ApiDeps): void {
  for (const kind of ['ignition', 'generic'] as const satisfies readonly FileKind[]) {
    api.get<NameReq>(
      `/${kind}/:name`,
      { schema: { summary: `An API-written ${kind} file (its text)`, tags: ['boot'], params: NameParams, response: responses({}, [401, 404, 501]) } },
      (req, reply) => {
        if (!deps.overlay) return reply.code(501).send({ error: 'this pxebox has no store for API-written files' })
        const text = deps.overlay.file(kind, req.params.name)
        if (text === undefined) return reply.code(404).send({ error: `no API-managed ${kind} "${req.params.name}"` })
        return reply.type('text/plain; charset=utf-8').send(text)
      },
    )
    api.put<NameReq & { Body: unknown }>(
      `/${kind}/:name`,
      {
        config: { access: 'write' },
        schema: {
          summary: `Create or replace an API-managed ${kind} file (body: the file, content-type text/plain)`,
          tags: ['boot'],
          params: NameParams,
          response: responses({ 200: FileWritten }, [400, 401, 403, 409, 415, 422, 501]),
        },
      },
      async (req, reply) => {
        if (!deps.overlay) return reply.code(501).send({ error: 'this pxebox has no store for API-written files' })
        if (typeof req.body !== 'string') return reply.code(415).send({ error: `send the ${kind} file itself as the body, with content-type text/plain` })
        const edit = await deps.overlay.putFile(kind, req.params.name, req.body)
        if (!edit.ok) return reply.code(edit.status).send({ error: edit.errors[0] ?? 'refused', errors: edit.errors })
        return { kind, name: req.params.name, bytes: Buffer.byteLength(req.body), warnings: edit.warnings }
      },
    )
    api.delete<NameReq>(
      `/${kind}/:name`,
      {
        config: { access: 'write' },
        schema: { summary: `Delete an API-managed ${kind} file`, tags: ['boot'], params: NameParams, response: responses({ 204: NoContent }, [401, 403, 404, 409, 422, 501]) },
      },
      async (req, reply) => {
        if (!deps.overlay) return reply.code(501).send({ error: 'this pxebox has no store for API-written files' })
        const edit = await deps.overlay.remove(kind, req.params.name)
        if (!edit.ok) return reply.code(edit.status).send({ error: edit.errors[0] ?? 'refused', errors: edit.errors })
        return reply.code(204).send()
      },
    )
  }
}
