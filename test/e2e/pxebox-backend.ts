/**
 * The appliance under test: the real pxebox daemon (`node dist/src/main.js serve --config FILE`, built by
 * `npx tsc -p .`), configured for the lab: PXE VLAN = the lab bridge, proxyDHCP, TFTP from a firmware folder filled
 * from Debian's ipxe package, HTTP on <address>:8080, the boot target as assets, one profile + group per machine
 * (each machine gets its own Ignition, so the marker proves the right machine got the right config).
 */
import { copyFileSync, existsSync, mkdirSync, realpathSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { stringify } from 'yaml'
import { waitForText, type ManagedProcess } from './lib/proc.js'
import { ipxeDir } from './dnsmasq-reference.js'
import { repoRoot, type ApplianceBackend, type ApplianceContext, type Machine } from './harness.js'

/** Per-machine tweaks of the group pxebox gets (e.g. `chainload_ipxe`, `boot_file`). */
export type GroupExtras = (m: Machine) => Record<string, unknown>

/** Per-machine tweaks of the profile (e.g. `boot_once: true`); `args` are appended to the kernel command line. */
export type ProfileExtras = (m: Machine) => { args?: string[]; [key: string]: unknown }

/** What `pxeboxConfig` and `pxeboxBackend` can add to the generated config. */
export interface PxeboxOptions {
  extras?: GroupExtras
  profileExtras?: ProfileExtras
  /** `api.token`: the bearer token for API writes (re-arm); at least 16 characters. */
  apiToken?: string
  /** More files for the firmware (TFTP root) folder: name -> source path (e.g. the signed shim and GRUB). */
  firmwareFiles?: Record<string, string>
  /** Top-level config keys replacing the generated ones (e.g. `dhcp` for authoritative mode, `machines`). */
  config?: Record<string, unknown>
  /** Last say over the generated config (e.g. discovery/syslog sections, groups that select facts, not MACs). */
  adjust?: (config: Record<string, unknown>) => Record<string, unknown>
}

/** The daemon's entry point (exists after `npx tsc -p .`). */
export function pxeboxMain(): string {
  return join(repoRoot(), 'dist', 'src', 'main.js')
}

/** The config.yaml data for a lab (plain object; written as YAML by the backend). */
export function pxeboxConfig(ctx: ApplianceContext, dir: string, opts: PxeboxOptions = {}): Record<string, unknown> {
  const profiles: Record<string, unknown> = {}
  const groups: unknown[] = []
  for (const m of ctx.machines) {
    const { args = [], ...profileExtras } = opts.profileExtras?.(m) ?? {}
    profiles[`e2e-${m.name}`] = {
      boot: {
        kernel: '/assets/vmlinuz',
        // --name: the EFI stub finds its initrd by this name (initrd= below); BIOS ignores both.
        initrd: ['--name initrd.img /assets/initrd.img'],
        args: ['initrd=initrd.img', 'console=ttyS0', 'quiet', `pxebox.url=${ctx.publicUrl}`, ...args],
      },
      ignition: `${m.name}.ign`,
      ...profileExtras,
    }
    groups.push({ id: m.name, profile: `e2e-${m.name}`, selector: { mac: m.mac }, ...opts.extras?.(m) })
  }
  const config = {
    interface: ctx.iface,
    address: ctx.address,
    log_level: 'debug',
    data_dir: join(dir, 'data'),
    assets_dir: join(dir, 'assets'),
    ignition_dir: join(dir, 'ignition'),
    dhcp: { mode: 'proxy', interface_pinning: 'auto' },
    tftp: { enabled: true, root: join(dir, 'firmware') },
    http: { enabled: true, listen: `${ctx.address}:${ctx.httpPort}`, public_url: ctx.publicUrl },
    ...(opts.apiToken !== undefined ? { api: { token: opts.apiToken } } : {}),
    profiles,
    groups,
    ...opts.config,
  }
  return opts.adjust === undefined ? config : opts.adjust(config)
}

/** The pxebox backend; files under `<lab dir>/pxebox/`, daemon log in `<lab dir>/pxebox.log`. */
export function pxeboxBackend(opts: PxeboxOptions = {}): ApplianceBackend {
  const procs: ManagedProcess[] = []
  return {
    name: 'pxebox',
    async start(ctx) {
      const main = pxeboxMain()
      if (!existsSync(main)) throw new Error(`${main} not found: build pxebox first (npx tsc -p .)`)
      const dir = join(ctx.dir, 'pxebox')
      for (const sub of ['data', 'assets', 'ignition', 'firmware']) mkdirSync(join(dir, sub), { recursive: true })
      for (const f of ['undionly.kpxe', 'snponly.efi', 'ipxe.efi']) copyFileSync(realpathSync(join(ipxeDir, f)), join(dir, 'firmware', f))
      for (const [name, source] of Object.entries(opts.firmwareFiles ?? {})) copyFileSync(source, join(dir, 'firmware', name))
      // The repo's manifest describes the same Debian ipxe build; with it the daemon's firmware check passes.
      const manifest = join(repoRoot(), 'firmware', 'manifest.json')
      if (existsSync(manifest)) copyFileSync(manifest, join(dir, 'firmware', 'manifest.json'))
      copyFileSync(ctx.bootTarget.vmlinuz, join(dir, 'assets', 'vmlinuz'))
      copyFileSync(ctx.bootTarget.initrd, join(dir, 'assets', 'initrd.img'))
      for (const m of ctx.machines) writeFileSync(join(dir, 'ignition', `${m.name}.ign`), JSON.stringify(m.ignition))
      const config = join(dir, 'config.yaml')
      writeFileSync(config, stringify(pxeboxConfig(ctx, dir, opts)))
      const daemon = ctx.spawn('pxebox', process.execPath, [main, 'serve', '--config', config])
      procs.push(daemon)
      // A readiness wait, not a speed goal: a start takes 1-3 s, but once, at load 19, 20 s were not enough.
      await waitForText(daemon.logPath, /pxebox \S+ ready/, 60_000, daemon)
    },
    async stop() {
      await Promise.all(procs.map((p) => p.stop(3000)))
    },
    logs() {
      return procs.map((p) => p.logPath)
    },
  }
}
