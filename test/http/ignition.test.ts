// /ignition and /generic end to end through buildApp: the Butane examples (examples/ignition/*.yaml) translated and
// validated at load and served as exact JSON, Accept-header versions, per-group template lint (load warning) and the
// request-time 404, a request-dependent invalid render (500), load errors with file:line:col and reload semantics.
import t, { type Test } from 'tap'
import { Writable } from 'node:stream'
import { gunzipSync } from 'node:zlib'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { pino } from 'pino'
import { buildApp } from '../../src/http/app.js'
import { loadBootState } from '../../src/catalog/state.js'
import { createBootStore } from '../../src/catalog/boot-store.js'
import { bootSourcesOf } from '../../src/config/boot-sources.js'
import { loadConfig } from '../../src/config/load.js'
import { memoryEvents } from '../../src/machines/events.js'

const EXAMPLES = new URL('../../examples/ignition/', import.meta.url).pathname
const PUBLIC = 'http://10.0.0.2:8080'
const KEY0 = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPxbox0000000000000000000000000000000000000 operator@pxebox'
const KEY2 = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPxbox0000000000000000000000000000000000002 operator@pxebox'

function captureLogger() {
  const lines: Record<string, unknown>[] = []
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString().split('\n')) if (l) lines.push(JSON.parse(l) as Record<string, unknown>)
      cb()
    },
  })
  return { logger: pino({ level: 'debug' }, stream), lines }
}

async function exampleApp(t: Test, name: string) {
  const config = loadConfig(join(EXAMPLES, `${name}.yaml`))
  const r = await loadBootState(bootSourcesOf(config))
  if (!r.ok) throw new Error(r.errors.join('\n'))
  t.same(r.warnings, [], `${name}: every group provides every key its template uses`)
  const state = r.state
  const events = memoryEvents()
  const app = buildApp({ store: { get: () => state }, assetsDir: EXAMPLES, publicUrl: PUBLIC, events, version: '1' })
  t.teardown(() => app.close())
  return { app, events }
}

