// Template values land in Ignition JSON and Butane YAML as values, never as structure (issue 13 item 8): the
// attack (a hostname= label with a newline and a `local:` entry reading another machine's secret from
// butane_files_dir), its JSON twin, and values with quotes, colons, `{{`, YAML indicators in every scalar style.
import t from 'tap'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { prepareIgnitionSource, renderIgnition, type PreparedIgnition } from '../../src/ignition/render.js'

const filesDir = mkdtempSync(join(tmpdir(), 'pxebox-inject-'))
writeFileSync(join(filesDir, 'other-machine.key'), 'SECRET-OF-ANOTHER-MACHINE')

async function prepare(file: string, text: string): Promise<PreparedIgnition> {
  const p = await prepareIgnitionSource({ file, text, filesDir })
  if (!p.ok) throw new Error(JSON.stringify(p.errors))
  return p.prepared
}

/** The bytes of an Ignition data URL (`data:,percent` or `data:;base64,`). */
function dataUrlText(source: string): string {
  const m = /^data:([^,]*),(.*)$/s.exec(source)
  if (!m) throw new Error(`not a data URL: ${source}`)
  return m[1]!.endsWith(';base64') ? Buffer.from(m[2]!, 'base64').toString('utf8') : decodeURIComponent(m[2]!)
}

type Files = { path: string; contents?: { source?: string } }[]

const butane = `variant: fcos
version: 1.5.0
storage:
  files:
    - path: /etc/hostname
      contents:
        inline: {{ .request.query.hostname }}
`

t.test('Butane: a hostname label with a newline and contents.local stays the hostname file text', async (t) => {
  const attack = 'node1\n    - path: /root/stolen.key\n      contents:\n        local: other-machine.key'
  const r = await renderIgnition(await prepare('h.bu', butane), { metadata: {}, labels: { hostname: attack } })
  t.ok(r.ok, JSON.stringify(r))
  if (!r.ok) return
  t.notMatch(r.json, /SECRET/, 'no file content from butane_files_dir in the answer')
  const files = (JSON.parse(r.json) as { storage: { files: Files } }).storage.files
  t.same(files.map((f) => f.path), ['/etc/hostname'], 'no file entry added')
  t.equal(dataUrlText(files[0]!.contents!.source!), attack, 'the value, byte for byte, as the file content')
})

t.test('Ignition JSON: a label closing the string cannot add a storage section', async (t) => {
  const text = '{"ignition":{"version":"3.4.0"},"systemd":{"units":[{"name":"host.service","contents":"HOST={{ .request.query.hostname }}"}]}}'
  const attack = 'h"}]},"storage":{"files":[{"path":"/root/stolen","contents":{"source":"data:,pwned"}}]},"passwd":{"users":[{"name":"core","gecos":"'
  const r = await renderIgnition(await prepare('h.ign', text), { metadata: {}, labels: { hostname: attack } })
  t.ok(r.ok, JSON.stringify(r))
  if (!r.ok) return
  const config = JSON.parse(r.json) as { storage?: unknown; passwd?: unknown; systemd: { units: { contents: string }[] } }
  t.equal(config.storage, undefined)
  t.equal(config.passwd, undefined)
  t.equal(config.systemd.units[0]!.contents, `HOST=${attack}`)
})

t.test('Ignition JSON: a bare value is one JSON value; numbers stay numbers', async (t) => {
  const text = '{"ignition":{"version":"3.4.0"},"storage":{"files":[{"path":"/etc/x","mode":{{ .request.query.mode }}}]}}'
  const p = await prepare('m.ign', text)
  const ok = await renderIgnition(p, { metadata: {}, labels: { mode: '420' } })
  t.match(ok, { ok: true, json: /"mode":420\}/ })
  const injected = await renderIgnition(p, { metadata: {}, labels: { mode: '420,"overwrite":true,"user":{"name":"root"}' } })
  t.match(injected, { ok: false, error: { kind: 'invalid', message: /mode: expected a permission mode/ } })
  const slash = await prepare('s.ign', '{"ignition":{"version":"3.4.0"},"x":"\\{{ .request.query.a }}"}')
  t.match(await renderIgnition(slash, { metadata: {}, labels: { a: '", "y": "' } }), { ok: false, error: { kind: 'invalid', message: /follows a backslash/ } })
})

