// prepareIgnitionSource/renderIgnition: load-time validation of every kind, request-time render/translate/validate,
// typed errors for missing keys, versions and invalid rendered output; plus the example profiles.
import t from 'tap'
import { readFileSync, readdirSync } from 'node:fs'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { checkIgnitionForGroup, detectIgnitionKind, lintPreparedIgnition, prepareIgnitionSource, renderIgnition } from '../../src/ignition/render.js'
import { validateIgnition } from '../../src/ignition/validate.js'
import { formatIgnitionError } from '../../src/ignition/errors.js'

const examples = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'examples', 'ignition')
const filesDir = join(examples, 'files')

t.test('kind detection by extension and template markers', async (t) => {
  t.equal(detectIgnitionKind('a.ign', '{}'), 'ign')
  t.equal(detectIgnitionKind('a.ignition', '{}'), 'ign')
  t.equal(detectIgnitionKind('a.json', '{"x": "{{ .a }}"}'), 'template-ign')
  t.equal(detectIgnitionKind('a.bu', 'variant: fcos'), 'butane')
  t.equal(detectIgnitionKind('a.yml', '{{ .a }}'), 'template-butane')
  t.equal(detectIgnitionKind('a.txt', ''), undefined)
})

t.test('static Ignition: validated at load, served as written, version negotiated per request', async (t) => {
  const text = '{"ignition": {"version": "3.3.0"}, "kernelArguments": {"shouldExist": ["quiet"]}}'
  const p = await prepareIgnitionSource({ file: 'k.ign', text })
  t.ok(p.ok)
  if (!p.ok) return
  t.same(await renderIgnition(p.prepared, { metadata: {}, labels: {} }), { ok: true, json: text, version: '3.3.0' })
  const old = await renderIgnition(p.prepared, { metadata: {}, labels: {}, requestedVersion: '3.2.0' })
  t.match(old, { ok: false, error: { kind: 'version', message: /k\.ign: config is Ignition 3\.3\.0 and uses fields 3\.2\.0 lacks/ } })
  const bad = await prepareIgnitionSource({ file: 'bad.ign', text: '{"ignition": {"version": "3.3.0"}, "storage": {"files": [{"path": "x"}]}}' })
  t.match(bad, { ok: false, errors: [{ file: 'bad.ign', path: '$.storage.files[0].path', line: 1, message: /absolute path/ }] })
})

t.test('static Butane: translated once at load; down-converted for an older Ignition when it uses nothing newer', async (t) => {
  const p = await prepareIgnitionSource({ file: 'a.bu', text: 'variant: fcos\nversion: 1.5.0\npasswd:\n  users:\n    - name: core\n' })
  t.ok(p.ok)
  if (!p.ok) return
  t.same(await renderIgnition(p.prepared, { metadata: {}, labels: {} }), { ok: true, json: '{"ignition":{"version":"3.4.0"},"passwd":{"users":[{"name":"core"}]}}', version: '3.4.0' })
  t.same(await renderIgnition(p.prepared, { metadata: {}, labels: {}, requestedVersion: '3.1.0' }), { ok: true, json: '{"ignition":{"version":"3.1.0"},"passwd":{"users":[{"name":"core"}]}}', version: '3.1.0' })
  const bad = await prepareIgnitionSource({ file: 'b.bu', text: 'variant: fcos\nversion: 1.5.0\nbogus: 1\n' })
  t.match(bad, { ok: false, errors: [{ file: 'b.bu', line: 3, col: 1, code: 'butane-unknown-field' }] })
})

t.test('template Ignition: syntax checked at load, rendered and validated per request', async (t) => {
  const text = '{"ignition": {"version": "3.4.0"}, "storage": {"files": [{"path": "/etc/hostname", "mode": {{ .mode }}, "contents": {"source": "data:,{{ .hostname }}"}}]}}'
  const p = await prepareIgnitionSource({ file: 't.ign', text })
  t.ok(p.ok)
  if (!p.ok) return
  t.same(lintPreparedIgnition(p.prepared, { metadata: { hostname: 'h' }, id: 'node1' }).map(formatIgnitionError), ['t.ign:1:92: $: template references .mode, which group "node1" metadata and selector do not provide (request labels are .request.query.*)'])
  const ok = await renderIgnition(p.prepared, { metadata: { hostname: 'node1', mode: 420 }, labels: {} })
  t.same(ok, { ok: true, json: text.replace('{{ .mode }}', '420').replace('{{ .hostname }}', 'node1'), version: '3.4.0' })
  t.match(await renderIgnition(p.prepared, { metadata: { hostname: 'node1' }, labels: {} }), { ok: false, error: { kind: 'missing-key', message: /t\.ign: template references \.mode/ } })
  // Selector values are template data too (matchbox collectVariables), keys lower-cased, overriding metadata.
  t.same(lintPreparedIgnition(p.prepared, { metadata: { hostname: 'h' }, selector: { Mode: '420' } }), [])
  t.match(await renderIgnition(p.prepared, { metadata: { hostname: 'node1', mode: 'x' }, selector: { MODE: '493' }, labels: {} }), { ok: true, json: /"mode": 493,/ })
  const invalid = await renderIgnition(p.prepared, { metadata: { hostname: 'node1', mode: '"rw"' }, labels: {} })
  t.match(invalid, { ok: false, error: { kind: 'invalid', message: /t\.ign \(rendered\):1:\d+: \$\.storage\.files\[0\]\.mode: expected a permission mode/ } })
  const syntax = await prepareIgnitionSource({ file: 's.ign', text: '{"a": "{{ .x "}' })
  t.match(syntax, { ok: false, errors: [{ code: 'template-syntax', file: 's.ign', line: 1, col: 8 }] })
})

