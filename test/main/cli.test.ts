/**
 * The pxebox binary as an operator meets it: help, version, validate exit codes, the privileged-port message,
 * a clean stop on SIGTERM, SIGHUP with a bad config keeping the old one, and the firmware manifest check.
 * Daemons run inside a network namespace of this file's own (only `lo`), so real ports 67/69/4011/8080 are used.
 */
import t, { type Test } from 'tap'
import { execFileSync, spawn, spawnSync } from 'node:child_process'
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
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

t.test('a running daemon: banner, SIGHUP with a bad then a good config, a clean stop on SIGTERM', { skip: !isRoot && 'needs root for a network namespace' }, async (t) => {
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
  // Exit 0 and the stop line prove SIGTERM was handled; the bound only catches a hang (systemd waits 90 s, podman 10).
  t.ok(took < 10_000, `stopped in ${took} ms`)
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

/** A billion-laughs config: nine aliases of nine aliases ... of a list of nine strings (9^9 nodes expanded). */
function aliasBomb(): string {
  let text = 'x-bomb:\n  l0: &l0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
  for (let i = 1; i <= 8; i++) text += `  l${i}: &l${i} [${Array(9).fill(`*l${i - 1}`).join(',')}]\n`
  return text
}

t.test('validate: an alias bomb, 10,001 groups and a FIFO are config errors (exit 2), not an unexpected failure or a hang', async (t) => {
  const bomb = setup(aliasBomb())
  const b = cli(['validate', '--config', bomb.file])
  t.equal(b.code, 2, b.stderr)
  t.match(b.stderr, `${bomb.file}:9:12: YAML aliases expand too far (over 10000 nodes through *aliases: an alias bomb?)`)
  t.notMatch(b.stderr, /unexpected failure/)

  const groups = Array.from({ length: 10_001 }, (_, i) => `  - { id: g${i}, profile: p }\n`).join('')
  const many = setup(`profiles:\n  p: { boot: { kernel: /assets/k } }\ngroups:\n${groups}`)
  const m = cli(['validate', '--config', many.file])
  t.equal(m.code, 2, m.stderr)
  t.match(m.stderr, `${many.file}:9:1: groups: 10001 groups, the limit is 10000`)

  const fifo = join(many.dir, 'fifo.yaml')
  execFileSync('mkfifo', [fifo])
  const f = cli(['validate', '--config', fifo])
  t.equal(f.code, 2, f.stderr)
  t.match(f.stderr, `${fifo}: cannot read config: not a regular file: it is a FIFO (named pipe)`)
})

/** Resolves once `pid` catches `signal` (its SigCgt mask has the bit): the earliest moment a handler can run. */
async function caught(pid: number, signal: number): Promise<void> {
  for (;;) {
    const mask = /^SigCgt:\s*([0-9a-f]+)$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? '0'
    if ((BigInt(`0x${mask}`) >> BigInt(signal - 1)) & 1n) return
    await new Promise((r) => setTimeout(r, 2))
  }
}

const SIGHUP = 1

/** A config that needs no privileges: HTTP on a free loopback port, DHCP, TFTP and tracking off. */
function unprivileged(kernel: string): string {
  return `interface: lo\naddress: 127.0.0.1\ndata_dir: ./data\nassets_dir: ./assets\ndhcp: { mode: off }\ntftp: { enabled: false }\ntracking: { enabled: false }\nhttp: { listen: "127.0.0.1:0" }\nprofiles:\n  p1: { boot: { kernel: ${kernel} } }\ngroups:\n  - { id: g1, profile: p1 }\n`
}

const BANNER = /^\s+HTTP\s+/m

/**
 * tap's process-info hook re-adds itself to children's NODE_OPTIONS, and with it a signal-exit handler that
 * re-raises a signal nobody else listens to yet: a child started plainly would die of an early SIGHUP in tests only.
 */
const PLAIN = ['env', '-u', 'NODE_OPTIONS']

t.test('SIGHUP during start-up (50 ms after spawn) is applied once started, and the daemon keeps running', async (t) => {
  const { file } = setup()
  writeFileSync(file, unprivileged('/assets/k1'))
  const d = runPxebox(['serve', '--config', file], { prefix: PLAIN })
  t.teardown(() => d.kill())
  await new Promise((r) => setTimeout(r, 50))
  writeFileSync(file, unprivileged('/assets/k2'))
  // Node's own bootstrap (before any of pxebox's code runs) can outlast 50 ms on a loaded box; the signal goes as
  // soon after 50 ms as the process can catch it, which must be before start-up ends.
  await caught(d.child.pid!, SIGHUP)
  t.notMatch(d.stdout(), BANNER, 'sent while still starting (no banner yet)')
  d.child.kill('SIGHUP')
  await d.waitFor(/SIGHUP during start-up: reloading now/, 30_000)
  await d.waitFor(/SIGHUP: config reloaded/, 30_000)
  const port = (await d.waitFor(/listening on 127\.0\.0\.1:(\d+)/))[1]
  const script = execFileSync('curl', ['-fsS', '--max-time', '10', `http://127.0.0.1:${port}/ipxe?mac=52:54:00:00:00:01`], { encoding: 'utf8' })
  t.match(script, /\/assets\/k2/, 'the reloaded profile serves')
  t.equal(d.child.exitCode, null, 'still running')
  d.child.kill('SIGTERM')
  t.equal(await d.exited, 0)
})

t.test('SIGTERM during start-up stops cleanly: exit 0 once what was started is closed', async (t) => {
  const { file } = setup()
  writeFileSync(file, unprivileged('/assets/k1'))
  const d = runPxebox(['serve', '--config', file], { prefix: PLAIN })
  t.teardown(() => d.kill())
  await new Promise((r) => setTimeout(r, 50))
  await caught(d.child.pid!, SIGHUP)
  t.notMatch(d.stdout(), BANNER, 'sent while still starting (no banner yet)')
  d.child.kill('SIGTERM')
  t.equal(await d.exited, 0, d.stdout() + d.stderr())
  t.notMatch(d.stdout(), BANNER, 'never announced itself as running')
})

t.test('as PID 1 of a PID namespace (a container), SIGTERM during start-up still stops it', { skip: !isRoot && 'needs root for a PID namespace' }, async (t) => {
  const { file } = setup()
  writeFileSync(file, unprivileged('/assets/k1'))
  const d = runPxebox(['serve', '--config', file], { prefix: ['unshare', '--pid', '--fork', '--kill-child', ...PLAIN] })
  t.teardown(() => d.kill())
  // unshare forks pxebox as PID 1 of the new namespace; signal it directly, as a container runtime does.
  let pid: number | undefined
  while (pid === undefined) {
    const children = readFileSync(`/proc/${d.child.pid}/task/${d.child.pid}/children`, 'utf8').trim()
    if (children !== '') pid = Number(children.split(' ')[0])
    else await new Promise((r) => setTimeout(r, 2))
  }
  t.match(readFileSync(`/proc/${pid}/status`, 'utf8'), /^NSpid:\s+\d+\s+1$/m, 'pxebox is PID 1 in its namespace')
  await caught(pid, SIGHUP)
  t.notMatch(d.stdout(), BANNER, 'sent while still starting (no banner yet)')
  process.kill(pid, 'SIGTERM')
  t.equal(await d.exited, 0, d.stdout() + d.stderr())
})

/**
 * systemd's notify socket, played by a Python datagram receiver (Node has no AF_UNIX datagram sockets): an abstract
 * name, as systemd uses. Each datagram is printed as one JSON line.
 */
const NOTIFY_RECEIVER = `
import json, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind('\\0' + sys.argv[1])
print(json.dumps('bound'), flush=True)
while True:
    print(json.dumps(s.recv(4096).decode()), flush=True)
`

t.test('under systemd (NOTIFY_SOCKET): READY=1 once serving, RELOADING=1 ... READY=1 around a SIGHUP, STOPPING=1', { skip: spawnSync('python3', ['-c', '']).status !== 0 && 'needs python3 for the receiving socket' }, async (t) => {
  const name = `pxebox-cli-notify-${process.pid}`
  const receiver = spawn('python3', ['-c', NOTIFY_RECEIVER, name], { stdio: ['ignore', 'pipe', 'inherit'] })
  t.teardown(() => void receiver.kill())
  const states: string[] = []
  let partial = ''
  receiver.stdout.on('data', (d: Buffer) => {
    const lines = (partial + d.toString()).split('\n')
    partial = lines.pop()!
    for (const line of lines) states.push(JSON.parse(line) as string)
  })
  const seen = async (pattern: RegExp, ms = 30_000) => {
    const until = Date.now() + ms
    while (Date.now() < until) {
      const hit = states.find((s) => pattern.test(s))
      if (hit !== undefined) return hit
      await new Promise((r) => setTimeout(r, 20))
    }
    throw new Error(`no ${pattern} in ${JSON.stringify(states)}`)
  }
  await seen(/^bound$/)

  const { file } = setup()
  writeFileSync(file, unprivileged('/assets/k1'))
  const d = runPxebox(['serve', '--config', file], { prefix: PLAIN, env: { ...childEnv(), NOTIFY_SOCKET: `@${name}` } })
  t.teardown(() => d.kill())
  const ready = await seen(/^READY=1/)
  t.match(ready, /^STATUS=serving \(config .*config\.yaml\)$/m, 'READY=1 with a STATUS= line')
  t.match(d.stdout(), BANNER, 'sent once started (the banner is out)')
  const port = (await d.waitFor(/listening on 127\.0\.0\.1:(\d+)/))[1]

  writeFileSync(file, unprivileged('/assets/k2'))
  const before = process.hrtime.bigint() / 1000n
  d.child.kill('SIGHUP')
  const reloading = await seen(/^RELOADING=1/)
  const usec = BigInt(/^MONOTONIC_USEC=(\d+)$/m.exec(reloading)?.[1] ?? '0')
  t.ok(usec >= before, 'RELOADING=1 carries MONOTONIC_USEC on CLOCK_MONOTONIC, after the signal (Type=notify-reload needs it)')
  const readyAgain = await seen(/^READY=1\nSTATUS=serving \(config .*, reloaded\)$/)
  t.ok(states.indexOf(readyAgain) > states.indexOf(reloading), 'READY=1 after the reload')
  const script = execFileSync('curl', ['-fsS', '--max-time', '10', `http://127.0.0.1:${port}/ipxe?mac=52:54:00:00:00:01`], { encoding: 'utf8' })
  t.match(script, /\/assets\/k2/, 'the reload was done when READY=1 came')

  d.child.kill('SIGTERM')
  await seen(/^STOPPING=1$/)
  t.equal(await d.exited, 0)
})
