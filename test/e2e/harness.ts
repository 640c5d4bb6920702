/**
 * End-to-end boot harness: real firmware (OVMF, SeaBIOS + iPXE) under QEMU TCG boots over a private network inside
 * network namespaces, against a pluggable PXE appliance (pxebox, or the dnsmasq reference), and must reach Linux and
 * fetch its config.
 *
 *   namespace <ns>   (the PXE VLAN)                         namespace <siteNs>
 *   br0 10.213.N.1/24 -- appliance under test                eth0 10.213.N.2/24 + fd00:213:N::2/64
 *    |-- vsite ---------------------- veth --------------------- site dnsmasq: addresses + IPv6 RA only, no PXE
 *    |-- tap0, tap1, ... -- QEMU VMs
 *
 * Everything the harness creates (namespaces, processes by PID, temp files) goes away in `destroy()`, which tests
 * register with `t.teardown` so it runs when they fail too. Only addresses inside these namespaces are used.
 */
import { existsSync, mkdtempSync, rmSync, accessSync, constants } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { tmpdir } from 'node:os'
import { fileURLToPath } from 'node:url'
import { execFileSync } from 'node:child_process'
import { spawnManaged, run, waitForText, readText, tail, sleep, type ManagedProcess } from './lib/proc.js'
import { qemuArgs, parseMarker, vmPaths, bootFailure, ovmfCode, ovmfVars, type VmSpec, type Marker } from './lib/qemu.js'

export { vmKinds, parseMarker, qemuArgs, bootFailure, type VmKind, type VmSpec, type Marker } from './lib/qemu.js'
export { type ManagedProcess, waitForText, tail } from './lib/proc.js'

/** A machine the test boots: its VM and the config the appliance must hand it at `/ignition?mac=`. */
export interface Machine extends VmSpec {
  /** Short name, used for groups/profiles and file names. */
  name: string
  /** The config (Ignition JSON) the appliance serves to this machine; the booted VM echoes it in its marker. */
  ignition: Record<string, unknown>
}

/** The kernel and initramfs built by scripts/build-boot-target.sh. */
export interface BootTarget {
  dir: string
  vmlinuz: string
  initrd: string
}

/** What an appliance backend gets to work with. It must serve everything on `iface`/`address` inside `ns`. */
export interface ApplianceContext {
  /** Namespace holding the PXE VLAN bridge; run the appliance here (`spawn`). */
  ns: string
  /** The bridge: the PXE VLAN interface the appliance listens on. */
  iface: string
  /** The appliance's IPv4 address on `iface` (10.213.N.1). */
  address: string
  prefix: number
  /** Network address of the PXE VLAN (10.213.N.0) and its netmask. */
  network: string
  netmask: string
  /** Port the appliance's HTTP server must listen on, and the base URL the booted Linux fetches from. */
  httpPort: number
  publicUrl: string
  /** A scratch directory of the lab (removed in teardown); backends make their own subdirectory. */
  dir: string
  bootTarget: BootTarget
  machines: Machine[]
  /** Start a tracked process inside `ns`; the lab stops it in teardown if the backend did not. */
  spawn(name: string, cmd: string, args: string[]): ManagedProcess
}

/** A PXE appliance under test: pxebox, or dnsmasq + a small HTTP server as the reference. */
export interface ApplianceBackend {
  readonly name: string
  /** Start serving; resolve once DHCP, TFTP and HTTP are ready for clients. */
  start(ctx: ApplianceContext): Promise<void>
  /** Stop everything `start` began. */
  stop(): Promise<void>
  /** Log files worth showing when a boot fails. */
  logs(): string[]
}

/** How one VM boot went. */
export interface BootResult {
  /** The marker line's fields, undefined if the VM never printed one. */
  marker: Marker | undefined
  /** ms from QEMU start to the marker appearing on the console. */
  msToMarker: number | undefined
  /** ms from QEMU start until QEMU had exited (or was killed). */
  msTotal: number
  timedOut: boolean
  /** Why there is no marker: a console line showing the firmware gave up, a timeout, or QEMU exiting. */
  failure: string | undefined
  /** The console text that matched `stopOn`, when that ended the boot (then `failure` is undefined). */
  stoppedOn?: string
  /** Console lines with the ms since QEMU start at which the harness first saw them (100 ms polling). */
  timeline: Array<{ ms: number; line: string }>
  consolePath: string
  /** Last lines of the console and the appliance/site logs: put this in failure messages. */
  diagnostics: string
}