t.test('load-time check per group: missing keys, then a trial render that must translate and validate', async (t) => {
  const text = 'variant: fcos\nversion: 1.5.0\nstorage:\n  files:\n    - path: /etc/hostname\n      mode: {{ .mode }}\n      contents:\n        inline: {{ .request.query.mac }}\n'
  const p = await prepareIgnitionSource({ file: 'g.bu', text })
  t.ok(p.ok)
  if (!p.ok) return
  t.match(await checkIgnitionForGroup(p.prepared, { id: 'n1', metadata: {} }), [{ code: 'template-missing-key', line: 6, col: 13, message: /\.mode, which group "n1"/ }])
  t.same(await checkIgnitionForGroup(p.prepared, { id: 'n1', metadata: { mode: '0644' }, selector: { mac: '52:54:00:12:34:56' } }), [])
  t.same(
    (await checkIgnitionForGroup(p.prepared, { id: 'n2', metadata: { mode: 'rw' } })).map(formatIgnitionError),
    ['g.bu (rendered):6:13: $.storage.files[0].mode: rendered for group "n2": expected an integer, got "rw"'],
  )
  const staticOk = await prepareIgnitionSource({ file: 's.bu', text: 'variant: fcos\nversion: 1.5.0\n' })
  if (staticOk.ok) t.same(await checkIgnitionForGroup(staticOk.prepared, { metadata: {} }), [])
})

t.test('example profiles translate and validate', async (t) => {
  const metadata = { hostname: 'node1', ssh_key: 'ssh-ed25519 AAAAC3Nza operator@pxebox', pxebox_url: 'http://10.0.0.2:8080' }
  const labels = { mac: '52-54-00-12-34-56' }
  for (const dir of ['fcos-live-install', 'flatcar-two-stage']) {
    for (const name of readdirSync(join(examples, dir))) {
      const file = join(dir, name)
      const p = await prepareIgnitionSource({ file, text: readFileSync(join(examples, file), 'utf8'), filesDir })
      if (!p.ok) {
        t.fail(`${file}: ${p.errors.map(formatIgnitionError).join('; ')}`)
        continue
      }
      t.same(lintPreparedIgnition(p.prepared, { metadata }), [], `${file}: example group metadata provides every key`)
      const r = await renderIgnition(p.prepared, { metadata, labels })
      if (!r.ok) {
        t.fail(`${file}: ${r.error.message}`)
        continue
      }
      const v = validateIgnition(r.json, { file })
      t.ok(v.ok, `${file}: served JSON is valid Ignition ${r.version}`)
    }
  }
  // Spot-check the content that matters for each install path.
  const fcos = await prepareIgnitionSource({ file: 'installed.bu', text: readFileSync(join(examples, 'fcos-live-install', 'installed.bu'), 'utf8'), filesDir })
  if (fcos.ok && 'config' in fcos.prepared) {
    const c = fcos.prepared.config as unknown as { storage: { files: { path: string; contents: { source: string } }[] }; kernelArguments: unknown }
    t.equal(c.storage.files.find((f) => f.path === '/etc/motd.d/pxebox.motd')?.contents.source, 'data:,Provisioned%20by%20pxebox.%0A')
    t.same(c.kernelArguments, { shouldExist: ['console=ttyS0,115200n8'] })
  } else t.fail('installed.bu did not prepare')
  const stage1 = await prepareIgnitionSource({ file: 'stage1.bu', text: readFileSync(join(examples, 'flatcar-two-stage', 'stage1-install.bu'), 'utf8') })
  t.ok(stage1.ok)
  if (!stage1.ok) return
  const r = await renderIgnition(stage1.prepared, { metadata, labels })
  t.ok(r.ok)
  if (!r.ok) return
  const cfg = JSON.parse(r.json) as { storage: { files: { contents: { source: string; compression: string } }[] } }
  const script = cfg.storage.files[0]?.contents
  const body = script?.compression === 'gzip'
    ? (await import('node:zlib')).gunzipSync(Buffer.from(script.source.split(',')[1] ?? '', 'base64')).toString()
    : decodeURIComponent(script?.source.slice('data:,'.length) ?? '')
  t.match(body, /flatcar-install -d \/dev\/sda -i \/opt\/installer\/stage2\.ign/)
  t.match(body, /http:\/\/10\.0\.0\.2:8080\/ignition\?mac=52-54-00-12-34-56&stage=installed/)
  t.match(await renderIgnition(stage1.prepared, { metadata: {}, labels }), { ok: false, error: { kind: 'missing-key' } })
})
