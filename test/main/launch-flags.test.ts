// Every way pxebox is started gives Node the same flags: V8's young-generation size and its old space's growing
// factor are read at process start only (v8.setFlagsFromString afterwards does not resize the heap), so the Debian
// launcher, the container's ENTRYPOINT, the executable's shebang and `npm start` each carry them, and bench/storm.ts
// and bench/dhcp.ts measure with what debian/pxebox says.
import t from 'tap'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

const repo = fileURLToPath(new URL('../..', import.meta.url))
const read = (path: string): string => readFileSync(repo + path, 'utf8')

/** The `--` flags between `node` and the script in a command line split into words. */
function flagsBefore(words: readonly string[], script: RegExp): string[] {
  const node = words.findIndex((w) => /(^|\/)node$/.test(w))
  const main = words.findIndex((w) => script.test(w))
  if (node < 0 || main < node) return ['<no node ... main.js in this line>']
  return words.slice(node + 1, main)
}

const launchers: Record<string, string[]> = {
  'debian/pxebox': flagsBefore(/^exec .*$/m.exec(read('debian/pxebox'))?.[0].split(' ') ?? [], /main\.js$/),
  'Containerfile ENTRYPOINT': flagsBefore(JSON.parse(/^ENTRYPOINT (\[.*\])$/m.exec(read('Containerfile'))?.[1] ?? '[]') as string[], /main\.js$/),
  // `#!/usr/bin/env -S node FLAGS`: the script is the file itself.
  'src/main.ts shebang': flagsBefore([...(read('src/main.ts').split('\n')[0] ?? '').split(' '), 'main.js'], /^main\.js$/),
  'package.json start': flagsBefore((JSON.parse(read('package.json')) as { scripts: Record<string, string> }).scripts.start!.split(' '), /main\.js$/),
}

t.test('the young generation and the old space growth are set at start', async (t) => {
  t.same(launchers['debian/pxebox'], ['--max-semi-space-size=2', '--heap-growing-percent=20'], 'debian/pxebox')
})

t.test('every launcher gives the same flags', async (t) => {
  for (const [where, flags] of Object.entries(launchers)) t.same(flags, launchers['debian/pxebox'], where)
})

t.test('the shebang uses env -S (several words after the interpreter)', async (t) => {
  t.match(read('src/main.ts').split('\n')[0], /^#!\/usr\/bin\/env -S node( --\S+)+$/)
})
