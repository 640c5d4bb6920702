// Template subset: parse errors, rendering with metadata + request labels, load-time lint and the request-time
// missing-key error.
import t from 'tap'
import { lintTemplate, parseTemplate, renderTemplate, type ParsedTemplate } from '../../src/ignition/template.js'

function parsed(text: string): ParsedTemplate {
  const r = parseTemplate(text)
  if (!r.ok) throw new Error(JSON.stringify(r.errors))
  return r.template
}

t.test('renders keys, nested keys, request labels and conditionals without escaping', async (t) => {
  const tpl = parsed('host={{ .hostname }} role={{.k8s.role}} mac={{ .request.query.mac }} q={{.request.raw_query}}\n{{ if .proxy }}proxy={{ .proxy }}{{ else }}direct{{ end }}\n{{- if .none }}x{{ end -}}\n<&"> {{ .n }} {{ .list }}')
  const r = renderTemplate(tpl, {
    metadata: { hostname: 'node1', k8s: { role: 'worker' }, proxy: 'http://p:3128', n: 7, list: ['a', 'b'] },
    labels: { mac: '52-54-00-12-34-56', uuid: 'u' },
  })
  t.same(r, { ok: true, text: 'host=node1 role=worker mac=52-54-00-12-34-56 q=mac=52-54-00-12-34-56&uuid=u\nproxy=http://p:3128<&"> 7 ["a","b"]' })
  const r2 = renderTemplate(parsed('{{ if .proxy }}p{{ else }}direct{{ end }}'), { metadata: { proxy: '' }, labels: {} })
  t.same(r2, { ok: true, text: 'direct' }, 'Go truthiness: empty string is false')
})

t.test('request time: a missing key is a typed error, never partial output', async (t) => {
  const tpl = parsed('a={{ .a }}\nb={{ .b.c }}\n')
  const r = renderTemplate(tpl, { metadata: { a: 1, b: {} }, labels: {} })
  t.same(r, { ok: false, error: { kind: 'missing-key', key: '.b.c', line: 2, col: 3, message: "template references .b.c at line 2:3, which this machine's group and request do not provide" } })
  const label = renderTemplate(parsed('{{ .request.query.serial }}'), { metadata: {}, labels: { mac: 'x' } })
  t.match(label, { ok: false, error: { kind: 'missing-key', key: '.request.query.serial' } })
  const nul = renderTemplate(parsed('{{ .a }}'), { metadata: { a: null }, labels: {} })
  t.match(nul, { ok: false, error: { kind: 'missing-key' } }, 'null is missing, not "<no value>"')
})

t.test('load time lint: missing metadata keys with line numbers; request labels and guarded refs count as provided', async (t) => {
  const tpl = parsed('x: {{ .hostname }}\ny: {{ .ssh_key }}\nz: {{ .request.query.mac }} {{ .request.raw_query }}\n{{ if .proxy }}p: {{ .proxy }} {{ .proxy_user }}{{ end }}\n{{ if .net }}{{ .net.gw }}{{ end }}\n')
  t.same(lintTemplate(tpl, { hostname: 'h' }), [
    { key: '.ssh_key', line: 2, col: 4 },
    { key: '.proxy_user', line: 4, col: 32 },
  ])
  t.same(lintTemplate(tpl, { hostname: 'h', ssh_key: 'k', proxy_user: 'u' }), [])
  t.same(lintTemplate(parsed('{{ .request.other }}'), {}), [{ key: '.request.other', line: 1, col: 1 }], 'only query.* and raw_query come from the request')
})

t.test('syntax errors carry line:col', async (t) => {
  const cases: [string, RegExp, number, number][] = [
    ['a\n  {{ .x', /unclosed action/, 2, 3],
    ['{{ printf "%s" .x }}', /unsupported template action/, 1, 1],
    ['x {{ end }}', /"end" without a matching "if"/, 1, 3],
    ['{{ if .a }}\n{{ else }}{{ else }}{{ end }}', /"else" without a matching "if"/, 2, 11],
    ['\n{{ if .a }}x', /"if" without "end"/, 2, 1],
    ['{{ if eq .a 1 }}{{ end }}', /unsupported template action/, 1, 1],
    ['{{ .a..b }}', /unsupported template action/, 1, 1],
  ]
  for (const [text, re, line, col] of cases) {
    const r = parseTemplate(text)
    t.notOk(r.ok, text)
    if (!r.ok) t.match(r.errors[0], { line, col, message: re }, text)
  }
  t.ok(parseTemplate('{{/* comment */}}').ok, 'comments allowed')
})
