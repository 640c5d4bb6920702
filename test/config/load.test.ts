import t from 'tap'
import { execFileSync } from 'node:child_process'
import { mkdtempSync, mkdirSync, truncateSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ConfigError, formatProblem } from '../../src/config/errors.js'
import { loadConfig, parseConfig } from '../../src/config/load.js'
import { MAX_CONFIG_BYTES } from '../../src/host/read-file.js'
import { MAX_CONFIG_GROUPS } from '../../src/config/schema.js'

/** A folder with firmware/ and assets/ so the folder checks pass unless a test wants them to fail. */
function workdir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'pxebox-config-'))
  mkdirSync(join(dir, 'firmware'))
  mkdirSync(join(dir, 'assets'))
  return dir
}

/** The formatted problems of a config text, or [] when it loads. */
function problems(text: string, dir = workdir()): string[] {
  const file = join(dir, 'config.yaml')
  writeFileSync(file, text)
  try {
    loadConfig(file)
    return []
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err
    return err.problems.map((p) => formatProblem(p).replace(dir + '/', ''))
  }
}

const base = 'interface: eth0\ntftp: { root: ./firmware }\nassets_dir: ./assets\n'

t.test('a minimal config loads with defaults, normalized and frozen', async (t) => {
  const dir = workdir()
  const file = join(dir, 'config.yaml')
  writeFileSync(file, base + 'groups:\n  - id: a\n    profile: p\n    selector: { mac: "52-54-00-AB-CD-EF" }\n  - id: b\n    profile: p\n    selector: { mac: ["5254.00ab.cdee", "52:54:00:ab:cd:ed"] }\n')
  const c = loadConfig(file)
  t.equal(c.file, file)
  t.equal(c.dhcp.mode, 'proxy')
  t.equal(c.dhcp.interface_pinning, 'auto')
  t.equal(c.tftp.root, join(dir, 'firmware'))
  t.equal(c.assets_dir, join(dir, 'assets'))
  t.equal(c.data_dir, '/var/lib/pxebox')
  t.equal(c.tftp.max_window_size, 32)
  t.equal(c.http.listen, '0.0.0.0:8080')
  t.same(c.groups[0]!.selector, { mac: '52:54:00:ab:cd:ef' })
  t.same(c.groups[1]!.selector, { mac: ['52:54:00:ab:cd:ee', '52:54:00:ab:cd:ed'] })
  t.ok(Object.isFrozen(c) && Object.isFrozen(c.tftp) && Object.isFrozen(c.groups[0]!.selector))
})

t.test('YAML syntax error: line and column of the fault', async (t) => {
  t.same(problems('interface: eth0\ndhcp:\n  mode: proxy\n  tftp: [\n'), [
    'config.yaml:5:1: YAML syntax: Flow sequence in block collection must be sufficiently indented and end with a ]',
  ])
  t.same(problems('interface: eth0\n\tdhcp: {}\n'), ['config.yaml:2:1: YAML syntax: Tabs are not allowed as indentation'])
  t.same(problems('interface: eth0\ninterface: eth1\n'), ['config.yaml:2:1: YAML syntax: Map keys must be unique'])
})

t.test('unknown keys, at top level and nested, each with its place and the keys allowed', async (t) => {
  t.same(problems(base + 'intrface: eth1\ndhcp:\n  mode: proxy\n  pinning: off\n'), [
    'config.yaml:4:1: intrface: unknown key "intrface" (expected one of: interface, address, log_level, data_dir, assets_dir, matchbox_dir, ignition_dir, generic_dir, butane_files_dir, dhcp, tracking, tftp, http, api, machines, discovery, syslog, store, profiles, groups)',
    'config.yaml:7:3: dhcp.pinning: unknown key "pinning" (expected one of: mode, interface_pinning, range, netmask, lease_time, router, dns, reservations, decline_hold, arp_probe_ms)',
  ])
})

