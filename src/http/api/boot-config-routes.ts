/**
 * `/v1/groups` and `/v1/profiles`: read everything the boot store holds (config.yaml, Matchbox directory, API
 * overlay); create, replace and delete the API's own entries (src/catalog/overlay.ts), which the boot store
 * reloads at once. A change that would not load (a group naming a missing profile, a duplicate selector) is refused
 * with the loader's reasons and nothing is written.
 */
import type { FastifyInstance, FastifyReply } from 'fastify'
import { Type, type Static } from '@sinclair/typebox'
import { GroupSchema, ProfileSchema, type GroupInput, type ProfileInput } from '../../catalog/model-schema.js'
import type { OverlayEdit, OverlayKind } from '../../catalog/overlay.js'
import { planBoot } from '../../catalog/boot-plan.js'
import type { ApiDeps } from './deps.js'
import { GroupViewSchema, IdParams, NoContent, ProfileViewSchema, responses } from './schemas.js'
import { groupView, profileView } from './views.js'

type IdReq = { Params: Static<typeof IdParams> }

/**
 * Why a profile's kernel or initrd URL would not be served, or undefined. The script makes a root-relative path
 * absolute with the public URL (ipxe-script.ts), and pxebox serves files only under `/assets/` (assets_dir) and
 * `/firmware/`; any other root-relative path (`/etc/passwd`, `/assets/../x`) would be a 404 at boot time, found only
 * when a machine fails. Absolute URLs (another server) and iPXE variables (`${base}/x`) are the author's business,
 * as in config.yaml.
 */
export function bootUrlProblem(what: string, url: string, assetsDir: string | undefined): string | undefined {
  if (!url.startsWith('/') || url.startsWith('//')) return undefined
  const path = url.split(/[?#]/)[0]!
  const segments = path.split('/')
  let decoded: string[]
  try {
    decoded = segments.map((seg) => decodeURIComponent(seg))
  } catch {
    decoded = segments
  }
  if ((path.startsWith('/assets/') || path.startsWith('/firmware/')) && !decoded.some((seg) => seg === '..' || seg === '.' || seg.includes('/'))) return undefined
  return `${what} "${url}" is not a file pxebox serves: a root-relative path must be under /assets/ (${assetsDir ? `files in ${assetsDir}` : 'assets_dir'}), without ".." segments; or give an absolute URL (http://host/...)`
}

/** Register group and profile routes on the `/v1` plugin instance. */
export function registerBootConfigRoutes(api: FastifyInstance, deps: ApiDeps): void {
  const managed = (kind: OverlayKind, id: string) => deps.overlay?.has(kind, id) ?? false
  const groupById = (id: string) => deps.store.get().group(id)

  const refuse = (reply: FastifyReply, edit: Exclude<OverlayEdit, { ok: true }>) =>
    reply.code(edit.status).send({ error: edit.errors[0] ?? 'refused', errors: edit.errors })
  const noOverlay = (reply: FastifyReply) => reply.code(501).send({ error: 'this pxebox has no data_dir overlay for API-written groups and profiles' })

  api.get('/groups', { schema: { summary: 'Every group', tags: ['boot'], response: responses({ 200: Type.Object({ groups: Type.Array(GroupViewSchema) }) }, [401]) } }, () => ({
    groups: deps.store.get().groups.map((g) => groupView(g, managed('group', g.id))),
  }))
  api.get<IdReq>(
    '/groups/:id',
    { schema: { summary: 'One group', tags: ['boot'], params: IdParams, response: responses({ 200: GroupViewSchema }, [401, 404]) } },
    (req, reply) => {
      const g = groupById(req.params.id)
      return g ? groupView(g, managed('group', g.id)) : reply.code(404).send({ error: `no group "${req.params.id}"` })
    },
  )
  api.put<IdReq & { Body: GroupInput }>(
    '/groups/:id',
    {
      config: { access: 'write' },
      schema: {
        summary: 'Create or replace an API-managed group (config.yaml shape; id must match the path)',
        tags: ['boot'],
        params: IdParams,
        body: GroupSchema,
        response: responses({ 200: GroupViewSchema }, [400, 401, 403, 409, 422, 501]),
      },
    },
    async (req, reply) => {
      if (!deps.overlay) return noOverlay(reply)
      if (req.body.id !== req.params.id) return reply.code(400).send({ error: `body id "${req.body.id}" differs from the path's "${req.params.id}"` })
      const edit = await deps.overlay.putGroup(req.body)
      if (!edit.ok) return refuse(reply, edit)
      return groupView(groupById(req.params.id)!, true)
    },
  )

  api.get('/profiles', { schema: { summary: 'Every profile', tags: ['boot'], response: responses({ 200: Type.Object({ profiles: Type.Array(ProfileViewSchema) }) }, [401]) } }, () => ({
    profiles: [...deps.store.get().profiles.values()].map((p) => profileView(p, managed('profile', p.id))),
  }))
  api.get<IdReq>(
    '/profiles/:id',
    { schema: { summary: 'One profile', tags: ['boot'], params: IdParams, response: responses({ 200: ProfileViewSchema }, [401, 404]) } },
    (req, reply) => {
      const p = deps.store.get().profiles.get(req.params.id)
      return p ? profileView(p, managed('profile', p.id)) : reply.code(404).send({ error: `no profile "${req.params.id}"` })
    },
  )
  api.put<IdReq & { Body: ProfileInput }>(
    '/profiles/:id',
    {
      config: { access: 'write' },
      schema: {
        summary: 'Create or replace an API-managed profile (config.yaml shape)',
        tags: ['boot'],
        params: IdParams,
        body: ProfileSchema,
        response: responses({ 200: ProfileViewSchema }, [400, 401, 403, 409, 422, 501]),
      },
    },
    async (req, reply) => {
      if (!deps.overlay) return noOverlay(reply)
      if (req.body.id !== undefined && req.body.id !== req.params.id) {
        return reply.code(400).send({ error: `body id "${req.body.id}" differs from the path's "${req.params.id}"` })
      }
      const boot = req.body.boot
      if (boot) {
        const plan = planBoot(boot.kernel, boot.initrd ?? [], boot.args ?? [])
        const urls = plan.ok ? [['kernel', plan.value.kernel] as const, ...plan.value.initrds.map((i) => ['initrd', i.url] as const)] : []
        const problems = urls.flatMap(([what, url]) => bootUrlProblem(what, url, deps.assetsDir) ?? [])
        if (problems.length > 0) return reply.code(400).send({ error: problems[0]!, errors: problems })
      }
      const edit = await deps.overlay.putProfile(req.params.id, req.body)
      if (!edit.ok) return refuse(reply, edit)
      return profileView(deps.store.get().profiles.get(req.params.id)!, true)
    },
  )

  for (const kind of ['group', 'profile'] as const) {
    api.delete<IdReq>(
      `/${kind}s/:id`,
      {
        config: { access: 'write' },
        schema: { summary: `Delete an API-managed ${kind}`, tags: ['boot'], params: IdParams, response: responses({ 204: NoContent }, [401, 403, 404, 409, 422, 501]) },
      },
      async (req, reply) => {
        if (!deps.overlay) return noOverlay(reply)
        const edit = await deps.overlay.remove(kind, req.params.id)
        if (!edit.ok) return refuse(reply, edit)
        return reply.code(204).send()
      },
    )
  }
}
