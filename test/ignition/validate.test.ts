// Ignition 3.0-3.4 validation: per-version fields, readable errors with file/path/line:col, semantic rules, and the
// spec-version negotiation used when serving.
import t from 'tap'
import { validateIgnition } from '../../src/ignition/validate.js'
import { configForRequestedVersion } from '../../src/ignition/serve-version.js'
import { requestedIgnitionVersion, IGNITION_VERSIONS } from '../../src/ignition/version.js'
import { formatIgnitionError } from '../../src/ignition/errors.js'

const cfg = (version: string, extra: Record<string, unknown> = {}): Record<string, unknown> => ({ ignition: { version }, ...extra })

// One field per spec version, from docs/migrating-configs.md and configuration-v3_4.md.
const FIELD_SINCE: { since: string; name: string; extra: Record<string, unknown>; message: RegExp }[] = [
  { since: '3.1.0', name: 'ignition.proxy', extra: { ignition: { version: 'V', proxy: { httpProxy: 'https://proxy.example.net/' } } }, message: /field "proxy" needs Ignition 3\.1\.0 or later/ },
  { since: '3.1.0', name: 'filesystems mountOptions', extra: { storage: { filesystems: [{ path: '/var/data', device: '/dev/vdb1', format: 'btrfs', mountOptions: ['subvolid=5'] }] } }, message: /field "mountOptions" needs Ignition 3\.1\.0/ },
  { since: '3.2.0', name: 'storage.luks', extra: { storage: { luks: [{ name: 'tpm-example', device: '/dev/sdc', clevis: { tpm2: true } }] } }, message: /field "luks" needs Ignition 3\.2\.0/ },
  { since: '3.2.0', name: 'users shouldExist', extra: { passwd: { users: [{ name: 'core', shouldExist: false }] } }, message: /field "shouldExist" needs Ignition 3\.2\.0/ },
  { since: '3.3.0', name: 'kernelArguments', extra: { kernelArguments: { shouldExist: ['foobar', 'baz boo'], shouldNotExist: ['raboof'] } }, message: /field "kernelArguments" needs Ignition 3\.3\.0/ },
  { since: '3.3.0', name: 'format none', extra: { storage: { filesystems: [{ device: '/dev/vdb1', wipeFilesystem: true, format: 'none' }] } }, message: /expected one of "ext4", "btrfs", "xfs", "vfat", "swap"; got "none"/ },
  { since: '3.4.0', name: 'luks discard', extra: { storage: { luks: [{ name: 'a', device: '/dev/sdb', discard: true }] } }, message: /field "discard" needs Ignition 3\.4\.0/ },
  { since: '3.4.0', name: 'tang advertisement', extra: { storage: { luks: [{ name: 'a', device: '/dev/sdb', clevis: { tang: [{ url: 'https://t', thumbprint: 'x', advertisement: '{}' }] } }] } }, message: /field "advertisement" needs Ignition 3\.4\.0/ },
]

t.test('every version 3.0.0-3.4.0 accepts a minimal config and its own fields, and rejects later ones', async (t) => {
  for (const v of IGNITION_VERSIONS) {
    const r = validateIgnition(JSON.stringify(cfg(v)), { file: `min-${v}.ign` })
    t.ok(r.ok, `minimal ${v} accepted`)
    if (r.ok) t.equal(r.version, v)
  }
  for (const f of FIELD_SINCE) {
    for (const v of IGNITION_VERSIONS) {
      const extra = JSON.parse(JSON.stringify(f.extra).replace('"V"', JSON.stringify(v))) as Record<string, unknown>
      const config = { ...cfg(v), ...extra }
      const r = validateIgnition(JSON.stringify(config, null, 2), { file: 'f.ign' })
      if (v >= f.since) {
        t.ok(r.ok, `${f.name} accepted in ${v}`)
      } else {
        t.notOk(r.ok, `${f.name} rejected in ${v}`)
        // Just below `since` the field itself is named; further down an enclosing newer field (luks) may be.
        const justBelow = IGNITION_VERSIONS[IGNITION_VERSIONS.indexOf(f.since as (typeof IGNITION_VERSIONS)[number]) - 1] === v
        const re = justBelow ? f.message : /needs Ignition 3\.[1-4]\.0 or later|expected one of/
        if (!r.ok) t.match(r.errors.map((e) => e.message).join('\n'), re, `${f.name} in ${v}: says which version`)
      }
    }
  }
})