/** Options of `Lab.bootVm`. */
export interface BootOptions {
  /** Give up after this long (default 120 s). */
  timeoutMs?: number
  /**
   * End the boot when the console matches this, without calling it a failure (checked before the failure patterns,
   * so e.g. SeaBIOS's "No bootable device" can be the expected end of a local-disk boot).
   */
  stopOn?: RegExp
}

/** Options of `createLab`. */
export interface LabOptions {
  /** Short [a-z0-9] id unique to the test file (namespace names derive from it; tap runs files in parallel). */
  id: string
  /** Third octet of the lab network 10.213.N.0/24 (default 40). */
  net?: number
  /** Record DHCP (udp 67/68/4011) on the bridge with tcpdump: true = `<dir>/dhcp.pcap`, or a path. */
  capture?: boolean | string
  /** Keep the temp dir after destroy (for debugging); default: env PXEBOX_E2E_KEEP=1. */
  keep?: boolean
  /**
   * The site DHCP server also names a boot file and next-server (siaddr) in its offers and ACKs, the classic
   * `filename`/`next-server` set-up: GRUB takes its TFTP server from the ACK's siaddr (vm-boot.md, "Secure Boot").
   * `nextServer` defaults to the appliance's address; `byMac` gives single machines another file; `exceptMacs` get
   * neither (a plain site server, for those machines only).
   */
  siteBoot?: { file: string; nextServer?: string; byMac?: Record<string, string>; exceptMacs?: readonly string[] }
  /**
   * false: no site DHCP server at all, for an appliance in authoritative mode (the only DHCP server of its VLAN). No
   * IPv6 router advertisements either: give such VMs `pxeIpv6: false`. Default true.
   */
  siteDhcp?: boolean
}

/** A running lab: namespaces, bridge, site DHCP, optional capture; boots VMs against an appliance. */
export interface Lab extends Omit<ApplianceContext, 'machines'> {
  siteNs: string
  siteAddress: string
  /** The pcap file when `capture` was on. */
  capturePath: string | undefined
  siteLog: string
  /** Start `backend` for `machines` (once per lab). */
  startAppliance(backend: ApplianceBackend, machines: Machine[]): Promise<void>
  /**
   * Boot one VM and wait for its marker; never throws for a failed boot. The first boot of a MAC creates its tap; a
   * later boot of the same MAC is the same machine rebooting (same tap, OVMF VARS and disk, a new console file).
   */
  bootVm(vm: VmSpec, opts?: BootOptions): Promise<BootResult>
  /** Stop every process by PID, delete both namespaces and the temp dir. Safe to call twice. */
  destroy(): Promise<void>
}

/** Repository root: the directory holding scripts/build-boot-target.sh (works from test/ and dist/test/). */
export function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url))
  for (;;) {
    if (existsSync(join(dir, 'scripts', 'build-boot-target.sh'))) return dir
    const up = dirname(dir)
    if (up === dir) throw new Error('cannot find the repository root (scripts/build-boot-target.sh)')
    dir = up
  }
}

