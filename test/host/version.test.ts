import t from 'tap'
import { readFileSync } from 'node:fs'
import { execFileSync } from 'node:child_process'
import { VERSION } from '../../src/host/version.js'

// The version comes from package.json wherever the module sits (src/host/ here, dist/src/host/ in the build and the
// Debian package); the re-layout moved it one folder down and the build then reported 0.0.0-unknown.
const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }

t.test('the source module reads package.json', async (t) => {
  t.equal(VERSION, pkg.version)
})

t.test('the compiled CLI reports the same version', async (t) => {
  const out = execFileSync(process.execPath, [new URL('../../dist/src/main.js', import.meta.url).pathname, 'version'], { encoding: 'utf8' })
  t.equal(out.trim(), pkg.version)
})
