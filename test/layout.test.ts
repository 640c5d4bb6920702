// The code map in README.md as a test: every folder of src/ is one layer, imports only point down the list below,
// there are no import cycles, and test/ mirrors src/ (no test folder without a src folder of the same name).
import t from 'tap'
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs'
import { dirname, join, normalize, relative } from 'node:path'
import { fileURLToPath } from 'node:url'

const repo = fileURLToPath(new URL('..', import.meta.url))
const src = join(repo, 'src')

/** Top to bottom: a module may import from its own layer and the layers after it. Keep in step with the README. */
export const LAYERS = ['main.ts', 'daemon', 'config', 'http', 'boot', 'catalog', 'ignition', 'addresses', 'machines', 'dhcp', 'tftp', 'syslog', 'store', 'host', 'ui'] as const

function walk(dir: string, out: string[] = []): string[] {
  for (const entry of readdirSync(dir)) {
    const path = join(dir, entry)
    if (statSync(path).isDirectory()) walk(path, out)
    else if (path.endsWith('.ts')) out.push(path)
  }
  return out
}

function layerOf(file: string): number {
  return LAYERS.indexOf(relative(src, file).split('/')[0] as (typeof LAYERS)[number])
}

function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8')
  return [...text.matchAll(/(?:from|import)\s*\(?\s*['"](\.{1,2}\/[^'"]+)['"]/g)].map((m) => normalize(join(dirname(file), m[1]!)).replace(/\.js$/, '.ts'))
}

const files = walk(src)
const graph = new Map(files.map((f) => [f, importsOf(f)]))

t.test('every top-level entry of src/ is a named layer', async (t) => {
  const unknown = readdirSync(src).filter((e) => !(LAYERS as readonly string[]).includes(e))
  t.same(unknown, [], 'add a new folder to LAYERS (and the README code map) where it belongs')
})

t.test('imports only point down', async (t) => {
  const upward: string[] = []
  for (const [file, deps] of graph) {
    for (const dep of deps) {
      if (!existsSync(dep)) upward.push(`${relative(repo, file)} imports missing ${relative(repo, dep)}`)
      else if (layerOf(dep) < layerOf(file)) upward.push(`${relative(repo, file)} -> ${relative(repo, dep)}`)
    }
  }
  t.same(upward, [])
})

t.test('no import cycles', async (t) => {
  const cycles: string[] = []
  const state = new Map<string, 'open' | 'done'>()
  const stack: string[] = []
  const visit = (node: string): void => {
    state.set(node, 'open')
    stack.push(node)
    for (const dep of graph.get(node) ?? []) {
      if (state.get(dep) === 'open') cycles.push([...stack.slice(stack.indexOf(dep)), dep].map((f) => relative(repo, f)).join(' -> '))
      else if (!state.has(dep)) visit(dep)
    }
    stack.pop()
    state.set(node, 'done')
  }
  for (const f of files) if (!state.has(f)) visit(f)
  t.same(cycles, [])
})

t.test('test/ mirrors src/', async (t) => {
  const shared = new Set(['helpers', 'e2e', 'fixtures', 'deploy', 'main'])
  const strays = readdirSync(join(repo, 'test')).filter((e) => statSync(join(repo, 'test', e)).isDirectory() && !shared.has(e) && !existsSync(join(src, e)))
  t.same(strays, [], 'a test folder names a src folder (or is one of the shared ones: helpers, e2e, fixtures, deploy, main)')
})