function onPath(bin: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${bin}`], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}

/**
 * Why VM boots cannot run here, or undefined if they can: the only acceptable reasons to skip are a missing
 * privilege or a missing Debian package. `extra` names binaries a particular backend needs too.
 */
export function e2eUnavailable(extra: string[] = []): string | undefined {
  if (process.platform !== 'linux') return 'VM boot tests need Linux network namespaces'
  if (process.getuid?.() !== 0) return 'VM boot tests need root (network namespaces, tap devices)'
  try {
    accessSync('/dev/net/tun', constants.R_OK | constants.W_OK)
  } catch {
    return '/dev/net/tun is not available (QEMU needs tap devices)'
  }
  for (const bin of ['ip', 'setpriv', 'qemu-system-x86_64', 'dnsmasq', 'cpio', 'apt-get', 'dpkg-deb', ...extra]) {
    if (!onPath(bin)) return `${bin} not found (see scripts/deps.sh)`
  }
  for (const f of [ovmfCode, ovmfVars]) if (!existsSync(f)) return `${f} not found (Debian package ovmf)`
  return undefined
}

/** Build (or reuse) the boot target with scripts/build-boot-target.sh; throws with the script's output on failure. */
export function ensureBootTarget(dir = join(repoRoot(), '.cache', 'boot-target')): BootTarget {
  execFileSync(join(repoRoot(), 'scripts', 'build-boot-target.sh'), [dir], { stdio: ['ignore', 'pipe', 'pipe'] })
  return { dir, vmlinuz: join(dir, 'vmlinuz'), initrd: join(dir, 'initrd.img') }
}

/** Namespace names for a lab id (fixed, so a crashed run's leftovers are found and removed by the next run). */
export function labNamespaces(id: string): { ns: string; siteNs: string } {
  if (!/^[a-z0-9]{1,10}$/.test(id)) throw new Error(`lab id must be 1-10 of [a-z0-9], got ${JSON.stringify(id)}`)
  return { ns: `pxebox-e2e-${id}`, siteNs: `pxebox-site-${id}` }
}

async function namespaceExists(name: string): Promise<boolean> {
  const out = await run(undefined, 'ip', ['netns', 'list'])
  return out.split('\n').some((line) => line.split(' ')[0] === name)
}

/** Remove a namespace this harness created (possibly by an earlier, crashed run): its processes first, by PID. */
async function removeNamespace(name: string): Promise<void> {
  if (!(await namespaceExists(name))) return
  const pids = (await run(undefined, 'ip', ['netns', 'pids', name])).split('\n').map(Number).filter((p) => p > 0)
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL')
    } catch {
      /* gone */
    }
  }
  if (pids.length > 0) await sleep(200)
  await run(undefined, 'ip', ['netns', 'del', name])
}

/** Create the namespaces, bridge and site DHCP server. Call `destroy()` in a teardown (also when this throws, it cleans up itself). */
export async function createLab(opts: LabOptions): Promise<Lab> {
  const { ns, siteNs } = labNamespaces(opts.id)
  const net = opts.net ?? 40
  const address = `10.213.${net}.1`
  const siteAddress = `10.213.${net}.2`
  const httpPort = 8080
  const keep = opts.keep ?? process.env.PXEBOX_E2E_KEEP === '1'
  const bootTarget = ensureBootTarget()
  const dir = mkdtempSync(join(tmpdir(), `pxebox-e2e-${opts.id}-`))
  const procs: ManagedProcess[] = []
  const backends: ApplianceBackend[] = []
  let vmCount = 0
  // MAC -> [VM index, boots so far]: a MAC booted again is the same machine rebooting.
  const vms = new Map<string, [number, number]>()
  let destroyed = false

  const spawnIn = (where: string) => (name: string, cmd: string, args: string[]): ManagedProcess => {
    const p = spawnManaged(name, where, cmd, args, join(dir, `${name}.log`))
    procs.push(p)
    return p
  }
  const spawn = spawnIn(ns)
  const ipNs = (args: string[]) => run(undefined, 'ip', ['-n', ns, ...args])
  const ipSite = (args: string[]) => run(undefined, 'ip', ['-n', siteNs, ...args])

  // Last resort when the teardown never ran (uncaught error, process.exit): the processes already die with us
  // (pdeathsig, lib/proc.ts); drop the namespaces synchronously so the next run starts clean.
  const onExit = (): void => {
    if (destroyed) return
    for (const name of [ns, siteNs]) {
      try {
        execFileSync('ip', ['netns', 'del', name], { stdio: 'ignore' })
      } catch {
        /* already gone */
      }
    }
  }
  process.once('exit', onExit)

  const destroy = async (): Promise<void> => {
    if (destroyed) return
    destroyed = true
    process.removeListener('exit', onExit)
    for (const b of backends) await b.stop().catch(() => undefined)
    await Promise.all(procs.map((p) => p.stop(2000)))
    await removeNamespace(ns).catch(() => undefined)
    await removeNamespace(siteNs).catch(() => undefined)
    if (!keep) rmSync(dir, { recursive: true, force: true })
  }

  let capturePath: string | undefined
  const siteLog = join(dir, 'site-dnsmasq.log')
  try {
    await removeNamespace(ns)
    await removeNamespace(siteNs)
    await run(undefined, 'ip', ['netns', 'add', ns])
    await run(undefined, 'ip', ['netns', 'add', siteNs])
    await ipNs(['link', 'set', 'lo', 'up'])
    await ipSite(['link', 'set', 'lo', 'up'])
    // STP off and no forward delay: ports forward at once (firmware DHCP time-outs are short); no multicast
    // snooping, so IPv6 router advertisements reach every VM.
    await ipNs(['link', 'add', 'br0', 'type', 'bridge', 'stp_state', '0', 'forward_delay', '0', 'mcast_snooping', '0'])
    await ipNs(['addr', 'add', `${address}/24`, 'dev', 'br0'])
    await ipNs(['link', 'set', 'br0', 'up'])
    await ipNs(['link', 'add', 'vsite', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', siteNs])
    await ipNs(['link', 'set', 'vsite', 'master', 'br0', 'up'])
    await ipSite(['addr', 'add', `${siteAddress}/24`, 'dev', 'eth0'])
    // The RA needs a prefix on the interface to advertise (dnsmasq's constructor:eth0); nodad so it is usable at once.
    await ipSite(['addr', 'add', `fd00:213:${net}::2/64`, 'dev', 'eth0', 'nodad'])
    await ipSite(['link', 'set', 'eth0', 'up'])

    // The site's own DHCP server: addresses only, never PXE options, like the office/datacenter DHCP pxebox sits
    // beside. IPv6 RAs too: without any RA, iPXE waits about 16 s in "Configuring" on every boot (measured here).
    if (opts.siteDhcp !== false) {
      const site = spawnIn(siteNs)('site-dnsmasq', 'dnsmasq', [
        '--keep-in-foreground', '--conf-file=/dev/null', '--port=0', '--user=root', '--log-facility=-', '--log-dhcp',
        `--pid-file=${join(dir, 'site-dnsmasq.pid')}`, `--dhcp-leasefile=${join(dir, 'site.leases')}`,
        '--interface=eth0', '--bind-interfaces', '--dhcp-authoritative',
        `--dhcp-range=10.213.${net}.100,10.213.${net}.199,255.255.255.0,10m`,
        '--enable-ra', '--dhcp-range=::,constructor:eth0,ra-only',
        ...siteBootArgs(opts.siteBoot, address),
      ])
      await waitForText(site.logPath, /DHCP, IP range/, 10_000, site)
    }

    if (opts.capture !== undefined && opts.capture !== false && opts.capture !== '' && opts.capture !== '0') {
      // A string is a path, except '1'/'true' (what an env switch such as PXEBOX_E2E_CAPTURE=1 gives).
      const toPath = typeof opts.capture === 'string' && opts.capture !== '1' && opts.capture !== 'true'
      capturePath = toPath ? resolve(opts.capture as string) : join(dir, 'dhcp.pcap')
      // -U: write each packet at once (the file is complete when tcpdump is stopped); -Z root: tcpdump would drop to
      // its own user, which cannot write into our 0700 temp dir.
      const cap = spawn('tcpdump', 'tcpdump', ['-i', 'br0', '-n', '-U', '-Z', 'root', '-w', capturePath, 'udp port 67 or udp port 68 or udp port 4011'])
      await waitForText(cap.logPath, /listening on/, 10_000, cap)
    }
  } catch (err) {
    await destroy()
    throw err
  }

  const ctxBase = {
    ns,
    iface: 'br0',
    address,
    prefix: 24,
    network: `10.213.${net}.0`,
    netmask: '255.255.255.0',
    httpPort,
    publicUrl: `http://${address}:${httpPort}`,
    dir,
    bootTarget,
    spawn,
  }

  return {
    ...ctxBase,
    siteNs,
    siteAddress,
    capturePath,
    siteLog,
    destroy,
    async startAppliance(backend, machines) {
      backends.push(backend)
      await backend.start({ ...ctxBase, machines })
    },
    async bootVm(vm, bootOpts = {}) {
      const timeoutMs = bootOpts.timeoutMs ?? 120_000
      const [index, boots] = vms.get(vm.mac) ?? [vmCount++, 0]
      vms.set(vm.mac, [index, boots + 1])
      const paths = vmPaths(dir, index, boots)
      if (boots === 0) {
        await ipNs(['tuntap', 'add', 'dev', paths.tap, 'mode', 'tap'])
        await ipNs(['link', 'set', paths.tap, 'master', 'br0', 'up'])
      }
      const start = Date.now()
      const qemu = spawn(`qemu-${paths.tap}`, 'qemu-system-x86_64', qemuArgs(vm, paths))
      let marker: Marker | undefined
      let msToMarker: number | undefined
      let timedOut = false
      let failure: string | undefined
      let stoppedOn: string | undefined
      const timeline: Array<{ ms: number; line: string }> = []
      let seen = 0
      for (;;) {
        const text = readText(paths.console)
        seen = addTimeline(timeline, text, seen, Date.now() - start)
        marker = parseMarker(text)
        if (marker) {
          msToMarker = Date.now() - start
          break
        }
        if (qemu.exitStatus() !== undefined) break
        stoppedOn = bootOpts.stopOn === undefined ? undefined : text.match(bootOpts.stopOn)?.[0]
        if (stoppedOn !== undefined) break
        failure = bootFailure(text, vm)
        if (failure !== undefined) break
        if (Date.now() - start > timeoutMs) {
          timedOut = true
          break
        }
        await sleep(100)
      }
      // The init powers off right after the marker; give it a moment, then make sure QEMU is gone.
      const done = await Promise.race([qemu.exited.then(() => true), sleep(marker ? 10_000 : 0).then(() => false)])
      if (!done) await qemu.stop(2000)
      // The marker can land between the last poll and QEMU's exit: read once more.
      const finalText = readText(paths.console)
      addTimeline(timeline, finalText, seen, Date.now() - start)
      if (!marker) marker = parseMarker(finalText, { ended: qemu.exitStatus() !== undefined })
      const msTotal = Date.now() - start
      if (!marker && failure === undefined && stoppedOn === undefined) {
        failure = timedOut ? `no marker within ${timeoutMs} ms` : `QEMU exited without a marker (${JSON.stringify(qemu.exitStatus())})`
      }
      const logs = backends.flatMap((b) => b.logs())
      const diagnostics = [
        ...(failure === undefined ? [] : [`--- boot failed: ${failure}`]),
        `--- ${vm.kind} ${vm.mac}: console (${paths.console}), ms since QEMU start`,
        ...timeline.slice(-30).map((e) => `${String(e.ms).padStart(6)} ${e.line}`),
        `--- qemu: ${tail(qemu.logPath, 5)}`,
        ...logs.map((l) => `--- ${l}\n${tail(l, 20)}`),
        `--- site dhcp\n${tail(siteLog, 10)}`,
      ].join('\n')
      return { marker, msToMarker, msTotal, timedOut, failure, ...(stoppedOn !== undefined ? { stoppedOn } : {}), timeline, consolePath: paths.console, diagnostics }
    },
  }
}