t.test('schema errors name the file, the JSON path, what was expected and line:col', async (t) => {
  const text = [
    '{',
    '  "ignition": { "version": "3.4.0" },',
    '  "storage": {',
    '    "files": [',
    '      { "path": "/etc/ok", "mode": 420 },',
    '      { "path": "etc/relative", "mode": "0644", "wipe_table": true }',
    '    ]',
    '  },',
    '  "systemd": { "units": [ { "name": "hello" } ] },',
    '  "passwd": { "users": [ { "sshAuthorizedKeys": ["k"] } ] }',
    '}',
  ].join('\n')
  const r = validateIgnition(text, { file: 'bad.ign' })
  t.notOk(r.ok)
  if (r.ok) return
  t.same(
    r.errors.map(formatIgnitionError).sort(),
    [
      'bad.ign:10:26: $.passwd.users[0]: missing required field "name"',
      'bad.ign:6:17: $.storage.files[1].path: expected an absolute path starting with "/"; got "etc/relative"',
      'bad.ign:6:41: $.storage.files[1].mode: expected a permission mode between 0 and 4095 written in decimal (0644 is 420), got string "0644"',
      'bad.ign:6:49: $.storage.files[1].wipe_table: unknown field "wipe_table"; expected one of "path", "overwrite", "user", "group", "contents", "append", "mode"',
      'bad.ign:9:37: $.systemd.units[0].name: expected a unit name with a unit type suffix such as ".service"; got "hello"',
    ].sort(),
  )
})

t.test('snake_case field in Ignition gets a camelCase hint', async (t) => {
  const r = validateIgnition(JSON.stringify(cfg('3.4.0', { passwd: { users: [{ name: 'core', ssh_authorized_keys: ['k'] }] } })), { file: 'x.ign' })
  t.notOk(r.ok)
  if (!r.ok) t.match(r.errors[0]?.message, /did you mean "sshAuthorizedKeys"\?/)
})

t.test('JSON syntax, missing and unsupported versions', async (t) => {
  const syntax = validateIgnition('{\n  "ignition": {"version": "3.4.0"},\n}', { file: 's.ign' })
  t.notOk(syntax.ok)
  if (!syntax.ok) {
    t.equal(syntax.errors[0]?.code, 'json-syntax')
    t.equal(syntax.errors[0]?.line, 3)
  }
  const none = validateIgnition('{"storage": {}}', { file: 'n.ign' })
  t.match(!none.ok && none.errors[0], { path: '$.ignition.version', message: /missing ignition\.version/ })
  const two = validateIgnition('{"ignition": {"version": "2.2.0"}}', { file: 'o.ign' })
  t.match(!two.ok && two.errors[0], { code: 'version', message: /not Ignition spec 3/ })
  const exp = validateIgnition('{"ignition": {"version": "3.5.0-experimental"}}', { file: 'e.ign' })
  t.notOk(exp.ok)
  const arr = validateIgnition('[]', { file: 'a.ign' })
  t.match(!arr.ok && arr.errors[0], { message: /expected an Ignition config object, got array/ })
})