t.test('Fedora CoreOS live install: installed.bu translated at load, installed-template.bu rendered per machine', async (t) => {
  const { app, events } = await exampleApp(t, 'fcos-live-install')
  const ipxe = await app.inject({ url: '/ipxe?mac=52-54-00-a1-00-01' })
  t.match(ipxe.body, /coreos\.inst\.ignition_url=http:\/\/10\.0\.0\.2:8080\/ignition\?mac=\$\{mac:hexhyp\}&stage=installed/)

  const node1 = await app.inject({ url: '/ignition?mac=52-54-00-a1-00-01&stage=installed' })
  t.equal(node1.statusCode, 200)
  t.equal(node1.headers['content-type'], 'application/json; charset=utf-8', "Matchbox's type for clients that do not ask for Ignition's")
  t.same(JSON.parse(node1.body), {
    ignition: { version: '3.4.0' },
    kernelArguments: { shouldExist: ['console=ttyS0,115200n8'] },
    passwd: { users: [{ name: 'core', sshAuthorizedKeys: [KEY0] }] },
    storage: {
      directories: [{ path: '/var/lib/pxebox', mode: 0o750 }],
      files: [
        { path: '/etc/hostname', contents: { compression: '', source: 'data:,fcos-node1' }, mode: 0o644 },
        // contents.local from butane_files_dir (examples/ignition/files/motd.txt)
        { path: '/etc/motd.d/pxebox.motd', contents: { compression: '', source: 'data:,Provisioned%20by%20pxebox.%0A' }, mode: 0o644 },
      ],
      links: [{ path: '/etc/localtime', target: '../usr/share/zoneinfo/UTC' }],
    },
    systemd: {
      units: [
        {
          name: 'pxebox-hello.service',
          enabled: true,
          contents:
            '[Unit]\nDescription=Report first boot to the operator\nAfter=network-online.target\nWants=network-online.target\n' +
            '[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=/usr/bin/echo "installed by pxebox"\n[Install]\nWantedBy=multi-user.target\n',
        },
      ],
    },
  })
  t.match(events.events.at(-1), { step: 'ignition', outcome: 'ok', mac: '52:54:00:a1:00:01', detail: { group: 'node1-installed', template: 'installed.bu', version: '3.4.0' } })

  // Ignition 3.4 (FCOS) names its media type in Accept: it gets that type back, with the version served.
  const accept = 'application/vnd.coreos.ignition+json;version=3.4.0, application/vnd.coreos.ignition+json; version=1;q=0.5, */*;q=0.1'
  const node2 = await app.inject({ url: '/ignition?mac=52-54-00-a1-00-02&stage=installed', headers: { accept } })
  t.equal(node2.statusCode, 200)
  t.equal(node2.headers['content-type'], 'application/vnd.coreos.ignition+json; version="3.4.0"; charset=utf-8')
  t.equal(node2.headers['vary'], 'Accept')
  t.same(JSON.parse(node2.body), {
    ignition: { version: '3.4.0' },
    passwd: { users: [{ name: 'core', sshAuthorizedKeys: [KEY2] }] },
    storage: {
      files: [
        { path: '/etc/hostname', contents: { compression: '', source: 'data:,node2.example.com' }, mode: 0o644 },
        // {{ .request.query.mac }}: the label as normalized from the query (mac=52-54-00-a1-00-02)
        { path: '/etc/pxebox/mac', contents: { compression: '', source: 'data:,52%3A54%3A00%3Aa1%3A00%3A02' }, mode: 0o644 },
      ],
    },
  })

  // An older Ignition (3.2, e.g. RHCOS 4.8) gets the same config in its spec version...
  const v32 = await app.inject({ url: '/ignition?mac=52-54-00-a1-00-02&stage=installed', headers: { accept: 'application/vnd.coreos.ignition+json;version=3.2.0' } })
  t.equal(v32.statusCode, 200)
  t.equal(v32.headers['content-type'], 'application/vnd.coreos.ignition+json; version="3.2.0"; charset=utf-8')
  t.same(JSON.parse(v32.body).ignition, { version: '3.2.0' })
  t.same(JSON.parse(v32.body).passwd, JSON.parse(node2.body).passwd)
  // ...but node1's kernelArguments exist only from spec 3.3: 406, not a config that drops them.
  const v32node1 = await app.inject({ url: '/ignition?mac=52-54-00-a1-00-01&stage=installed', headers: { accept: 'application/vnd.coreos.ignition+json;version=3.2.0' } })
  t.equal(v32node1.statusCode, 406)
  t.match(v32node1.body, /^cannot render ignition "installed.bu" for group "node1-installed": .*installed\.bu: .*kernelArguments/)
  t.match(events.events.at(-1), { step: 'ignition', outcome: 'version', detail: { status: 406 } })

  // The live group has no Ignition of its own.
  const live = await app.inject({ url: '/ignition?mac=52-54-00-a1-00-02' })
  t.equal(live.statusCode, 404)
  t.equal(live.body, 'profile "fcos-live" (group "fcos-live") has no ignition config\n')
})

t.test('Flatcar two-stage: stage 1 template rendered with the request query, stage 2 translated at load', async (t) => {
  const { app } = await exampleApp(t, 'flatcar-two-stage')
  const stage1 = await app.inject({ url: '/ignition?mac=52-54-00-b3-00-03' })
  t.equal(stage1.statusCode, 200)
  const cfg = JSON.parse(stage1.body)
  const file = cfg.storage.files[0]
  // Butane gzips inline contents when that is smaller (as butane does); the exact bytes depend on zlib, the text not.
  t.equal(file.contents.compression, 'gzip')
  const script = gunzipSync(Buffer.from(file.contents.source.replace(/^data:;base64,/, ''), 'base64')).toString()
  t.equal(
    script,
    '#!/bin/bash\nset -euo pipefail\n' +
      'curl --retry 10 --fail -o /opt/installer/stage2.ign "http://10.0.0.2:8080/ignition?mac=52-54-00-b3-00-03&stage=installed"\n' +
      'flatcar-install -d /dev/sda -i /opt/installer/stage2.ign\nsystemctl reboot\n',
  )
  t.same(cfg, {
    ignition: { version: '3.4.0' },
    passwd: { users: [{ name: 'core', sshAuthorizedKeys: [KEY0] }] },
    storage: { files: [{ path: '/opt/installer/install.sh', contents: { compression: 'gzip', source: file.contents.source }, mode: 0o755 }] },
    systemd: {
      units: [
        {
          name: 'installer.service',
          enabled: true,
          contents:
            '[Unit]\nRequires=network-online.target\nAfter=network-online.target\n[Service]\nType=oneshot\nRemainAfterExit=true\n' +
            'ExecStart=/opt/installer/install.sh\n[Install]\nWantedBy=multi-user.target\n',
        },
      ],
    },
  })

  // The URL stage 1 fetches is served by the more specific installed group.
  const stage2 = await app.inject({ url: '/ignition?mac=52-54-00-b3-00-03&stage=installed' })
  t.equal(stage2.statusCode, 200)
  t.same(JSON.parse(stage2.body), {
    ignition: { version: '3.4.0' },
    passwd: { groups: [{ name: 'operators' }], users: [{ name: 'core', sshAuthorizedKeys: [KEY0] }] },
    storage: {
      files: [
        { path: '/etc/hostname', contents: { compression: '', source: 'data:,flatcar-node1' }, mode: 0o644 },
        { path: '/etc/flatcar/update.conf', overwrite: true, contents: { compression: '', source: 'data:,GROUP%3Dstable%0AREBOOT_STRATEGY%3Doff%0A' }, mode: 0o644 },
      ],
    },
    systemd: {
      units: [
        { name: 'locksmithd.service', mask: true },
        { name: 'docker.service', enabled: true, dropins: [{ name: '10-wait-network.conf', contents: '[Unit]\nAfter=network-online.target\n' }] },
      ],
    },
  })
})