/** dnsmasq options for LabOptions.siteBoot: a tag per MAC with its own file, the rest get the default file. */
function siteBootArgs(boot: LabOptions['siteBoot'], address: string): string[] {
  if (boot === undefined) return []
  const server = boot.nextServer ?? address
  const args: string[] = []
  for (const [i, [mac, file]] of Object.entries(boot.byMac ?? {}).entries()) {
    args.push(`--dhcp-mac=set:boot${i},${mac}`, `--dhcp-boot=tag:boot${i},${file},,${server}`)
  }
  const except = (boot.exceptMacs ?? []).map((mac) => `--dhcp-mac=set:noboot,${mac}`)
  // dnsmasq keeps dhcp-boot entries in reverse order of the command line and uses the first whose tags match; an
  // untagged one matches every client, so it goes first on the command line and the tagged ones win over it.
  return [...except, `--dhcp-boot=${except.length > 0 ? 'tag:!noboot,' : ''}${boot.file},,${server}`, ...args]
}

/**
 * Append the complete lines of `text` after offset `seen` to `timeline`, stamped `ms`, without terminal escapes and
 * iPXE's backspace animation. Returns the new offset (the start of the unfinished last line).
 */
function addTimeline(timeline: Array<{ ms: number; line: string }>, text: string, seen: number, ms: number): number {
  const end = text.lastIndexOf('\n') + 1
  if (end <= seen) return seen
  for (const raw of text.slice(seen, end).split('\n')) {
    // eslint-disable-next-line no-control-regex
    const line = raw.replace(/\x1b\[[0-9;=?]*[a-zA-Z]/g, '').replace(/[\x08\r]/g, '').replace(/(\s)\1{3,}/g, '$1').trim()
    if (line !== '') timeline.push({ ms, line })
  }
  return end
}

/** A machine for tests: QEMU MAC 52:54:00:e2:<net>:<n>, a UUID derived from it, an Ignition config naming it. */
export function testMachine(kind: VmSpec['kind'], n: number, net = 40): Machine {
  const hex = (v: number) => v.toString(16).padStart(2, '0')
  const mac = `52:54:00:e2:${hex(net)}:${hex(n)}`
  const name = `${kind.replace(/-/g, '')}${n}`
  return {
    name,
    kind,
    mac,
    uuid: `8d3c1f2e-0000-4000-8000-525400e2${hex(net)}${hex(n)}`,
    // A valid Ignition config that names the machine: the marker proves each VM got its own.
    ignition: {
      ignition: { version: '3.3.0' },
      storage: { files: [{ path: '/etc/hostname', mode: 420, contents: { source: `data:,${name}` } }] },
    },
  }
}
