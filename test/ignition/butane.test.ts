// Butane -> Ignition goldens. Each expected JSON is written by hand from the Butane docs (docs/examples.md,
// docs/config-fcos-v1_*.md) and Butane's own translate tests (base/v0_5/translate_test.go), in Butane's output
// form: Go struct key order, empty sections omitted, and `"compression": ""` on inline/local contents.
import t, { type Test } from 'tap'
import { mkdtempSync, writeFileSync, mkdirSync, symlinkSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { gunzipSync } from 'node:zlib'
import { translateButane } from '../../src/ignition/butane/translate.js'
import { formatIgnitionError } from '../../src/ignition/errors.js'

const root = mkdtempSync(join(tmpdir(), 'pxebox-butane-'))
const filesDir = join(root, 'files')
mkdirSync(join(filesDir, 'subdir'), { recursive: true })
writeFileSync(join(filesDir, 'local-file3'), 'file contents\n')
writeFileSync(join(filesDir, 'subdir', 'file-4'), 'subdir file contents\n')
// base/v0_5/translate_test.go "random": incompressible bytes that base64 beats %-escaping on.
writeFileSync(join(filesDir, 'random'), Buffer.from('c09c6c018969a5bf57e41bf44a5fb73950a323a7', 'hex'))
writeFileSync(join(root, 'secret'), 'outside')
symlinkSync(join(root, 'secret'), join(filesDir, 'escape-link'))
t.teardown(() => rmSync(root, { recursive: true, force: true }))

async function golden(t: Test, name: string, yaml: string, expected: unknown): Promise<void> {
  const r = await translateButane(yaml, { file: `${name}.bu`, filesDir })
  if (!r.ok) {
    t.fail(`${name}: ${r.errors.map(formatIgnitionError).join('; ')}`)
    return
  }
  t.equal(JSON.stringify(r.ignition), JSON.stringify(expected), name)
}

t.test('docs/examples.md goldens', async (t) => {
  // "Users and groups", second example (fcos 1.1.0 -> Ignition 3.1.0).
  await golden(t, 'users', `variant: fcos
version: 1.1.0
passwd:
  users:
    - name: user1
      ssh_authorized_keys:
        - key1
      home_dir: /home/user1
      no_create_home: true
      groups:
        - wheel
        - plugdev
      shell: /bin/bash
`, { ignition: { version: '3.1.0' }, passwd: { users: [{ groups: ['wheel', 'plugdev'], homeDir: '/home/user1', name: 'user1', noCreateHome: true, shell: '/bin/bash', sshAuthorizedKeys: ['key1'] }] } })

  // "Using password authentication".
  await golden(t, 'password', `variant: fcos
version: 1.1.0
passwd:
  users:
    - name: user1
      password_hash: $y$j9T$aUmgEDoFIDPhGxEe2FUjc/$C5A...
`, { ignition: { version: '3.1.0' }, passwd: { users: [{ name: 'user1', passwordHash: '$y$j9T$aUmgEDoFIDPhGxEe2FUjc/$C5A...' }] } })

  // "Files": inline contents, mode 0644 (octal in Butane YAML) -> 420, owner ids.
  await golden(t, 'file-inline', `variant: fcos
version: 1.1.0
storage:
  files:
    - path: /opt/file
      contents:
        inline: Hello, world!
      mode: 0644
      user:
        id: 500
      group:
        id: 501
`, { ignition: { version: '3.1.0' }, storage: { files: [{ group: { id: 501 }, path: '/opt/file', user: { id: 500 }, contents: { compression: '', source: 'data:,Hello%2C%20world!' }, mode: 420 }] } })

  // "Files": remote source with compression and verification passed through untouched.
  const hash = 'sha512-4ee6a9d20cc0e6c7ee187daffa6822bdef7f4cebe109eff44b235f97e45dc3d7a5bb932efc841192e46618f48a6f4f5bc0d15fd74b1038abf46bf4b4fd409f2e'
  await golden(t, 'file-source', `variant: fcos
version: 1.1.0
storage:
  files:
    - path: /opt/file2
      contents:
        source: http://example.com/file2
        compression: gzip
        verification:
          hash: ${hash}
      mode: 0644
`, { ignition: { version: '3.1.0' }, storage: { files: [{ path: '/opt/file2', contents: { compression: 'gzip', source: 'http://example.com/file2', verification: { hash } }, mode: 420 }] } })

  // "Files": contents.local from the files dir (content from base/v0_5 translate_test "file-1").
  await golden(t, 'file-local', `variant: fcos
version: 1.1.0
storage:
  files:
    - path: /opt/file3
      contents:
        local: local-file3
      mode: 0644
`, { ignition: { version: '3.1.0' }, storage: { files: [{ path: '/opt/file3', contents: { compression: '', source: 'data:,file%20contents%0A' }, mode: 420 }] } })

  // "systemd units": drop-in, and an enabled unit.
  await golden(t, 'dropin', `variant: fcos
version: 1.1.0
systemd:
  units:
    - name: serial-getty@ttyS0.service
      dropins:
        - name: autologin.conf
          contents: |
            [Service]
            TTYVTDisallocate=no
            ExecStart=
            ExecStart=-/usr/sbin/agetty --autologin core --noclear %I $TERM
`, { ignition: { version: '3.1.0' }, systemd: { units: [{ dropins: [{ contents: '[Service]\nTTYVTDisallocate=no\nExecStart=\nExecStart=-/usr/sbin/agetty --autologin core --noclear %I $TERM\n', name: 'autologin.conf' }], name: 'serial-getty@ttyS0.service' }] } })
  await golden(t, 'unit', `variant: fcos
version: 1.1.0
systemd:
  units:
    - name: hello.service
      enabled: true
      contents: |
        [Unit]
        Description=A hello world unit!
        [Service]
        Type=oneshot
        RemainAfterExit=yes
        ExecStart=/usr/bin/echo "Hello, World!"
        [Install]
        WantedBy=multi-user.target
`, { ignition: { version: '3.1.0' }, systemd: { units: [{ contents: '[Unit]\nDescription=A hello world unit!\n[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=/usr/bin/echo "Hello, World!"\n[Install]\nWantedBy=multi-user.target\n', enabled: true, name: 'hello.service' }] } })

  // "Filesystems and partitions" (without with_mount_unit, which pxebox refuses; see the error test).
  await golden(t, 'disks', `variant: fcos
version: 1.1.0
storage:
  disks:
    - device: /dev/sdb
      wipe_table: true
      partitions:
        - number: 1
          label: var
  filesystems:
    - path: /var
      device: /dev/disk/by-partlabel/var
      format: btrfs
      wipe_filesystem: true
      label: var
`, { ignition: { version: '3.1.0' }, storage: { disks: [{ device: '/dev/sdb', partitions: [{ label: 'var', number: 1 }], wipeTable: true }], filesystems: [{ device: '/dev/disk/by-partlabel/var', format: 'btrfs', label: 'var', path: '/var', wipeFilesystem: true }] } })

  // "LUKS encrypted storage" (fcos 1.2.0 -> 3.2.0); Ignition side matches migrating-configs.md 3.2.0 example
  // (keyFile source data:,REPLACE-THIS-WITH-YOUR-KEY-MATERIAL) plus Butane's explicit empty compression.
  await golden(t, 'luks', `variant: fcos
version: 1.2.0
storage:
  luks:
    - name: static-key-example
      device: /dev/sdb
      key_file:
        inline: REPLACE-THIS-WITH-YOUR-KEY-MATERIAL
    - name: tpm-example
      device: /dev/sdc
      clevis:
        tpm2: true
    - name: tang-example
      device: /dev/sdd
      clevis:
        tang:
          - url: https://tang.example.com
            thumbprint: REPLACE-THIS-WITH-YOUR-TANG-THUMBPRINT
`, { ignition: { version: '3.2.0' }, storage: { luks: [
    { device: '/dev/sdb', keyFile: { compression: '', source: 'data:,REPLACE-THIS-WITH-YOUR-KEY-MATERIAL' }, name: 'static-key-example' },
    { clevis: { tpm2: true }, device: '/dev/sdc', name: 'tpm-example' },
    { clevis: { tang: [{ thumbprint: 'REPLACE-THIS-WITH-YOUR-TANG-THUMBPRINT', url: 'https://tang.example.com' }] }, device: '/dev/sdd', name: 'tang-example' },
  ] } })

  // "Mirrored boot disk" second example's storage part (fcos 1.3.0 -> 3.2.0): size_mib -> sizeMiB, raid.
  await golden(t, 'raid', `variant: fcos
version: 1.3.0
storage:
  disks:
    - device: /dev/sda
      partitions:
        - label: var-1
          size_mib: 8192
  raid:
    - name: md-var
      level: raid1
      devices:
        - /dev/disk/by-partlabel/var-1
        - /dev/disk/by-partlabel/var-2
`, { ignition: { version: '3.2.0' }, storage: { disks: [{ device: '/dev/sda', partitions: [{ label: 'var-1', sizeMiB: 8192 }] }], raid: [{ devices: ['/dev/disk/by-partlabel/var-1', '/dev/disk/by-partlabel/var-2'], level: 'raid1', name: 'md-var' }] } })
})

t.test('other supported fields', async (t) => {
  // kernel_arguments (fcos 1.4.0 -> 3.3.0), values from Ignition migrating-configs.md 3.2.0 -> 3.3.0.
  await golden(t, 'kargs', `variant: fcos
version: 1.4.0
kernel_arguments:
  should_exist:
    - foobar
    - baz boo
  should_not_exist:
    - raboof
`, { ignition: { version: '3.3.0' }, kernelArguments: { shouldExist: ['foobar', 'baz boo'], shouldNotExist: ['raboof'] } })

  // directories, links (symbolic and hard), overwrite, append, user/group names (config-fcos-v1_5.md fields).
  await golden(t, 'nodes', `variant: fcos
version: 1.5.0
storage:
  directories:
    - path: /etc/app
      mode: 0750
      user:
        name: core
      group:
        name: core
  links:
    - path: /etc/localtime
      target: ../usr/share/zoneinfo/UTC
      overwrite: true
    - path: /etc/hard
      target: /etc/app/x
      hard: true
  files:
    - path: /etc/app/x
      overwrite: true
      contents:
        source: https://example.com/x
      append:
        - inline: xyzzy
`, { ignition: { version: '3.4.0' }, storage: {
    directories: [{ group: { name: 'core' }, path: '/etc/app', user: { name: 'core' }, mode: 488 }],
    files: [{ overwrite: true, path: '/etc/app/x', append: [{ compression: '', source: 'data:,xyzzy' }], contents: { source: 'https://example.com/x' } }],
    links: [{ overwrite: true, path: '/etc/localtime', target: '../usr/share/zoneinfo/UTC' }, { path: '/etc/hard', hard: true, target: '/etc/app/x' }],
  } })

  // passwd users (uid, gecos, primary_group, should_exist...) and groups.
  await golden(t, 'passwd', `variant: fcos
version: 1.5.0
passwd:
  users:
    - name: svc
      uid: 1050
      gecos: Service
      primary_group: svc
      no_user_group: true
      no_log_init: true
      system: true
    - name: olduser
      should_exist: false
  groups:
    - name: svc
      gid: 1050
      system: true
`, { ignition: { version: '3.4.0' }, passwd: { groups: [{ gid: 1050, name: 'svc', system: true }], users: [{ gecos: 'Service', name: 'svc', noLogInit: true, noUserGroup: true, primaryGroup: 'svc', system: true, uid: 1050 }, { name: 'olduser', shouldExist: false }] } })

  // ignition section: merge (with verification), replace from inline, timeouts, TLS CA, proxy; mask.
  await golden(t, 'ignition-section', `variant: fcos
version: 1.5.0
ignition:
  config:
    merge:
      - source: https://example.com/base.ign
        verification:
          hash: sha256-${'a'.repeat(64)}
  timeouts:
    http_response_headers: 20
    http_total: 600
  security:
    tls:
      certificate_authorities:
        - source: https://example.com/ca.pem
  proxy:
    https_proxy: http://proxy:3128
    no_proxy: [example.com]
systemd:
  units:
    - name: locksmithd.service
      mask: true
`, { ignition: { config: { merge: [{ source: 'https://example.com/base.ign', verification: { hash: `sha256-${'a'.repeat(64)}` } }] }, proxy: { httpsProxy: 'http://proxy:3128', noProxy: ['example.com'] }, security: { tls: { certificateAuthorities: [{ source: 'https://example.com/ca.pem' }] } }, timeouts: { httpResponseHeaders: 20, httpTotal: 600 }, version: '3.4.0' }, systemd: { units: [{ mask: true, name: 'locksmithd.service' }] } })

  // ignition.config.replace from inline: a data URL like file contents (base64 is shorter than %-escaping JSON).
  await golden(t, 'replace-inline', `variant: fcos
version: 1.5.0
ignition:
  config:
    replace:
      inline: '{"ignition":{"version":"3.4.0"}}'
`, { ignition: { config: { replace: { compression: '', source: 'data:;base64,eyJpZ25pdGlvbiI6eyJ2ZXJzaW9uIjoiMy40LjAifX0=' } }, version: '3.4.0' } })

  // Later-version storage fields (config-fcos-v1_5.md): http_headers, mount_options, resize, luks discard/open_options.
  await golden(t, 'storage-1.5', `variant: fcos
version: 1.5.0
storage:
  disks:
    - device: /dev/sda
      partitions:
        - label: root
          size_mib: 16384
          resize: true
  filesystems:
    - device: /dev/vdb1
      format: btrfs
      path: /var/data
      mount_options: [subvolid=5]
  luks:
    - name: data
      device: /dev/vdc
      discard: true
      open_options: [--perf-no_read_workqueue]
  files:
    - path: /etc/hosts
      contents:
        source: https://example.com/etc/hosts
        http_headers:
          - name: Authorization
            value: Basic YWxhZGRpbjpvcGVuc2VzYW1l
`, { ignition: { version: '3.4.0' }, storage: {
    disks: [{ device: '/dev/sda', partitions: [{ label: 'root', resize: true, sizeMiB: 16384 }] }],
    files: [{ path: '/etc/hosts', contents: { httpHeaders: [{ name: 'Authorization', value: 'Basic YWxhZGRpbjpvcGVuc2VzYW1l' }], source: 'https://example.com/etc/hosts' } }],
    filesystems: [{ device: '/dev/vdb1', format: 'btrfs', mountOptions: ['subvolid=5'], path: '/var/data' }],
    luks: [{ device: '/dev/vdc', discard: true, name: 'data', openOptions: ['--perf-no_read_workqueue'] }],
  } })

  // YAML anchors and aliases resolve as in go-yaml (Butane's parser).
  await golden(t, 'alias', `variant: fcos
version: 1.5.0
passwd:
  users:
    - name: a
      ssh_authorized_keys: &keys
        - key1
    - name: b
      ssh_authorized_keys: *keys
`, { ignition: { version: '3.4.0' }, passwd: { users: [{ name: 'a', sshAuthorizedKeys: ['key1'] }, { name: 'b', sshAuthorizedKeys: ['key1'] }] } })

  // flatcar 1.0.0 -> 3.3.0 and 1.1.0 -> 3.4.0 (docs/specs.md table).
  await golden(t, 'flatcar10', 'variant: flatcar\nversion: 1.0.0\nkernel_arguments:\n  should_exist: [quiet]\n', { ignition: { version: '3.3.0' }, kernelArguments: { shouldExist: ['quiet'] } })
  await golden(t, 'flatcar11', 'variant: flatcar\nversion: 1.1.0\n', { ignition: { version: '3.4.0' } })
  for (const [v, ign] of [['1.0.0', '3.0.0'], ['1.1.0', '3.1.0'], ['1.2.0', '3.2.0'], ['1.3.0', '3.2.0'], ['1.4.0', '3.3.0'], ['1.5.0', '3.4.0']]) {
    await golden(t, `fcos${v}`, `variant: fcos\nversion: ${v}\n`, { ignition: { version: ign } })
  }
})

t.test('data URL encoding follows butane base/util/url.go (base/v0_5/translate_test.go cases)', async (t) => {
  const zzz = 'z'.repeat(149)
  const tr = async (contents: string) => {
    const r = await translateButane(`variant: fcos\nversion: 1.5.0\nstorage:\n  files:\n    - path: /foo\n      contents:\n${contents}`, { file: 'd.bu', filesDir })
    if (!r.ok) throw new Error(r.errors.map(formatIgnitionError).join('; '))
    return (r.ignition as unknown as { storage: { files: { contents: { source: string; compression?: string } }[] } }).storage.files[0]?.contents
  }
  t.same(await tr('        inline: xyzzy\n'), { compression: '', source: 'data:,xyzzy' }, 'short text: %-escaped')
  t.same(await tr('        local: subdir/file-4\n'), { compression: '', source: 'data:,subdir%20file%20contents%0A' }, 'local in subdir')
  t.same(await tr('        local: random\n'), { compression: '', source: 'data:;base64,wJxsAYlppb9X5Bv0Sl+3OVCjI6c=' }, 'binary: base64 (exact Butane output)')
  t.same(await tr(`        inline: ${zzz}\n        compression: gzip\n`), { compression: 'gzip', source: `data:,${zzz}` }, 'user compression: not compressed again')
  t.same(await tr("        inline: \"a b/c?d&e=f'(g)*~!\\u00e9\"\n"), { compression: '', source: "data:,a%20b%2Fc%3Fd%26e%3Df'(g)*~!%C3%A9" }, 'RFC 2396 unreserved set kept; UTF-8 escaped per byte')
  const gz = await tr(`        inline: ${zzz}\n`)
  t.equal(gz?.compression, 'gzip', 'compressible text: gzip chosen')
  // Butane's own bytes are data:;base64,H4sIAAAAAAAC/6oajAAQAAD//5tA8d+VAAAA (Go compress/flate). zlib's deflate
  // differs, so compare the header Go writes and the decompressed contents.
  t.match(gz?.source, /^data:;base64,H4sIAAAAAAAC\//, 'gzip header as Go writes it (mtime 0, XFL 2, OS 255)')
  t.equal(gunzipSync(Buffer.from(gz?.source.slice('data:;base64,'.length) ?? '', 'base64')).toString(), zzz)
})

t.test('errors name the field and its line:col; nothing is silently dropped', async (t) => {
  const errs = async (yaml: string, opts: { filesDir?: string } = { filesDir }) => {
    const r = await translateButane(yaml, { file: 'e.bu', ...opts })
    t.notOk(r.ok)
    return r.ok ? [] : r.errors.map(formatIgnitionError)
  }
  // docs/examples.md "Filesystems and partitions" verbatim: with_mount_unit is refused at its line.
  t.same(await errs(`variant: fcos
version: 1.1.0
storage:
  filesystems:
    - path: /var
      device: /dev/disk/by-partlabel/var
      format: btrfs
      wipe_filesystem: true
      label: var
      with_mount_unit: true
`), ['e.bu:10:7: $.storage.filesystems[0].with_mount_unit: unsupported field "with_mount_unit": with_mount_unit is not translated by pxebox; write the .mount unit under systemd.units'])
  t.same(await errs('variant: fcos\nversion: 1.3.0\nboot_device:\n  mirror:\n    devices: [/dev/sda]\n'), ['e.bu:3:1: $.boot_device: unsupported field "boot_device": boot_device (LUKS/mirrored root) is not translated by pxebox; run butane and serve the .ign'])
  t.same(await errs('variant: fcos\nversion: 1.5.0\nstorage:\n  trees:\n    - local: tree\n'), ['e.bu:4:3: $.storage.trees: unsupported field "trees": storage.trees is not translated by pxebox; list the files with contents.local instead'])
  t.same(await errs('variant: fcos\nversion: 1.5.0\npasswd:\n  users:\n    - name: core\n      sshAuthorizedKeys: [k]\n'), ['e.bu:6:7: $.passwd.users[0].sshAuthorizedKeys: unknown Butane field "sshAuthorizedKeys"; did you mean "ssh_authorized_keys"? (Butane is snake_case; camelCase is Ignition)'])
  t.same(await errs('variant: fcos\nversion: 1.3.0\nkernel_arguments:\n  should_exist: [quiet]\n'), ['e.bu:3:1: $.kernel_arguments: field "kernel_arguments" needs fcos 1.4.0 or later; this config is fcos 1.3.0'])
  t.same(await errs('variant: fcos\nversion: 1.1.0\nstorage:\n  luks:\n    - name: a\n      device: /dev/sdb\n'), ['e.bu:4:3: $.storage.luks: field "luks" needs fcos 1.2.0 or later; this config is fcos 1.1.0'])
  t.same(await errs('variant: flatcar\nversion: 1.1.0\nstorage:\n  luks:\n    - name: a\n      device: /dev/sdb\n      clevis:\n        tpm2: true\n'), ['e.bu:7:7: $.storage.luks[0].clevis: clevis is not supported on the flatcar variant'])
  t.same(await errs('variant: fcos\nversion: 1.5.0\nstorage:\n  files:\n    - path: /a\n      mode: "0644"\n'), ['e.bu:6:13: $.storage.files[0].mode: expected an integer, got "0644"'])
  t.same(await errs('variant: fcos\nversion: 1.5.0\nstorage:\n  files:\n    - path: /a\n      contents:\n        inline: x\n        source: https://e/x\n'), ['e.bu:7:9: $.storage.files[0].contents: only one of source, inline and local may be set; got source, inline'])
  t.same(await errs('variant: fcos\nversion: 1.5.0\nstorage:\n  files:\n    - path: etc/a\n'), ['e.bu:5:7: $.storage.files[0].path: in the translated Ignition config: expected an absolute path starting with "/"; got "etc/a"'])
  t.same(await errs('variant: fcos\nversion: 1.6.0\n'), ['e.bu:2:10: $.version: unsupported Butane variant/version "fcos" "1.6.0"; pxebox translates fcos 1.0.0, fcos 1.1.0, fcos 1.2.0, fcos 1.3.0, fcos 1.4.0, fcos 1.5.0, flatcar 1.0.0, flatcar 1.1.0'])
  t.match((await errs('variant: fcos\nversion: 1.5.0\nstorage: [\n'))[0], /^e\.bu:\d+:\d+: \$: invalid YAML/)
})

t.test('contents.local: traversal and symlink escapes refused, no files dir refused', async (t) => {
  const local = (path: string, opts: { filesDir?: string } = { filesDir }) =>
    translateButane(`variant: fcos\nversion: 1.5.0\nstorage:\n  files:\n    - path: /a\n      contents:\n        local: ${path}\n`, { file: 'l.bu', ...opts })
  const up = await local('../secret')
  t.match(!up.ok && up.errors, [{ line: 7, col: 16, path: '$.storage.files[0].contents.local', message: /outside the files directory; refused/ }])
  const link = await local('escape-link')
  t.match(!link.ok && link.errors, [{ message: /resolves outside the files directory; refused/ }])
  const missing = await local('nope')
  t.match(!missing.ok && missing.errors, [{ message: /cannot read local file "nope": ENOENT/ }])
  const noDir = await local('local-file3', {})
  t.match(!noDir.ok && noDir.errors, [{ message: /needs a files directory/ }])
})
