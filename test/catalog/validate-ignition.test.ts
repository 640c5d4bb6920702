// `pxebox validate` (the real CLI, dist/src/main.js) on Ignition and Butane: an invalid .ign and an unsupported
// Butane field are problems with file:line:col (exit 2); a template key a group lacks is a printed warning (exit 0);
// the shipped Ignition examples validate.
import t, { type Test } from 'tap'
import { spawnSync } from 'node:child_process'
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { childEnv, PXEBOX_BIN } from '../helpers/daemon.js'

const EXAMPLES = new URL('../../examples/ignition/', import.meta.url).pathname

function validate(file: string) {
  const r = spawnSync(process.execPath, [PXEBOX_BIN, 'validate', '--config', file], { encoding: 'utf8', timeout: 30_000, env: childEnv() })
  return { code: r.status, stdout: r.stdout, stderr: r.stderr }
}

function configDir(t: Test, files: Record<string, Record<string, string>>, yaml: string): { dir: string; file: string } {
  const dir = t.testdir({ ...files, 'config.yaml': `interface: lo\nassets_dir: ./assets\ntftp: { enabled: false }\n${yaml}` })
  mkdirSync(join(dir, 'assets'))
  return { dir, file: join(dir, 'config.yaml') }
}

t.test('an invalid .ign and an unsupported Butane field: every problem with file and line, exit 2', async (t) => {
  const { dir, file } = configDir(
    t,
    {
      ignition: {
        'node.ign': '{\n  "ignition": { "version": "3.4.0" },\n  "systemd": { "units": [ { "name": "x.service", "enabled": "yes" } ] }\n}\n',
        'node.bu': 'variant: fcos\nversion: 1.5.0\nstorage:\n  trees:\n    - local: tree\n',
      },
    },
    'profiles:\n  a: { ignition: node.ign }\n  b: { ignition: node.bu }\n',
  )
  const r = validate(file)
  t.equal(r.code, 2, r.stderr)
  t.match(r.stderr, /^2 problems:\n/)
  t.match(r.stderr, new RegExp(`  ${join(dir, 'ignition', 'node.ign')}:3:\\d+: \\$\\.systemd\\.units\\[0\\]\\.enabled: .*boolean.* \\(ignition of ${file} profiles\\.a\\)\\n`))
  t.match(
    r.stderr,
    `  ${join(dir, 'ignition', 'node.bu')}:4:3: $.storage.trees: unsupported field "trees": storage.trees is not translated by pxebox; list the files with contents.local instead (ignition of ${file} profiles.b)\n`,
  )
})

t.test('a template key a group lacks: a warning line, still exit 0', async (t) => {
  const { dir, file } = configDir(
    t,
    { ignition: { 'node.bu': 'variant: fcos\nversion: 1.5.0\nstorage:\n  files:\n    - path: /etc/hostname\n      contents:\n        inline: {{ .hostname }}\n' } },
    'profiles:\n  p: { ignition: node.bu }\ngroups:\n  - { id: ok, profile: p, selector: { mac: "52:54:00:00:00:01" }, metadata: { hostname: a } }\n  - { id: nohost, profile: p, selector: { mac: "52:54:00:00:00:02" } }\n',
  )
  const r = validate(file)
  t.equal(r.code, 0, r.stderr)
  t.match(r.stdout, `${file}: ok`)
  t.equal(
    r.stderr,
    `warning: ${join(dir, 'ignition', 'node.bu')}:7:17: $: template references .hostname, which group "nohost" metadata and selector do not provide (request labels are .request.query.*) (${file} groups[1], profile "p")\n`,
  )
})

t.test('the shipped Ignition examples validate cleanly', async (t) => {
  for (const name of ['fcos-live-install', 'flatcar-two-stage']) {
    const file = join(EXAMPLES, `${name}.yaml`)
    const r = validate(file)
    t.equal(r.code, 0, r.stderr)
    t.equal(r.stderr, '', `${name}: no warnings`)
  }
})