t.test('wrong types and values', async (t) => {
  t.same(problems(base + 'tftp: { root: ./firmware, max_block_size: big }\n'.replace('tftp', 'http: {}\ntftp2').replace('tftp2: { root: ./firmware, ', 'x: {')), [
    'config.yaml:5:1: x: unknown key "x" (expected one of: interface, address, log_level, data_dir, assets_dir, matchbox_dir, ignition_dir, generic_dir, butane_files_dir, dhcp, tracking, tftp, http, api, machines, discovery, syslog, store, profiles, groups)',
  ])
  t.same(problems('interface: eth0\nassets_dir: ./assets\ntftp:\n  root: ./firmware\n  max_block_size: big\n  max_window_size: 0\n'), [
    'config.yaml:5:3: tftp.max_block_size: expected integer, got "big"',
    'config.yaml:6:3: tftp.max_window_size: expected a number >= 1, got number 0',
  ])
  t.same(problems(base + 'dhcp: { mode: dhcp }\nlog_level: loud\naddress: 10.0.0.300\n'), [
    'config.yaml:4:9: dhcp.mode: expected one of "proxy", "authoritative", "off", got "dhcp"',
    'config.yaml:5:1: log_level: expected one of "fatal", "error", "warn", "info", "debug", "trace", "silent", got "loud"',
    'config.yaml:6:1: address: expected an IPv4 address such as 10.0.0.2, got "10.0.0.300"',
  ])
  t.same(problems(base + 'http: { listen: 8080 }\ngroups: { a: 1 }\n'), [
    'config.yaml:4:9: http.listen: expected string, got number 8080',
    'config.yaml:5:1: groups: expected array, got a mapping',
  ])
  t.same(problems('- a\n- b\n'), ['config.yaml:1:1: expected a mapping of keys (interface:, dhcp:, ...) at the top level'])
})

t.test('bad MAC in a selector, single and in a list', async (t) => {
  t.same(problems(base + 'groups:\n  - id: a\n    profile: p\n    selector:\n      mac: 52:54:00:zz:00:01\n  - id: b\n    profile: p\n    selector: { mac: [52:54:00:00:00:01, "52:54:00:00:01"] }\n'), [
    'config.yaml:8:7: groups[0].selector.mac: bad MAC "52:54:00:zz:00:01": expected six hex byte pairs such as 52:54:00:12:34:56 (also 52-54-00-12-34-56 or 5254.0012.3456)',
    'config.yaml:11:42: groups[1].selector.mac[1]: bad MAC "52:54:00:00:01": expected six hex byte pairs such as 52:54:00:12:34:56 (also 52-54-00-12-34-56 or 5254.0012.3456)',
  ])
})

t.test('missing files and folders', async (t) => {
  const dir = workdir()
  t.same(problems('interface: eth0\ntftp:\n  root: ./no-firmware\nassets_dir: ./assets\nmatchbox_dir: /nonexistent/matchbox\n', dir), [
    `config.yaml:3:3: tftp.root: folder not found: ${dir}/no-firmware`,
    'config.yaml:5:1: matchbox_dir: folder not found: /nonexistent/matchbox',
  ])
  writeFileSync(join(dir, 'afile'), 'x')
  t.same(problems('interface: eth0\ntftp: { root: ./firmware }\nassets_dir: ./afile\n', dir), [
    `config.yaml:3:1: assets_dir: expected a folder, got a file: ${dir}/afile`,
  ])
  // A disabled service's folder is not needed.
  t.same(problems('interface: eth0\ntftp: { enabled: false, root: ./nothing }\nassets_dir: ./assets\n', dir), [])
  t.throws(() => loadConfig(join(dir, 'nope.yaml')), { message: `1 problem in config:\n  ${dir}/nope.yaml: cannot read config: file not found` })
})

t.test('every problem is reported at once', async (t) => {
  const p = problems('interface: eth0\ntftp: { root: ./firmware, bogus: 1 }\nassets_dir: ./assets\nhttp: { listen: nope }\ndhcp: { mode: 1 }\n')
  t.equal(p.length, 3, p.join('\n'))
})

t.test('parseConfig resolves relative paths against the file folder', async (t) => {
  const dir = workdir()
  const c = parseConfig('tftp: { root: firmware }\nassets_dir: assets\ndata_dir: state\n', join(dir, 'c.yaml'))
  t.equal(c.data_dir, join(dir, 'state'))
})

