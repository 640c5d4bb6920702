/**
 * GRUB configs as TFTP answers (issue 19): each config name is matched to a machine (MAC, UUID, IP as pxebox saw
 * them) and answered with its boot, local-boot or message config; never "not found" for a config name.
 */
import t from 'tap'
import { loadBootState, type BootState } from '../../src/catalog/state.js'
import { grubConfigFile, isOptionalLoaderFile, type GrubFilesOptions } from '../../src/boot/grub-files.js'
import { grubBootstrapConfig } from '../../src/boot/grub-config.js'
import type { MachineRecord } from '../../src/machines/model.js'

async function catalog(): Promise<BootState> {
  const r = await loadBootState({
    profiles: {
      live: { boot: { kernel: '/assets/vmlinuz', initrd: ['/assets/initrd.img'], args: ['ignition=http://10.213.0.1:8080/ignition?mac=${mac:hexhyp}'] }, loader: 'shim-grub' },
      once: { boot: { kernel: '/assets/vmlinuz', args: [] }, boot_once: true, loader: 'shim-grub' },
      nokernel: {},
    },
    groups: [
      { id: 'sb', profile: 'live', selector: { mac: '52:54:00:00:00:01' } },
      { id: 'installer', profile: 'once', selector: { mac: '52:54:00:00:00:02' } },
      { id: 'empty', profile: 'nokernel', selector: { mac: '52:54:00:00:00:03' } },
    ],
  })
  if (!r.ok) throw new Error(r.errors.join('\n'))
  return r.state
}

function record(mac: string, extra: Partial<MachineRecord> = {}): MachineRecord {
  const now = '2026-11-27T17:00:00.000Z'
  return { mac, ips: [], labels: {}, first_seen: now, last_seen: now, boots: 1, attempt_started: now, timeline: [], last_progress: now, history: [], installs: 0, reinstalls: 0, ...extra }
}

async function options(records: MachineRecord[], leases: Record<string, string> = {}): Promise<GrubFilesOptions> {
  const state = await catalog()
  return {
    catalog: () => state,
    machines: { get: (mac) => records.find((r) => r.mac === mac), list: () => records },
    macForIp: (ip) => leases[ip],
    publicUrl: 'http://10.213.0.1:8080',
    server: '10.213.0.1',
  }
}

const text = (f: { content: Buffer } | undefined): string => f?.content.toString() ?? '(none)'

t.test('grub/grub.cfg is the bootstrap, attributed to the lease holder; other files are not GRUB configs', async (t) => {
  const opts = await options([], { '10.213.0.50': '52:54:00:00:00:01' })
  const f = grubConfigFile('grub/grub.cfg', '10.213.0.50', opts)
  t.equal(text(f), grubBootstrapConfig())
  t.match(f, { answer: 'bootstrap', mac: '52:54:00:00:00:01' })
  t.equal(grubConfigFile('shimx64.efi', '10.213.0.50', opts), undefined)
  t.equal(grubConfigFile('grub/x86_64-efi/command.lst', '10.213.0.50', opts), undefined)
})

t.test('the MAC name boots the profile with the machine\'s values filled in; every name of the machine gives the same', async (t) => {
  const opts = await options([record('52:54:00:00:00:01', { uuid: '8D3C1F2E-0000-4000-8000-525400A10001' })], { '10.213.0.50': '52:54:00:00:00:01' })
  const f = grubConfigFile('grub/grub.cfg-01-52-54-00-00-00-01', '10.213.0.50', opts)
  t.match(f, { answer: 'boot', mac: '52:54:00:00:00:01' })
  t.equal(
    text(f),
    [
      '# pxebox: generated for this machine; see GET /v1/machines/<mac> for what it fetched',
      `echo 'pxebox: 52:54:00:00:00:01: group "sb", profile "live"'`,
      `linux (tftp,10.213.0.1)/assets/vmlinuz 'ignition=http://10.213.0.1:8080/ignition?mac=52-54-00-00-00-01'`,
      'initrd (tftp,10.213.0.1)/assets/initrd.img',
      'boot',
      '',
    ].join('\n'),
  )
  for (const name of ['grub.cfg-52-54-00-00-00-01', 'grub.cfg-52:54:00:00:00:01', '/grub/grub.cfg-8d3c1f2e-0000-4000-8000-525400a10001', 'grub/grub.cfg-0AD50032', 'grub/grub.cfg-0AD5']) {
    t.equal(text(grubConfigFile(name, '10.213.0.50', opts)), text(f), name)
  }
})