const TEMPLATE_BU = `variant: fcos
version: 1.5.0
passwd:
  users:
    - name: core
      ssh_authorized_keys:
        - {{ .ssh_key }}
`

t.test('a template key a group lacks: load warning naming group, file and line; 404 with a log line at request', async (t) => {
  const dir = t.testdir({ 'node.bu': TEMPLATE_BU, 'env.txt': 'ROLE={{ .role }}\nMAC={{ .request.query.mac }}\n' })
  const profiles = { p: { ignition: 'node.bu', generic: 'env.txt' } }
  const groups = [
    { id: 'has-key', profile: 'p', selector: { mac: '52:54:00:00:00:01' }, metadata: { ssh_key: KEY2, role: 'worker' } },
    { id: 'lacks-key', profile: 'p', selector: { mac: '52:54:00:00:00:02' } },
  ]
  const r = await loadBootState({ profiles, groups, ignitionDir: dir, genericDir: dir })
  if (!r.ok) throw new Error(r.errors.join('\n'))
  t.same(r.warnings, [
    `${join(dir, 'node.bu')}:7:11: $: template references .ssh_key, which group "lacks-key" metadata and selector do not provide (request labels are .request.query.*) (config.yaml groups[1], profile "p")`,
    `${join(dir, 'env.txt')}:1:6: template references .role, which group "lacks-key" metadata and selector do not provide (config.yaml groups[1], profile "p")`,
  ])
  const state = r.state
  const { logger, lines } = captureLogger()
  const events = memoryEvents()
  const app = buildApp({ store: { get: () => state }, assetsDir: dir, publicUrl: PUBLIC, logger, events, version: '1' })
  t.teardown(() => app.close())

  const ok = await app.inject({ url: '/ignition?mac=52:54:00:00:00:01' })
  t.equal(ok.statusCode, 200)
  t.same(JSON.parse(ok.body), { ignition: { version: '3.4.0' }, passwd: { users: [{ name: 'core', sshAuthorizedKeys: [KEY2] }] } })
  const gen = await app.inject({ url: '/generic?mac=52-54-00-00-00-01' })
  t.equal(gen.statusCode, 200)
  t.equal(gen.body, 'ROLE=worker\nMAC=52:54:00:00:00:01\n')

  const miss = await app.inject({ url: '/ignition?mac=52:54:00:00:00:02' })
  t.equal(miss.statusCode, 404)
  t.equal(
    miss.body,
    `cannot render ignition "node.bu" for group "lacks-key": ${join(dir, 'node.bu')}: template references .ssh_key at line 7:11, which this machine's group and request do not provide\n`,
  )
  t.match(lines.at(-1), { level: 40, msg: 'ignition not served', group: 'lacks-key', profile: 'p', template: 'node.bu', reason: /\.ssh_key at line 7:11/ })
  t.match(events.events.at(-1), { step: 'ignition', outcome: 'missing-key', detail: { status: 404 } })
  const genMiss = await app.inject({ url: '/generic?mac=52:54:00:00:00:02' })
  t.equal(genMiss.statusCode, 404)
  t.match(genMiss.body, /env\.txt: template references \.role at line 1:6/)
})

