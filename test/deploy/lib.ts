/**
 * What the two deployment tests share: commands with their output in the error, the cached Debian 13 root file
 * system (rootfs.sh), a copy of this checkout, NAT for package installs from a guest, and the wire probe.
 * Facts about nspawn and podman on the project's machines: ../shared/docs/deploy-test.md.
 */
import { execFile, spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { tsNodeArgs } from '../helpers/netns.js'

const execFileAsync = promisify(execFile)

/** The repository root. */
export const REPO = fileURLToPath(new URL('../..', import.meta.url))

/** Runs `bash -c script`; resolves with stdout, rejects with the exit status and the tail of stderr and stdout. */
export function sh(script: string, opts: { timeoutMs?: number; env?: NodeJS.ProcessEnv; cwd?: string } = {}): Promise<string> {
  return run('bash', ['-c', script], opts.timeoutMs, opts)
}

/** Runs a command without a shell; resolves with stdout, rejects as sh() does. */
export async function run(cmd: string, args: string[], timeoutMs = 60_000, opts: { env?: NodeJS.ProcessEnv; cwd?: string } = {}): Promise<string> {
  const script = [cmd, ...args].join(' ')
  try {
    const r = await execFileAsync(cmd, args, { timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024, env: opts.env ?? process.env, cwd: opts.cwd ?? REPO })
    return r.stdout
  } catch (err) {
    const e = err as Error & { code?: number; signal?: string; killed?: boolean; stdout?: string; stderr?: string }
    const tail = (s = '') => s.trim().split('\n').slice(-30).join('\n')
    const how = e.killed ? `killed after ${timeoutMs} ms` : `exit ${e.code ?? e.signal}`
    throw new Error(`command failed (${how}): ${script.slice(0, 300)}\n--- stderr:\n${tail(e.stderr)}\n--- stdout:\n${tail(e.stdout)}`)
  }
}

/** Why this host cannot run a deployment test needing `commands`, or undefined when it can. */
export function deployUnavailable(commands: string[]): string | undefined {
  if (process.platform !== 'linux') return 'Linux only'
  if (process.getuid?.() !== 0) return 'needs root (debootstrap, network namespaces)'
  const missing = commands.filter((c) => spawnSync('sh', ['-c', `command -v ${c}`]).status !== 0)
  if (missing.length > 0) return `missing ${missing.join(', ')} (sudo bash scripts/deps.sh test installs them)`
  if (spawnSync('sh', ['-c', 'test -r /etc/apt/sources.list.d/debian.sources || test -r /etc/apt/sources.list']).status !== 0) return 'no Debian mirror configured for debootstrap'
  return undefined
}

/** A Debian minbase root file system tarball (built by debootstrap on first use, then cached); default Debian 13. */
export async function rootfsTarball(suite = 'trixie', packages?: string): Promise<string> {
  return (await sh(`bash test/deploy/rootfs.sh ${suite} ${packages ?? ''}`, { timeoutMs: 15 * 60_000 })).trim()
}

/** Copies this checkout's files (tracked and untracked, not ignored: no node_modules, dist, builds) to `dest`. */
export async function copyCheckout(dest: string): Promise<void> {
  await sh(`mkdir -p '${dest}' && git ls-files -z -co --exclude-standard | tar --null -T - -cf - | tar -C '${dest}' -xf -`)
}

/**
 * Prepares a root file system for package installs: this machine's CA certificates (these machines reach Debian's
 * archive and npm through a proxy that re-signs TLS with a CA of its own, /usr/local/share/ca-certificates), npm told
 * to use the system bundle, this machine's resolver, and dpkg without fsync.
 */
export async function prepareRoot(root: string): Promise<void> {
  await sh(`set -e; mkdir -p '${root}/usr/local/share/ca-certificates'
    cp /usr/local/share/ca-certificates/*.crt '${root}/usr/local/share/ca-certificates/' 2>/dev/null || true
    chroot '${root}' update-ca-certificates >/dev/null
    echo 'cafile=/etc/ssl/certs/ca-certificates.crt' > '${root}/etc/npmrc'
    # A throwaway guest: dpkg need not fsync every file it unpacks (minutes on a busy 2-core machine).
    echo force-unsafe-io > '${root}/etc/dpkg/dpkg.cfg.d/pxebox-test-unsafe-io'
    cp /etc/resolv.conf '${root}/etc/resolv.conf'`, { timeoutMs: 300_000 })
}

/**
 * NAT from `subnet` to the host's uplink, for package installs only (deploy-test.md). Returns the undo, which
 * deletes the rules and restores ip_forward; call it as soon as the installs are done and from teardown.
 */
export async function natFor(subnet: string, hostIf: string): Promise<() => Promise<void>> {
  const forward = (await sh('sysctl -n net.ipv4.ip_forward')).trim()
  const rules = [
    `-t nat -A POSTROUTING -s ${subnet} ! -o ${hostIf} -j MASQUERADE`,
    `-A FORWARD -i ${hostIf} -j ACCEPT`,
    `-A FORWARD -o ${hostIf} -j ACCEPT`,
  ]
  await sh(`sysctl -qw net.ipv4.ip_forward=1 && ${rules.map((r) => `iptables ${r}`).join(' && ')}`)
  let undone = false
  return async () => {
    if (undone) return
    undone = true
    await sh(`${rules.map((r) => `iptables ${r.replace('-A ', '-D ')} || true`).join('; ')}; sysctl -qw net.ipv4.ip_forward=${forward}`)
  }
}

/** What wire-probe.ts saw. */
export interface ProbeResult {
  dhcp67: string[]
  pxe4011: string[]
  tftp: { sha256?: string; bytes?: number; error?: string }
  http: Record<string, { status?: number; body?: string; error?: string }>
}

/** Runs wire-probe.ts inside namespace `ns` against a pxebox at `server`, from `client` (this namespace's address). */
export async function probe(ns: string, server: string, client: string): Promise<ProbeResult> {
  const script = fileURLToPath(new URL('./wire-probe.ts', import.meta.url))
  const stdout = await run('ip', ['netns', 'exec', ns, process.execPath, ...tsNodeArgs(), script, JSON.stringify({ server, client })])
  return JSON.parse(stdout.trim().split('\n').pop()!) as ProbeResult
}

/** Polls `check` every 250 ms until it returns true or `ms` pass; returns whether it did. */
export async function waitUntil(check: () => Promise<boolean>, ms: number): Promise<boolean> {
  const end = Date.now() + ms
  for (;;) {
    if (await check().catch(() => false)) return true
    if (Date.now() > end) return false
    await new Promise((r) => setTimeout(r, 250))
  }
}
