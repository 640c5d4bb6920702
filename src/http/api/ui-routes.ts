/**
 * The dashboard at `/ui/`: three committed files from `src/ui/` (HTML, one vanilla JS file, CSS) served as they are,
 * with no build step. The folder is found next to the sources whether pxebox runs from `src/` (tsx, tests) or from
 * the compiled `dist/src/` (tsc does not copy non-TS files, so dist points back at the source tree).
 */
import { existsSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { FastifyInstance, FastifyReply } from 'fastify'

const FILES: Readonly<Record<string, string>> = {
  'index.html': 'text/html; charset=utf-8',
  'app.js': 'text/javascript; charset=utf-8',
  'style.css': 'text/css; charset=utf-8',
}

/** The `src/ui` folder, or undefined when neither candidate holds index.html. */
export function findUiDir(): string | undefined {
  const here = fileURLToPath(new URL('.', import.meta.url))
  return [join(here, '../../ui'), join(here, '../../../../src/ui')].find((d) => existsSync(join(d, 'index.html')))
}

/** Register `/ui/` (index.html), `/ui/app.js`, `/ui/style.css`. */
export function registerUiRoutes(app: FastifyInstance, dir: string | undefined = findUiDir()): void {
  app.get('/ui', (_req, reply) => reply.redirect('/ui/', 301))
  const serve = async (name: string, reply: FastifyReply) => {
    const type = FILES[name]
    if (type === undefined || dir === undefined) {
      return reply.code(404).type('text/plain; charset=utf-8').send(dir === undefined ? 'dashboard files not installed (src/ui)\n' : `no such file: ${name}\n`)
    }
    // Small files, read per request so an edited dashboard shows on reload; no caching headers to go stale.
    return reply.type(type).header('cache-control', 'no-cache').send(await readFile(join(dir, name)))
  }
  app.get('/ui/', (_req, reply) => serve('index.html', reply))
  app.get<{ Params: { file: string } }>('/ui/:file', (req, reply) => serve(req.params.file, reply))
}