t.test('a UUID or IP name pxebox cannot place, an unmatched MAC, a profile without kernel: a message, never a miss', async (t) => {
  const opts = await options([])
  const unknown = grubConfigFile('grub/grub.cfg-0AD50063', '10.213.0.99', opts)
  t.match(unknown, { answer: 'message' })
  t.match(text(unknown), /echo 'pxebox: no machine known for config grub\/grub.cfg-0AD50063 \(asked from 10.213.0.99\)/)
  t.match(text(unknown), /\nexit\n$/)
  t.match(grubConfigFile('grub/grub.cfg-0AD50063', '10.213.0.50', await options([], { '10.213.0.50': '52:54:00:00:00:01' })), { answer: 'message' }, 'a name that is not the asker\'s address')
  t.match(text(grubConfigFile('grub.cfg-01-52-54-00-00-00-09', '10.213.0.99', opts)), /no group matches 52:54:00:00:00:09/)
  t.match(text(grubConfigFile('grub.cfg-01-52-54-00-00-00-03', '10.213.0.99', opts)), /profile "nokernel" has no kernel to boot/)
})

t.test('install once: an installed machine of a boot_once profile gets the local-boot config until re-armed', async (t) => {
  const before = grubConfigFile('grub.cfg-01-52-54-00-00-00-02', '10.213.0.52', await options([record('52:54:00:00:00:02')]))
  t.match(before, { answer: 'boot' })
  const after = grubConfigFile('grub.cfg-01-52-54-00-00-00-02', '10.213.0.52', await options([record('52:54:00:00:00:02', { installed_at: '2026-11-27T17:01:00.000Z' })]))
  t.match(after, { answer: 'local-boot' })
  t.match(text(after), /reported installed at 2026-11-27T17:01:00.000Z/)
  t.match(text(after), /chainloader \/EFI\/BOOT\/BOOTX64.EFI; boot/)
})

t.test('optional loader files: shim\'s MOK manager, fallback and revocations, GRUB\'s .lst probes', async (t) => {
  t.same(
    ['mmx64.efi', 'fbx64.efi', 'revocations.efi', 'revocations_sku.efi', 'revocations_sbat.efi', 'shim_certificate_0.efi', 'grub/x86_64-efi/command.lst', 'grub/fs.lst', 'shimx64.efi', 'grubx64.efi', 'grub/grub.cfg', 'assets/x.lst', 'revocations_.efi'].map(isOptionalLoaderFile),
    [true, true, true, true, true, true, true, true, false, false, false, false, false],
  )
})

t.test('TFTP resolvers through the PXE file handler: configs tagged with the machine, assets/ confined to assets_dir', async (t) => {
  const { secureBootResolvers } = await import('../../src/boot/grub-tftp.js')
  const { createBootFileHandler } = await import('../../src/boot/tftp-files.js')
  const { TftpAccessError } = await import('../../src/tftp/index.js')
  const { readFileSync, mkdirSync, writeFileSync, symlinkSync } = await import('node:fs')
  const { join } = await import('node:path')
  const dir = t.testdir({ assets: { 'vmlinuz': 'KERNEL', 'initrd.img': 'INITRD0', sub: { 'initrd.img': 'INITRD' } }, 'secret': 'SECRET' })
  mkdirSync(join(dir, 'assets', 'links'))
  symlinkSync(join(dir, 'secret'), join(dir, 'assets', 'links', 'out'))
  writeFileSync(join(dir, 'assets', 'links', 'inside-target'), 'IN')
  symlinkSync(join(dir, 'assets', 'links', 'inside-target'), join(dir, 'assets', 'links', 'in'))
  const handler = createBootFileHandler({ resolvers: secureBootResolvers({ ...(await options([], { '10.213.0.50': '52:54:00:00:00:01' })), assetsDir: join(dir, 'assets') }) })
  const get = async (filename: string) => {
    try {
      const f = await handler({ filename, peer: { address: '10.213.0.50', port: 1000 } })
      if (f === null || Buffer.isBuffer(f)) return f === null ? 'not found' : f.toString()
      const body = Buffer.isBuffer(f.content) ? f.content.toString() : readFileSync(f.content.path, 'utf8')
      return `${body}${f.tags?.mac !== undefined ? ` [${f.tags.mac}]` : ''}`
    } catch (err) {
      return err instanceof TftpAccessError ? 'refused' : `error ${(err as Error).message}`
    }
  }
  t.equal(await get('assets/vmlinuz'), 'KERNEL')
  t.equal(await get('/assets/sub/initrd.img'), 'INITRD')
  t.equal(await get('assets/links/in'), 'IN', 'a symlink inside the folder is followed')
  t.not(await get('assets/links/out'), 'SECRET', 'a symlink leaving the folder is not served')
  t.equal(await get('assets/../secret'), 'not found', 'normalizes to secret: a root path, never assets_dir/..')
  t.equal(await get('assets/../../secret'), 'refused')
  t.equal(await get('assets/missing'), 'not found')
  t.equal(await get('vmlinuz'), 'not found', 'assets only under assets/')
  t.equal(await get('grub/grub.cfg'), `${grubBootstrapConfig()} [52:54:00:00:00:01]`, 'the bootstrap, attributed to the lease holder')
  t.match(await get('/grub/grub.cfg-01-52-54-00-00-00-01'), /^linux \(tftp,10.213.0.1\)\/assets\/vmlinuz [^\n]*\n[\s\S]* \[52:54:00:00:00:01\]$/m)
  t.equal(await get('mmx64.efi'), 'not found', 'an optional shim file is just missing')
  const cfg = await handler({ filename: 'grub/grub.cfg-01-52-54-00-00-00-01', peer: { address: '10.213.0.50', port: 1000 } })
  t.same(cfg !== null && !Buffer.isBuffer(cfg) ? cfg.tags : undefined, { mac: '52:54:00:00:00:01' }, 'a boot config: the MAC only')
  const stepOf = async (filename: string) => {
    const f = await handler({ filename, peer: { address: '10.213.0.50', port: 1000 } })
    return f !== null && !Buffer.isBuffer(f) ? f.tags?.step : 'not found'
  }
  t.equal(await stepOf('assets/vmlinuz'), 'kernel', "a profile's kernel over TFTP is the kernel step")
  t.equal(await stepOf('assets/initrd.img'), 'initrd', "a profile's initrd over TFTP is the initrd step")
  t.equal(await stepOf('assets/sub/initrd.img'), undefined, 'a file no profile names is just a file')
})

t.test('the local-boot config is tagged step local-boot, so its transfer shows as the local disk boot', async (t) => {
  const { secureBootResolvers } = await import('../../src/boot/grub-tftp.js')
  const { createBootFileHandler } = await import('../../src/boot/tftp-files.js')
  const installed = record('52:54:00:00:00:02', { installed_at: '2026-11-27T17:01:00.000Z' })
  const handler = createBootFileHandler({ resolvers: secureBootResolvers(await options([installed])) })
  const f = await handler({ filename: 'grub/grub.cfg-01-52-54-00-00-00-02', peer: { address: '10.213.0.52', port: 1000 } })
  t.same(f !== null && !Buffer.isBuffer(f) ? f.tags : undefined, { mac: '52:54:00:00:00:02', step: 'local-boot' })
})