t.test('semantic rules: schemes and hashes per version, duplicates, overwrite without source, data URLs', async (t) => {
  const file = (extra: Record<string, unknown>) => ({ path: '/etc/x', ...extra })
  const cases: [string, Record<string, unknown>, RegExp][] = [
    ['3.1.0', { storage: { files: [file({ contents: { source: 'gs://bucket/object' } })] } }, /URL scheme "gs" needs Ignition 3\.2\.0/],
    ['3.3.0', { storage: { files: [file({ contents: { source: 'arn:aws:s3:::bucket/object' } })] } }, /URL scheme "arn" needs Ignition 3\.4\.0/],
    ['3.0.0', { storage: { files: [file({ contents: { source: 'https://e/x', verification: { hash: `sha256-${'a'.repeat(64)}` } } })] } }, /sha256 hashes need Ignition 3\.1\.0/],
    ['3.4.0', { storage: { files: [file({ contents: { source: 'https://e/x', verification: { hash: 'sha512-abc' } } })] } }, /expected 128 hex digits/],
    ['3.4.0', { storage: { files: [file({}), { path: '/etc/x' }] } }, /duplicate path "\/etc\/x" \(first at \$\.storage\.files\[0\]\.path\)/],
    ['3.4.0', { storage: { files: [file({})], links: [{ path: '/etc/x', target: '/a' }] } }, /duplicate path/],
    ['3.4.0', { systemd: { units: [{ name: 'a.service' }, { name: 'a.service' }] } }, /duplicate unit name/],
    ['3.4.0', { storage: { files: [file({ overwrite: true })] } }, /overwrite is true but contents\.source is not set/],
    ['3.4.0', { storage: { files: [file({ contents: { source: 'data:;base64,@@@' } })] } }, /not base64/],
    ['3.4.0', { storage: { files: [file({ contents: { source: 'ftp://e/x' } })] } }, /unsupported URL scheme "ftp"/],
  ]
  for (const [v, extra, re] of cases) {
    const r = validateIgnition(JSON.stringify(cfg(v, extra)), { file: 's.ign' })
    t.notOk(r.ok, `${re} rejected`)
    if (!r.ok) t.match(r.errors.map((e) => e.message).join('\n'), re)
  }
  const good = validateIgnition(JSON.stringify(cfg('3.2.0', { storage: { files: [file({ contents: { source: 'gs://bucket/object', verification: { hash: `sha256-${'a'.repeat(64)}` } } })] } })), { file: 'g.ign' })
  t.ok(good.ok, 'gs and sha256 fine in 3.2.0')
})

t.test('JSON null means unset, as for Ignition\'s Go pointers', async (t) => {
  const r = validateIgnition(JSON.stringify(cfg('3.0.0', { ignition: { version: '3.0.0', config: { replace: { source: 'https://e/c.ign', verification: { hash: null } } } }, storage: { files: [{ path: '/a', mode: null, contents: { source: null } }] } })), { file: 'n.ign' })
  t.ok(r.ok)
})

t.test('Accept header parsing picks the highest Ignition version', async (t) => {
  t.equal(requestedIgnitionVersion('application/vnd.coreos.ignition+json;version=3.4.0, application/vnd.coreos.ignition+json; version=1;q=0.5, */*;q=0.1'), '3.4.0')
  t.equal(requestedIgnitionVersion('application/vnd.coreos.ignition+json; version=3.2.0'), '3.2.0')
  t.equal(requestedIgnitionVersion('application/vnd.coreos.ignition+json; version=2.2.0, application/vnd.coreos.ignition+json; version=1; q=0.5'), '2.2.0')
  t.equal(requestedIgnitionVersion('*/*'), undefined)
  t.equal(requestedIgnitionVersion(undefined), undefined)
})

t.test('serving: as-is when config <= requested, down-converted when possible, refused otherwise', async (t) => {
  const v32 = validateIgnition(JSON.stringify(cfg('3.2.0', { passwd: { users: [{ name: 'core' }] } })), { file: 'a.ign' })
  t.ok(v32.ok)
  if (!v32.ok) return
  const asIs = configForRequestedVersion(v32.config, v32.version, '3.4.0')
  t.match(asIs, { ok: true, version: '3.2.0', converted: false })
  t.match(configForRequestedVersion(v32.config, v32.version, undefined), { ok: true, version: '3.2.0' })
  t.match(configForRequestedVersion(v32.config, v32.version, '3.5.0'), { ok: true, version: '3.2.0', converted: false }, 'newer Ignition reads older spec')
  const down = configForRequestedVersion(v32.config, v32.version, '3.0.0')
  t.match(down, { ok: true, version: '3.0.0', converted: true })
  if (down.ok) t.equal(down.config.ignition.version, '3.0.0')

  const v34 = validateIgnition(JSON.stringify(cfg('3.4.0', { kernelArguments: { shouldExist: ['quiet'] } })), { file: 'k.ign' })
  t.ok(v34.ok)
  if (!v34.ok) return
  const refused = configForRequestedVersion(v34.config, v34.version, '3.2.0')
  t.match(refused, { ok: false, message: /uses fields 3\.2\.0 lacks.*kernelArguments.*needs Ignition 3\.3\.0/ })
  t.match(configForRequestedVersion(v34.config, v34.version, '2.2.0'), { ok: false, message: /spec 3 configs/ })
})
