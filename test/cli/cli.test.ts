/**
 * The pxebox binary as an operator meets it: help, version, validate exit codes, the privileged-port message,
 * SIGTERM within 2 s, SIGHUP with a bad config keeping the old one, and the firmware manifest check.
 * Daemons run inside a network namespace of this file's own (only `lo`), so real ports 67/69/4011/8080 are used.
 */
import t, { type Test } from 'tap'
import { execFileSync, spawnSync } from 'node:child_process'
import { chmodSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { childEnv, PXEBOX_BIN, runPxebox } from '../helpers/daemon.js'

const isRoot = process.getuid?.() === 0

function cli(args: string[], opts: { prefix?: string[] } = {}) {
  const argv = [...(opts.prefix ?? []), process.execPath, PXEBOX_BIN, ...args]
  const r = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8', timeout: 20_000, env: childEnv() })
  return { code: r.status, stdout: r.stdout, stderr: r.stderr }
}

/** A config folder with firmware (real manifest, fake files unless `firmware` given) and assets. */
function setup(extra = '', iface = 'lo'): { dir: string; file: string } {
  const dir = mkdtempSync(join(tmpdir(), 'pxebox-cli-'))
  chmodSync(dir, 0o755)
  mkdirSync(join(dir, 'firmware'))
  mkdirSync(join(dir, 'assets'))
  mkdirSync(join(dir, 'data'))
  chmodSync(join(dir, 'data'), 0o777)
  const file = join(dir, 'config.yaml')
  writeFileSync(
    file,
    `interface: ${iface}\naddress: 127.0.0.1\ndata_dir: ./data\nassets_dir: ./assets\ntftp: { root: ./firmware }\nhttp: { listen: "127.0.0.1:8080" }\n${extra}`,
  )
  return { dir, file }
}

t.test('help and version', async (t) => {
  const help = cli(['--help'])
  t.equal(help.code, 0)
  for (const cmd of ['serve --config FILE', 'validate --config FILE', 'version']) t.match(help.stdout, cmd)
  const v = cli(['version'])
  t.equal(v.code, 0)
  t.match(v.stdout, /^\d+\.\d+\.\d+/)
  const bad = cli(['frobnicate'])
  t.equal(bad.code, 2)
  t.match(bad.stderr, 'unknown command "frobnicate"')
  const noConfig = cli(['serve'])
  t.equal(noConfig.code, 2)
  t.match(noConfig.stderr, '--config FILE is required')
})

t.test('validate: exit 0 on a good config, 2 with every problem on a bad one', async (t) => {
  const good = setup()
  const ok = cli(['validate', '--config', good.file])
  t.equal(ok.code, 0, ok.stderr)
  t.match(ok.stdout, `${good.file}: ok`)
  const bad = setup('dhcp: { mode: nope }\nbogus: 1\ngroups:\n  - id: a\n    profile: p\n    selector: { mac: xx }\n')
  const r = cli(['validate', '--config', bad.file])
  t.equal(r.code, 2)
  t.match(r.stderr, `${bad.file}:7:9: dhcp.mode: expected one of "proxy", "authoritative", "off", got "nope"`)
  t.match(r.stderr, `${bad.file}:8:1: bogus: unknown key "bogus"`)
  t.match(r.stderr, `${bad.file}:12:17: groups[0].selector.mac: bad MAC "xx"`)
  const missing = cli(['validate', '--config', '/nonexistent/pxebox.yaml'])
  t.equal(missing.code, 2)
  t.match(missing.stderr, '/nonexistent/pxebox.yaml: cannot read config: file not found')
})

t.test('serve without the capability for ports 67/69: exit 2 naming the fixes', { skip: !isRoot && 'needs root to drop to an unprivileged user' }, async (t) => {
  const { file } = setup()
  const r = cli(['serve', '--config', file], { prefix: ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', '--inh-caps=-all'] })
  t.equal(r.code, 2, r.stdout + r.stderr)
  t.match(r.stderr, 'pxebox needs to bind privileged ports (dhcp 67, tftp 69) but lacks CAP_NET_BIND_SERVICE')
  t.match(r.stderr, "setcap 'cap_net_bind_service,cap_net_raw=+ep'")
  t.match(r.stderr, 'systemd/pxebox.service')
})

/** A namespace with only lo, removed in teardown. */
function netns(t: Test, name: string): string {
  spawnSync('ip', ['netns', 'del', name])
  execFileSync('ip', ['netns', 'add', name])
  execFileSync('ip', ['-n', name, 'link', 'set', 'lo', 'up'])
  t.teardown(() => void spawnSync('ip', ['netns', 'del', name]))
  return name
}

/** GET a URL from inside the namespace with curl; returns the body or throws. */
function curlIn(ns: string, url: string): string {
  return execFileSync('ip', ['netns', 'exec', ns, 'curl', '-fsS', '--max-time', '5', url], { encoding: 'utf8' })
}

t.test('a running daemon: banner, SIGHUP with a bad then a good config, SIGTERM within 2 s', { skip: !isRoot && 'needs root for a network namespace' }, async (t) => {
  const ns = netns(t, 'pxcli-sig')
  const { file } = setup('profiles:\n  p1: { boot: { kernel: /assets/k } }\ngroups:\n  - { id: g1, profile: p1 }\n')
  const d = runPxebox(['serve', '--config', file], { netns: ns })
  t.teardown(() => d.kill())
  await d.waitFor(/HTTP\s+http:\/\/127\.0\.0\.1:8080/)
  t.match(d.stdout(), /interface\s+lo/)
  t.match(d.stdout(), /DHCP\s+proxy on 127\.0\.0\.1:67/)
  t.match(d.stdout(), /TFTP\s+127\.0\.0\.1:69/)
  t.match(curlIn(ns, 'http://127.0.0.1:8080/'), /1 group/)

  writeFileSync(file, 'interface: lo\ndhcp: { mode: [broken\n')
  d.child.kill('SIGHUP')
  await d.waitFor(/new config rejected, the old one keeps serving/)
  t.match(curlIn(ns, 'http://127.0.0.1:8080/'), /1 group/, 'old config still serving after a bad reload')
  t.match(curlIn(ns, 'http://127.0.0.1:8080/ipxe?mac=52:54:00:00:00:01'), /kernel http:\/\/127\.0\.0\.1:8080\/assets\/k/)

  const next = setup('profiles:\n  p1: { boot: { kernel: /assets/k } }\n  p2: { boot: { kernel: /assets/k2 } }\ngroups:\n  - { id: g1, profile: p1 }\n  - { id: g2, profile: p2, selector: { mac: "52:54:00:00:00:02" } }\n')
  writeFileSync(file, execFileSync('cat', [next.file], { encoding: 'utf8' }).replace('./data', join(next.dir, 'data')).replace('./assets', join(next.dir, 'assets')).replace('./firmware', join(next.dir, 'firmware')))
  d.child.kill('SIGHUP')
  await d.waitFor(/SIGHUP: config reloaded/)
  t.match(curlIn(ns, 'http://127.0.0.1:8080/ipxe?mac=52-54-00-00-00-02'), /kernel http:\/\/127\.0\.0\.1:8080\/assets\/k2/)

  const sent = Date.now()
  d.child.kill('SIGTERM')
  const code = await d.exited
  const took = Date.now() - sent
  t.equal(code, 0)
  t.ok(took < 2000, `stopped in ${took} ms`)
  t.match(d.stdout() + d.stderr(), /stopped/)
})

t.test('firmware checked against its manifest at start: missing and changed files reported, daemon still starts', { skip: !isRoot && 'needs root for a network namespace' }, async (t) => {
  const ns = netns(t, 'pxcli-fw')
  const { dir, file } = setup()
  const good = Buffer.from('pretend iPXE build')
  const sha = (b: Buffer) => execFileSync('sha256sum', { input: b, encoding: 'utf8' }).split(' ')[0]
  writeFileSync(join(dir, 'firmware', 'manifest.json'), JSON.stringify({
    source: 'test',
    files: {
      'undionly.kpxe': { sha256: sha(good), for: 'BIOS' },
      'ipxe.efi': { sha256: sha(good), for: 'UEFI' },
      'snponly.efi': { sha256: sha(good), for: 'UEFI SNP' },
    },
  }))
  writeFileSync(join(dir, 'firmware', 'undionly.kpxe'), good)
  writeFileSync(join(dir, 'firmware', 'ipxe.efi'), Buffer.from('tampered'))
  const d = runPxebox(['serve', '--config', file], { netns: ns })
  t.teardown(() => d.kill())
  await d.waitFor(/HTTP\s+http:/)
  const all = d.stdout() + d.stderr()
  t.match(all, /firmware ipxe\.efi differs from manifest\.json/)
  t.match(all, /firmware snponly\.efi is missing/)
  t.notMatch(all, /undionly\.kpxe (differs|is missing)/)
  t.match(d.stdout(), /firmware\s+.*1 ok, 1 changed, 1 missing/)
  d.child.kill('SIGTERM')
  t.equal(await d.exited, 0)
})
