// Seeded mutation test: whatever bytes an operator's file holds, the loaders answer with errors, never throw, and
// never report success for something the validator would reject.
import t from 'tap'
import { readFileSync } from 'node:fs'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { validateIgnition } from '../../src/ignition/validate.js'
import { translateButane } from '../../src/ignition/butane/translate.js'
import { parseTemplate, renderTemplate } from '../../src/ignition/template.js'
import { seededRandom } from '../helpers/seeded-random.js'

const examples = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'examples', 'ignition')

const ALPHABET = '{}[]":,0123456789abcdefz- \n\t#|>&*!%@`\'{{ }}.'
function mutate(text: string, rand: () => number): string {
  let s = text
  const edits = 1 + Math.floor(rand() * 4)
  for (let i = 0; i < edits; i++) {
    const at = Math.floor(rand() * (s.length + 1))
    const op = rand()
    const ch = ALPHABET[Math.floor(rand() * ALPHABET.length)] ?? 'x'
    if (op < 0.4) s = s.slice(0, at) + s.slice(at + 1)
    else if (op < 0.8) s = s.slice(0, at) + ch + s.slice(at)
    else s = s.slice(0, at) + ch + s.slice(at + 1)
  }
  return s
}

t.test('validateIgnition never throws on mutated JSON', async (t) => {
  const base = JSON.stringify({ ignition: { version: '3.4.0' }, storage: { files: [{ path: '/a', mode: 420, contents: { source: 'data:,x' } }] }, systemd: { units: [{ name: 'a.service', enabled: true }] }, passwd: { users: [{ name: 'core', sshAuthorizedKeys: ['k'] }] } }, null, 1)
  const rand = seededRandom(6)
  let accepted = 0
  for (let i = 0; i < 400; i++) {
    const text = mutate(base, rand)
    const r = validateIgnition(text, { file: 'm.ign' })
    if (r.ok) {
      accepted++
      // Success must mean the parsed config really passes: re-validate the object.
      t.ok(validateIgnition(r.config, { file: 'm.ign' }).ok)
    } else {
      t.ok(r.errors.length > 0 && r.errors.every((e) => e.file === 'm.ign' && e.path.startsWith('$')), `mutation ${i} has located errors`)
    }
  }
  t.ok(accepted < 400, 'mutations are mostly rejected')
})

t.test('translateButane never throws on mutated Butane', async (t) => {
  const base = readFileSync(join(examples, 'flatcar-two-stage', 'stage2-installed.bu'), 'utf8')
  const rand = seededRandom(7)
  for (let i = 0; i < 200; i++) {
    const r = await translateButane(mutate(base, rand), { file: 'm.bu' })
    if (!r.ok) t.ok(r.errors.length > 0 && r.errors.every((e) => e.file === 'm.bu'), `mutation ${i} has errors`)
    else t.ok(validateIgnition(r.ignition, { file: 'm.bu' }).ok, `mutation ${i} translated to valid Ignition`)
  }
})

t.test('template parse/render never throws on mutated templates', async (t) => {
  const base = readFileSync(join(examples, 'fcos-live-install', 'installed-template.bu'), 'utf8')
  const rand = seededRandom(8)
  for (let i = 0; i < 300; i++) {
    const p = parseTemplate(mutate(base, rand))
    if (p.ok) {
      const r = renderTemplate(p.template, { metadata: { hostname: 'h', ssh_key: 'k', proxy: 'p' }, labels: { mac: 'm' } })
      t.ok(r.ok || r.error.kind === 'missing-key')
    } else t.ok(p.errors.every((e) => e.line >= 1 && e.col >= 1))
  }
})