t.test('authoritative DHCP and tracking: defaults, normalized reservations, cross-field checks with places', async (t) => {
  const dir = workdir()
  const file = join(dir, 'config.yaml')
  writeFileSync(
    file,
    base +
      'dhcp:\n  mode: authoritative\n  range: { start: 10.0.0.100, end: 10.0.0.199 }\n  reservations:\n' +
      '    - { mac: "52-54-00-AB-CD-EF", address: 10.0.0.10, hostname: n1 }\n    - { uuid: 8D3C1F2E000040008000525400E2E001, address: 10.0.0.11 }\n',
  )
  const c = loadConfig(file)
  t.match(c.dhcp, { mode: 'authoritative', lease_time: 3600, decline_hold: 600, arp_probe_ms: 500, dns: [] })
  t.same(c.dhcp.reservations, [
    { mac: '52:54:00:ab:cd:ef', address: '10.0.0.10', hostname: 'n1' },
    { uuid: '8d3c1f2e-0000-4000-8000-525400e2e001', address: '10.0.0.11' },
  ])
  t.same(c.tracking, { enabled: true, arp: true, stray_after: 600, conflict_window: 900, allowed_servers: [], max_bindings: 50_000, max_macs: 50_000, max_servers: 64, max_findings: 100 })

  t.same(problems(base + 'dhcp:\n  mode: authoritative\n'), ['config.yaml:5:3: dhcp.mode: authoritative mode needs dhcp.range: { start, end } (the addresses to hand out)'])
  t.same(
    problems(
      base +
        'dhcp:\n  mode: authoritative\n  range: { start: 10.0.0.200, end: 10.0.0.100 }\n  reservations:\n' +
        '    - { mac: "52:54:00:00:00:01", address: 10.0.0.10 }\n    - { mac: "5254.0000.0001", address: 10.0.0.10 }\n    - { address: 10.0.0.12 }\n' +
        'tracking: { stray_after: 0, allowed_servers: [10.0.0.300] }\n',
    ),
    [
      'config.yaml:6:31: dhcp.range.end: range end 10.0.0.100 is below its start 10.0.0.200',
      'config.yaml:9:9: dhcp.reservations[1].mac: MAC 5254.0000.0001 is already reserved by dhcp.reservations[0]',
      'config.yaml:9:32: dhcp.reservations[1].address: address 10.0.0.10 is already reserved by dhcp.reservations[0]',
      'config.yaml:10:7: dhcp.reservations[2]: a reservation needs a mac or a uuid',
      'config.yaml:11:13: tracking.stray_after: expected a number >= 1, got number 0',
      'config.yaml:11:47: tracking.allowed_servers[0]: expected an IPv4 address such as 10.0.0.1, got "10.0.0.300"',
    ],
  )
})

/** A billion-laughs config: nine aliases of nine aliases ... of a list of nine strings (9^9 nodes expanded). */
function aliasBomb(): string {
  let text = 'profiles: {}\nx-bomb:\n  l0: &l0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
  for (let i = 1; i <= 8; i++) text += `  l${i}: &l${i} [${Array(9).fill(`*l${i - 1}`).join(',')}]\n`
  return text
}

t.test('config.yaml that is not a regular file or too large: a clear error at once, never a hang or an OOM (issue 13 item 11)', async (t) => {
  const dir = workdir()
  t.throws(() => loadConfig('/dev/zero'), { message: /\/dev\/zero: cannot read config: not a regular file: it is a character device/ })
  const fifo = join(dir, 'fifo.yaml')
  execFileSync('mkfifo', [fifo])
  // Nobody writes to it: open() without O_NONBLOCK would wait here for a writer forever.
  t.throws(() => loadConfig(fifo), { message: /fifo\.yaml: cannot read config: not a regular file: it is a FIFO \(named pipe\)/ })
  t.throws(() => loadConfig(dir), { message: /cannot read config: not a regular file: it is a folder/ })
  const big = join(dir, 'big.yaml')
  writeFileSync(big, base)
  truncateSync(big, MAX_CONFIG_BYTES + 1)
  t.throws(() => loadConfig(big), { message: new RegExp(`big\\.yaml: cannot read config: too large: it is ${MAX_CONFIG_BYTES + 1} bytes, the limit is ${MAX_CONFIG_BYTES} bytes \\(16 MiB\\)`) })
})

