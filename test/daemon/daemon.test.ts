/**
 * The composition root is honest (issue 14 item 3): nothing in src/daemon/ is reached through a closure over a
 * variable assigned later (startDaemon read the address tracker through closures over `addressServices`, assigned
 * last, and built the catalog with `store!`), there is no `!` non-null assertion there, and the native addon is loaded
 * once per daemon and handed down (HTTP, the interface lookup and the tracker's port 68 pinning each loaded it).
 * The first two read the source with the TypeScript parser; the last starts the daemon on loopback with a counting
 * loadNative (the real one, called through) put in place of host/native.js for the daemon's whole import graph. That
 * one runs the build (dist/, made by `npm test`, as test/helpers/daemon.ts does): tap's mocks reach past the first
 * import only where each import names a file that exists, which src/'s `.js` specifiers for `.ts` files do not.
 */
import t from 'tap'
import { createSocket } from 'node:dgram'
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import ts from 'typescript'
import { parseConfig } from '../../src/config/load.js'
import { silentLogger } from '../../src/host/log.js'
import { loopbackConfigText } from '../helpers/loopback-config.js'

const daemonDir = fileURLToPath(new URL('../../src/daemon', import.meta.url))
const sources = readdirSync(daemonDir)
  .filter((f) => f.endsWith('.ts'))
  .map((f) => ({ name: `src/daemon/${f}`, file: ts.createSourceFile(f, readFileSync(join(daemonDir, f), 'utf8'), ts.ScriptTarget.Latest, true) }))

const lineOf = (file: ts.SourceFile, node: ts.Node): number => file.getLineAndCharacterOfPosition(node.getStart(file)).line + 1

function visit(node: ts.Node, fn: (n: ts.Node) => void): void {
  fn(node)
  ts.forEachChild(node, (c) => visit(c, fn))
}

t.test('no non-null assertion (`x!`) in src/daemon/', async (t) => {
  const found: string[] = []
  for (const { name, file } of sources) {
    visit(file, (n) => {
      if (ts.isNonNullExpression(n)) found.push(`${name}:${lineOf(file, n)} ${n.getText(file)}`)
    })
  }
  t.same(found, [], 'every value the root uses exists when it is used')
})

/**
 * A closure that reads a `let` declared without a value before the statement that first assigns it: the closure
 * runs later, so it depends on start-up order nobody checks (`macForIp: (ip) => addressServices?.queries...` while
 * addressServices is assigned by the last service started). Matched by name within one function body, which is
 * enough for files without shadowing; a `let` given a value where it is declared (a reloadable token) is fine.
 */
function lateBoundReads(file: ts.SourceFile): string[] {
  const out: string[] = []
  visit(file, (fn) => {
    if (!ts.isFunctionLike(fn) || !('body' in fn) || fn.body === undefined || !ts.isBlock(fn.body)) return
    const body = fn.body
    const unassigned = new Set<string>()
    for (const stmt of body.statements) {
      if (!ts.isVariableStatement(stmt) || (stmt.declarationList.flags & ts.NodeFlags.Let) === 0) continue
      for (const d of stmt.declarationList.declarations) if (ts.isIdentifier(d.name) && d.initializer === undefined) unassigned.add(d.name.text)
    }
    for (const v of unassigned) {
      let firstAssignment = Infinity
      visit(body, (n) => {
        if (ts.isBinaryExpression(n) && n.operatorToken.kind === ts.SyntaxKind.EqualsToken && ts.isIdentifier(n.left) && n.left.text === v) {
          firstAssignment = Math.min(firstAssignment, n.getStart(file))
        }
      })
      visit(body, (closure) => {
        if (!(ts.isArrowFunction(closure) || ts.isFunctionExpression(closure)) || closure.getStart(file) > firstAssignment) return
        visit(closure.body, (n) => {
          if (ts.isIdentifier(n) && n.text === v) out.push(`${file.fileName}:${lineOf(file, n)} a closure reads \`${v}\` before it is assigned`)
        })
      })
    }
  })
  return [...new Set(out)]
}

t.test('no closure in src/daemon/ reads a variable before it is assigned', async (t) => {
  t.same(
    sources.flatMap(({ file }) => lateBoundReads(file)),
    [],
    'each service is started before what reads it',
  )
})

t.test('the check above sees the late binding main had (so it is not passing for want of looking)', async (t) => {
  const old = ts.createSourceFile(
    'old.ts',
    `async function start() {
      let tracking: { counts(): number } | undefined
      const metrics = createMetrics({ findingCounts: () => tracking?.counts() ?? 0 })
      tracking = await startTracking()
      let token: string | undefined = read()
      const api = { token: () => token }
    }`,
    ts.ScriptTarget.Latest,
    true,
  )
  t.same(lateBoundReads(old), ['old.ts:3 a closure reads `tracking` before it is assigned'])
})

/** A free UDP port on loopback (closed again: the daemon binds it). */
async function freeUdpPort(): Promise<number> {
  const s = createSocket('udp4')
  await new Promise<void>((resolve) => s.bind(0, '127.0.0.1', resolve))
  const { port } = s.address()
  await new Promise<void>((resolve) => s.close(() => resolve()))
  return port
}

t.test('startDaemon loads the native addon once and hands it to HTTP, the interface lookup and tracking', async (t) => {
  const nativeJs = '../../dist/src/host/native.js'
  const { loadNative } = (await import(new URL(nativeJs, import.meta.url).href)) as typeof import('../../src/host/native.js')
  t.ok(loadNative().addon, 'the addon is built (npm run build)')
  let loads = 0
  const { startDaemon } = await t.mockImport<typeof import('../../src/daemon/daemon.js')>('../../dist/src/daemon/daemon.js', {
    [nativeJs]: {
      loadNative: () => {
        loads++
        return loadNative()
      },
    },
  })
  const dir = t.testdir({ data: {}, assets: {} })
  const config = parseConfig(loopbackConfigText(dir, 'tftp: { enabled: false }', 'tracking: { arp: false }'), join(dir, 'config.yaml'))
  const daemon = await startDaemon(config, silentLogger, { clientPort: await freeUdpPort() })
  t.teardown(() => daemon.close())
  t.match(daemon.banner(), /tracking\s+0 bindings/, 'tracking runs (its port 68 listener is pinned through the addon)')
  t.equal(loads, 1, 'one load, passed down')
})