t.test('a render that only fails for some request is a 500 with a log line, never a partial config', async (t) => {
  // The path comes from the request: the load-time trial render (placeholder "example-p") already warns about it.
  const dir = t.testdir({ 'x.ign': '{"ignition":{"version":"3.4.0"},"storage":{"files":[{"path":"{{ .request.query.p }}"}]}}' })
  const r = await loadBootState({ profiles: { x: { ignition: 'x.ign' } }, groups: [{ id: 'g', profile: 'x' }], ignitionDir: dir })
  if (!r.ok) throw new Error(r.errors.join('\n'))
  t.match(r.warnings, [/x\.ign \(rendered\):1:\d+: \$\.storage\.files\[0\]\.path: .*rendered for group "g"/])
  const state = r.state
  const { logger, lines } = captureLogger()
  const app = buildApp({ store: { get: () => state }, assetsDir: dir, publicUrl: PUBLIC, logger, version: '1' })
  t.teardown(() => app.close())
  const good = await app.inject({ url: '/ignition?p=/etc/motd' })
  t.equal(good.statusCode, 200)
  t.equal(good.body, '{"ignition":{"version":"3.4.0"},"storage":{"files":[{"path":"/etc/motd"}]}}')
  const bad = await app.inject({ url: '/ignition?p=etc/motd' })
  t.equal(bad.statusCode, 500)
  t.match(bad.body, /^cannot render ignition "x\.ign" for group "g": .*x\.ign \(rendered\):1:\d+: \$\.storage\.files\[0\]\.path: /)
  t.notMatch(bad.body, /"ignition"/)
  t.match(lines.at(-1), { level: 50, msg: 'ignition render failed', group: 'g' })
})

t.test('a bad Ignition or Butane file is a load error with file:line:col; a reload keeps the last good state', async (t) => {
  const dir = t.testdir({ 'good.ign': '{"ignition":{"version":"3.3.0"}}', 'node.bu': 'variant: fcos\nversion: 1.5.0\n' })
  const sources = { profiles: { a: { ignition: 'good.ign' }, b: { ignition: 'node.bu' } }, groups: [{ id: 'a', profile: 'a' }], ignitionDir: dir }
  const store = await createBootStore({ ...sources, watch: false })
  t.teardown(() => store.close())
  const first = store.get()

  writeFileSync(join(dir, 'good.ign'), '{\n  "ignition": {"version": "3.3.0"},\n  "storage": {"files": [{"path": "/x", "mode": "420"}]}\n}\n')
  writeFileSync(join(dir, 'node.bu'), 'variant: fcos\nversion: 1.5.0\nboot_device:\n  mirror:\n    devices: [/dev/sda]\n')
  const r = await store.reload()
  t.equal(r.ok, false)
  if (!r.ok) {
    t.match(r.errors, [
      new RegExp(`^${join(dir, 'good.ign')}:3:\\d+: \\$\\.storage\\.files\\[0\\]\\.mode: .*\\(ignition of config\\.yaml profiles\\.a\\)$`),
      `${join(dir, 'node.bu')}:3:1: $.boot_device: unsupported field "boot_device": boot_device (LUKS/mirrored root) is not translated by pxebox; run butane and serve the .ign (ignition of config.yaml profiles.b)`,
    ])
    t.equal(r.errors.length, 2)
  }
  t.equal(store.get(), first, 'the previous state keeps serving')
  const app = buildApp({ store, assetsDir: dir, publicUrl: PUBLIC, version: '1' })
  t.teardown(() => app.close())
  const res = await app.inject({ url: '/ignition?mac=52:54:00:00:00:09' })
  t.equal(res.body, '{"ignition":{"version":"3.3.0"}}')
})

t.test('profiles sharing a file prepare it once and report its errors once; generic syntax errors are load errors', async (t) => {
  const dir = t.testdir({ 'bad.ign': '{"ignition":{"version":"2.2.0"}}', 'g.txt': 'x={{ .a | upper }}\n' })
  const r = await loadBootState({
    profiles: { a: { ignition: 'bad.ign' }, b: { ignition: 'bad.ign', generic: 'g.txt' } },
    groups: [],
    ignitionDir: dir,
    genericDir: dir,
  })
  t.equal(r.ok, false)
  if (!r.ok) {
    t.equal(r.errors.filter((e) => e.includes('bad.ign')).length, 1)
    t.match(r.errors, [/bad\.ign:1:\d+: \$\.ignition\.version: .*2\.2\.0/, new RegExp(`^${join(dir, 'g.txt')}:1:3: unsupported template action`)])
  }
})