const hostile = [
  'a"b',
  "it's",
  'key: value',
  '{{ .secret }}',
  '- item',
  '*alias',
  '&anchor x',
  '!!binary AAAA',
  '# not a comment',
  '[1, 2]',
  '{a: 1}',
  '@at `tick` %pct | > ? :',
  'two\nlines\n  indented',
  'trailing space ',
  '\\n backslash-n',
  'tab\there',
]

t.test('Butane: hostile values come out exactly, in every scalar style', async (t) => {
  const styles: [string, (v: string) => string][] = [
    ['plain', (v) => v],
    ['part of a plain scalar', (v) => `host-${v}`],
    ['double-quoted', (v) => v],
    ['single-quoted', (v) => v],
    ['block literal', (v) => `line1\n${v}\n`],
  ]
  const line = ['inline: pre-{{ .request.query.v }}', 'inline: host-{{ .request.query.v }}', 'inline: "{{ .request.query.v }}"', "inline: '{{ .request.query.v }}'", 'inline: |\n          line1\n          {{ .request.query.v }}']
  for (const [i, [style, expected]] of styles.entries()) {
    const tpl = butane.replace('inline: {{ .request.query.hostname }}', i === 0 ? 'inline: {{ .request.query.v }}' : line[i]!)
    const p = await prepare(`s${i}.bu`, tpl)
    for (const v of hostile) {
      const r = await renderIgnition(p, { metadata: {}, labels: { v } })
      if (!r.ok) {
        t.fail(`${style} ${JSON.stringify(v)}: ${r.error.message}`)
        continue
      }
      const files = (JSON.parse(r.json) as { storage: { files: Files } }).storage.files
      t.equal(files.length, 1, `${style} ${JSON.stringify(v)}: one file`)
      t.equal(dataUrlText(files[0]!.contents!.source!), expected(v), `${style} ${JSON.stringify(v)}`)
    }
  }
})

t.test('Ignition JSON: hostile values come out exactly inside a string', async (t) => {
  const p = await prepare('q.ign', '{"ignition":{"version":"3.4.0"},"systemd":{"units":[{"name":"a.service","contents":"{{ .request.query.v }}"}]}}')
  for (const [i, v] of [...hostile, '"', '\\', '\u0000\u001f', '</script>', '\u2028'].entries()) {
    const r = await renderIgnition(p, { metadata: {}, labels: { v } })
    t.ok(r.ok, `value ${i}`)
    if (r.ok) t.equal((JSON.parse(r.json) as { systemd: { units: { contents: string }[] } }).systemd.units[0]!.contents, v, `value ${i}`)
  }
})

t.test('trusted metadata keeps working: numbers as numbers, a list into a plain scalar is a list', async (t) => {
  const tpl = 'variant: fcos\nversion: 1.5.0\npasswd:\n  users:\n    - name: core\n      ssh_authorized_keys: {{ .keys }}\nstorage:\n  files:\n    - path: /etc/x\n      mode: {{ .mode }}\n'
  const r = await renderIgnition(await prepare('k.bu', tpl), { metadata: { keys: ['ssh-ed25519 AAAA a', 'ssh-ed25519 BBBB b'], mode: '0644' }, labels: {} })
  t.match(r, { ok: true })
  if (!r.ok) return
  const c = JSON.parse(r.json) as { passwd: { users: { sshAuthorizedKeys: string[] }[] }; storage: { files: { mode: number }[] } }
  t.same(c.passwd.users[0]!.sshAuthorizedKeys, ['ssh-ed25519 AAAA a', 'ssh-ed25519 BBBB b'])
  t.equal(c.storage.files[0]!.mode, 0o644)
})