t.test('alias bomb and too many groups: config problems with file:line:col (issue 13 item 13c)', async (t) => {
  t.same(problems(base + aliasBomb()), [
    'config.yaml:7:12: YAML aliases expand too far (over 10000 nodes through *aliases: an alias bomb?); write the values out or use fewer aliases',
  ])
  // Aliases as operators use them still work: one profile anchor named from 200 groups.
  const shared = base + 'profiles:\n  p: { boot: { kernel: /k } }\ngroups:\n' + Array.from({ length: 200 }, (_, i) => `  - { id: g${i}, profile: p, selector: &s${i} { mac: "52:54:00:00:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}" }, metadata: { m: *s${i} } }\n`).join('')
  t.same(problems(shared), [])
  const many = base + 'profiles:\n  p: { boot: { kernel: /k } }\ngroups:\n' + Array.from({ length: MAX_CONFIG_GROUPS + 1 }, (_, i) => `  - { id: g${i}, profile: p }\n`).join('')
  t.same(problems(many), [`config.yaml:6:1: groups: ${MAX_CONFIG_GROUPS + 1} groups, the limit is ${MAX_CONFIG_GROUPS} (put a larger fleet in matchbox_dir or write it through the API)`])
})

t.test('store: sqlite by default; etcd needs endpoints; TLS, prefix and names checked with the key named (issue 17)', async (t) => {
  const dir = workdir()
  const file = join(dir, 'config.yaml')
  writeFileSync(file, base)
  const c = loadConfig(file)
  t.same(c.store, { backend: 'sqlite', endpoints: [], prefix: '/pxebox', site: 'default' }, 'defaults: sqlite, no name (the host name is used)')
  writeFileSync(join(dir, 'ca.pem'), 'x')
  writeFileSync(file, base + 'store: { backend: etcd, endpoints: [https://e1:2379, https://e2:2379], prefix: /fleet/, tls: { ca_file: ca.pem }, site: rack-1, name: pxe-a }\n')
  const e = loadConfig(file)
  t.same(e.store, { backend: 'etcd', endpoints: ['https://e1:2379', 'https://e2:2379'], prefix: '/fleet', tls: { ca_file: join(dir, 'ca.pem') }, site: 'rack-1', name: 'pxe-a' }, 'paths resolved, trailing / dropped')
  t.same(problems(base + 'store: { backend: etcd }\n'), ["config.yaml:4:1: store.endpoints: store.backend is etcd: list the cluster's client URLs, e.g. endpoints: [http://10.0.0.5:2379]"])
  t.same(problems(base + 'store: { backend: etcd, endpoints: [https://e1:2379] }\n'), ['config.yaml:4:25: store.endpoints: https:// endpoints need store.tls.ca_file (the CA of the etcd members)'])
  const tlsDir = workdir()
  t.same(problems(base + 'store: { backend: etcd, endpoints: [http://e1:2379], tls: { ca_file: /nonexistent/ca.pem, cert_file: c.pem } }\n', tlsDir), [
    'config.yaml:4:54: store.tls: store.tls is given but the endpoints are http://: write them as https://',
    'config.yaml:4:54: store.tls: give cert_file and key_file together (a client certificate and its key)',
    'config.yaml:4:61: store.tls.ca_file: file not found: /nonexistent/ca.pem',
    `config.yaml:4:91: store.tls.cert_file: file not found: ${join(tlsDir, 'c.pem')}`,
  ])
  t.same(problems(base + 'store: { backend: consul, endpoints: [e1:2379], prefix: pxebox, name: "a b" }\n'), [
    'config.yaml:4:10: store.backend: expected one of "sqlite", "etcd", got "consul"',
    'config.yaml:4:39: store.endpoints[0]: expected an etcd client URL such as http://10.0.0.5:2379 or https://etcd1:2379, got "e1:2379"',
    'config.yaml:4:49: store.prefix: expected a key prefix starting with /, such as /pxebox, got "pxebox"',
    'config.yaml:4:65: store.name: expected letters, digits, _, . and - (1-63 characters), got "a b"',
  ])
})
