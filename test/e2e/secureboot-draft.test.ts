/**
 * Draft for issue 19 (Secure Boot), skipped unless PXEBOX_SECUREBOOT_DRAFT=1: proves the signed chain boots under
 * OVMF with Microsoft keys and Secure Boot enforcing, before pxebox is wired for it. The later wiring step turns this
 * into the real test through pxebox (its DHCP, TFTP and machine record instead of the stand-ins here).
 *
 * Stand-ins: the lab's site dnsmasq is the DHCP server and names the boot file and next-server (what pxebox does in
 * authoritative mode); the appliance address runs pxebox's own TFTP server with a fixed file table
 * (lib/recording-tftp-main.ts, which logs every name asked for) and the reference HTTP server for `/ignition`.
 *
 * 1. shim -> GRUB -> Debian's signed kernel -> initrd -> marker with the machine's Ignition; the kernel says
 *    "Secure boot enabled"; GRUB's config comes from src/boot/grub-config.ts; the TFTP names asked for are recorded.
 * 2. The same firmware handed Debian's (unsigned) snponly.efi: refused. What the console and the TFTP log show.
 * Needs `npx tsc -p .` first (the TFTP server runs from dist/).
 */
import t from 'tap'
import { existsSync, mkdirSync, realpathSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { createLab, e2eUnavailable, repoRoot, testMachine, type ApplianceBackend, type Lab, type Machine } from './harness.js'
import { waitForText, type ManagedProcess } from './lib/proc.js'
import { ovmfSecureBootCode, ovmfSecureBootVars } from './lib/qemu.js'
import { readRecordingLog, type RecordingTftpEntry, type RecordingTftpTable } from './lib/recording-tftp.js'
import { ensureSignedChain, type SignedChain } from './lib/signed-chain.js'
import { installedEsp } from './lib/installed-esp.js'
import { ipxeDir } from './dnsmasq-reference.js'
import { assertBooted } from './lib/boot-check.js'
import { planBoot } from '../../src/catalog/boot-plan.js'
import { grubBootstrapConfig, renderGrubBootConfig, renderGrubLocalBootConfig } from '../../src/boot/grub-config.js'
import { grubConfigSearchNames } from '../../src/boot/grub-config-names.js'

const NET = 49

/** The GRUB config for one machine (what pxebox will answer; the renderer lands in src/boot/grub-config.ts). */
type GrubConfigFor = (m: Machine, ctx: { address: string; publicUrl: string }) => Record<string, string>

/**
 * The stand-in appliance: recording TFTP (shim as `shimx64.efi`, GRUB as `grubx64.efi` next to it, the boot target
 * under `assets/`, Debian's snponly.efi, the GRUB configs) and the reference HTTP server for `/ignition?mac=`.
 */
function signedChainAppliance(chain: SignedChain, grubConfigs: GrubConfigFor): ApplianceBackend & { tftpLog(): RecordingTftpEntry[] } {
  const procs: ManagedProcess[] = []
  let logPath = ''
  return {
    name: 'signed-chain stand-in',
    async start(ctx) {
      const dir = join(ctx.dir, 'signed-chain')
      mkdirSync(join(dir, 'http', 'ignition'), { recursive: true })
      for (const m of ctx.machines) writeFileSync(join(dir, 'http', 'ignition', `${m.mac}.json`), JSON.stringify(m.ignition))
      const table: RecordingTftpTable = {
        files: {
          'shimx64.efi': chain.shim,
          'grubx64.efi': chain.grub,
          'snponly.efi': realpathSync(join(ipxeDir, 'snponly.efi')),
          'assets/vmlinuz': ctx.bootTarget.vmlinuz,
          'assets/initrd.img': ctx.bootTarget.initrd,
        },
        texts: Object.assign({}, ...ctx.machines.map((m) => grubConfigs(m, ctx))),
      }
      const tablePath = join(dir, 'tftp-table.json')
      writeFileSync(tablePath, JSON.stringify(table, null, 2))
      logPath = join(dir, 'tftp-requests.jsonl')
      const tftp = ctx.spawn('sb-tftp', process.execPath, [join(repoRoot(), 'dist', 'test', 'e2e', 'lib', 'recording-tftp-main.js'), ctx.address, tablePath, logPath])
      procs.push(tftp)
      const http = ctx.spawn('sb-http', process.execPath, [join(repoRoot(), 'test', 'e2e', 'lib', 'reference-http-server.mjs'), ctx.address, String(ctx.httpPort), join(dir, 'http')])
      procs.push(http)
      await waitForText(tftp.logPath, /listening on/, 10_000, tftp)
      await waitForText(http.logPath, /listening on/, 10_000, http)
    },
    async stop() {
      await Promise.all(procs.map((p) => p.stop(2000)))
    },
    logs() {
      return procs.map((p) => p.logPath)
    },
    tftpLog() {
      return readRecordingLog(logPath)
    },
  }
}

/** What shim and GRUB ask for, in order (the first shimx64.efi is the firmware's tsize probe). */
const expectedSignedChainNames = [
  'shimx64.efi', 'shimx64.efi',
  'revocations_sku.efi', 'revocations_sbat.efi', 'shim_certificate_0.efi',
  'grubx64.efi',
  '/grub/x86_64-efi/command.lst', '/grub/x86_64-efi/fs.lst', '/grub/x86_64-efi/crypto.lst', '/grub/x86_64-efi/terminal.lst',
  '/grub/grub.cfg', '/grub/grub.cfg-01-52-54-00-e2-31-01',
  '/assets/vmlinuz', '/assets/initrd.img',
]

/** Requests of one peer as `name (found|missing)` lines, transfers with their bytes. */
function describeTftp(log: readonly RecordingTftpEntry[]): string[] {
  return log.map((e) =>
    e.kind === 'request'
      ? `${String(e.ms).padStart(6)} RRQ ${e.filename} ${e.found ? '' : '(not found)'}`
      : `${String(e.ms).padStart(6)}   end ${e.file} ${e.outcome} ${e.bytes ?? ''} bytes${e.tsizeProbe ? ' (tsize probe)' : ''}` +
        (e.bytes ? ` blksize ${e.blksize} windowsize ${e.windowsize} in ${e.durationMs} ms` : ''),
  )
}

/**
 * What pxebox will answer (src/boot/grub-config.ts): the bootstrap under `grub/grub.cfg`, and the machine's boot
 * config under `grub/grub.cfg-01-<mac-dashes>`. The args carry GRUB-special characters and an iPXE variable, so the
 * kernel's command line shows they arrived literally.
 */
const renderedConfigs: GrubConfigFor = (m, ctx) => {
  const name = grubConfigSearchNames({ mac: m.mac }).find((n) => n.includes('-01-'))!
  if (m.name === 'sblocal3') {
    return { 'grub/grub.cfg': grubBootstrapConfig(), [name]: renderGrubLocalBootConfig(m.mac, `e2e-${m.name}`, '2026-11-27T15:00:00.000Z') }
  }
  const plan = planBoot('/assets/vmlinuz', ['--name initrd.img /assets/initrd.img'], [
    'initrd=initrd.img', 'console=ttyS0', `pxebox.url=${ctx.publicUrl}`, ...quotingArgs,
  ])
  if (!plan.ok) throw new Error(plan.errors.join('; '))
  const config = renderGrubBootConfig(plan.value, { mac: m.mac, uuid: m.uuid }, { publicUrl: ctx.publicUrl, server: ctx.address }, `profile "e2e-${m.name}"`)
  if (!config.ok) throw new Error(config.errors.join('; '))
  return {
    'grub/grub.cfg': grubBootstrapConfig(),
    [name]: config.value,
  }
}

/** Args GRUB must pass through untouched (pxebox fills in ${mac:hexhyp}; the rest is literal). */
const quotingArgs = ['pxebox.mac=${mac:hexhyp}', "pxebox.q1=a'b;c$d{e}|f&g<h>", 'pxebox.q2=*?[x]#"\\']

const skip =
  process.env.PXEBOX_SECUREBOOT_DRAFT !== '1'
    ? 'draft: set PXEBOX_SECUREBOOT_DRAFT=1 to run'
    : (e2eUnavailable(['node', 'mkfs.fat', 'mcopy']) ?? (existsSync(ovmfSecureBootCode) && existsSync(ovmfSecureBootVars) ? undefined : 'Debian package ovmf has no Secure Boot build here'))

if (skip !== undefined) {
  t.test('Secure Boot chain (draft)', { skip }, async () => {})
} else {
  const chain = ensureSignedChain(join(repoRoot(), '.cache', 'secureboot'))
  const signed: Machine = { ...testMachine('uefi-pxe', 1, NET), name: 'sbshim1', secureBoot: true }
  const refused: Machine = { ...testMachine('uefi-pxe', 2, NET), name: 'sbipxe2', secureBoot: true }
  // Install once, GRUB side: its config is the local-boot one, and its disk holds an installed system's ESP.
  const installed: Machine = {
    ...testMachine('uefi-pxe', 3, NET),
    name: 'sblocal3',
    secureBoot: true,
    disk: { sizeMb: 32, image: installedEsp(chain, join(repoRoot(), '.cache', 'secureboot', 'esp.img')) },
  }
  // The same chain on OVMF without Secure Boot: what the Secure Boot firmware itself costs in time.
  const plain: Machine = { ...testMachine('uefi-pxe', 4, NET), name: 'plainshim4' }
  const backend = signedChainAppliance(chain, renderedConfigs)
  let lab: Lab | undefined
  t.before(async () => {
    lab = await createLab({ id: 'sbdraft', net: NET, siteBoot: { file: 'shimx64.efi', byMac: { [refused.mac]: 'snponly.efi' } } })
    await lab.startAppliance(backend, [signed, refused, installed, plain])
  })
  t.teardown(() => lab?.destroy())
  t.comment(`signed chain from ${chain.packages.join(', ')}`)

  t.test('shim -> GRUB -> signed kernel boots with Secure Boot enforcing', async (t) => {
    const before = backend.tftpLog().length
    const r = await lab!.bootVm(signed, { timeoutMs: 240_000 })
    const tftp = backend.tftpLog().slice(before)
    t.comment(['TFTP, ms since the server started:', ...describeTftp(tftp)].join('\n'))
    t.comment(['console:', ...r.timeline.map((e) => `${String(e.ms).padStart(6)} ${e.line}`)].join('\n'))
    assertBooted(t, r, signed, 'signed chain')
    // Measured with shim-signed 1.51+16.1 and grub-efi-amd64-signed 2.06-13+deb12u2 (see the report in issue 19):
    // shim probes its optional revocation/certificate files, GRUB its module lists, then reads $prefix/grub.cfg
    // only (no per-MAC or per-IP search in Debian's build).
    const names = tftp.filter((e) => e.kind === 'request').map((e) => (e.kind === 'request' ? e.filename : ''))
    t.same(names, expectedSignedChainNames, 'TFTP names in the order the chain asks for them')
    t.ok(r.timeline.some((e) => /secureboot: Secure boot enabled/.test(e.line)), 'the kernel says Secure Boot is on', { diagnostics: r.diagnostics })
    const cmdline = r.timeline.find((e) => /Kernel command line:/.test(e.line))?.line ?? ''
    t.comment(`kernel command line as GRUB built it: ${cmdline}`)
    t.match(cmdline, `pxebox.mac=${signed.mac.replace(/:/g, '-')}`, 'pxebox filled in the iPXE variable')
    const at = (re: RegExp) => r.timeline.find((e) => re.test(e.line))?.ms
    t.comment(`Secure Boot OVMF: PXE start ${at(/Start PXE over IPv4/)} ms, GRUB ${at(/Welcome to GRUB/)} ms, EFI stub ${at(/EFI stub/)} ms, marker ${r.msToMarker} ms`)
  })

  t.test('the same firmware refuses Debian\'s unsigned iPXE', async (t) => {
    const before = backend.tftpLog().length
    // After the refusal OVMF tries PXEv6 (about 80 s of time-outs, measured): stop at the refusal.
    const r = await lab!.bootVm(refused, { timeoutMs: 120_000, stopOn: /Access Denied/ })
    const tftp = backend.tftpLog().slice(before)
    t.comment(['TFTP, ms since the server started:', ...describeTftp(tftp)].join('\n'))
    t.comment(['console:', ...r.timeline.map((e) => `${String(e.ms).padStart(6)} ${e.line}`)].join('\n'))
    t.equal(r.marker, undefined, 'no Linux')
    t.match(r.stoppedOn, 'Access Denied', 'OVMF says "failed to load Boot0001 ...: Access Denied"', { diagnostics: r.diagnostics })
    // What pxebox will see of it on the wire: the whole binary goes out (tsize probe, then a complete transfer), then
    // nothing more from that machine. The "firmware did not run iPXE" finding is built on exactly this.
    const size = statSync(realpathSync(join(ipxeDir, 'snponly.efi'))).size
    const full = tftp.filter((e) => e.kind === 'transfer' && e.file === 'snponly.efi' && e.outcome === 'ok' && e.bytes === size)
    t.equal(full.length, 1, `snponly.efi was fetched in full (${size} bytes) before the firmware refused it`)
    t.same(tftp.filter((e) => e.kind === 'request').map((e) => (e.kind === 'request' ? e.filename : '')), ['snponly.efi', 'snponly.efi'], 'and nothing after it (first RRQ is the tsize probe)')
  })

  t.test('install once: the local-boot config chainloads the installed shim from the local disk', async (t) => {
    const before = backend.tftpLog().length
    // GRUB finds the installed shim on the disk and chainloads it (verified through the network shim); the disk's
    // GRUB prints the line. With `exit` instead, OVMF opened its menu ("UiApp"): a failure here.
    const r = await lab!.bootVm(installed, { timeoutMs: 180_000, stopOn: /PXEBOX-LOCAL-DISK booted|"UiApp"|EFI Internal Shell/ })
    const tftp = backend.tftpLog().slice(before)
    t.comment(['TFTP, ms since the server started:', ...describeTftp(tftp)].join('\n'))
    t.comment(['console:', ...r.timeline.map((e) => `${String(e.ms).padStart(6)} ${e.line}`)].join('\n'))
    t.ok(r.timeline.some((e) => /booting from local disk/.test(e.line)), 'GRUB showed the local-boot message', { diagnostics: r.diagnostics })
    t.equal(r.stoppedOn, 'PXEBOX-LOCAL-DISK booted', 'the installed system on the local disk booted, under Secure Boot', { diagnostics: r.diagnostics })
    t.notOk(tftp.some((e) => e.kind === 'request' && /assets\//.test(e.filename)), 'no kernel or initrd fetched')
  })

  t.test('the same chain without Secure Boot (firmware cost for comparison)', async (t) => {
    const r = await lab!.bootVm(plain, { timeoutMs: 240_000 })
    const at = (re: RegExp) => r.timeline.find((e) => re.test(e.line))?.ms
    t.comment(`plain OVMF: PXE start ${at(/Start PXE over IPv4/)} ms, GRUB ${at(/Welcome to GRUB/)} ms, marker ${r.msToMarker} ms`)
    assertBooted(t, r, plain, 'signed chain, Secure Boot off')
    t.notOk(r.timeline.some((e) => /secureboot: Secure boot enabled/.test(e.line)), 'the kernel sees Secure Boot off')
  })
}
