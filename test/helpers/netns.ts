/**
 * A small network-namespace lab for tests that need real interfaces: namespaces, bridges, veth pairs, commands run
 * inside a namespace, and a cleanup that removes everything it made (call it from t.teardown so it runs on failure).
 *
 *   const lab = new NetnsLab()
 *   t.teardown(() => lab.cleanup())
 *   await lab.namespace('xA-srv')
 *   await lab.bridge('xA-srv', 'brpxe', '10.213.31.1/24')
 *   await lab.namespace('xA-c1')
 *   await lab.veth({ ns: 'xA-c1', ifname: 'eth0', cidr: '10.213.31.50/24', peerNs: 'xA-srv', peerIfname: 'xa-c1', bridge: 'brpxe' })
 *   const out = await lab.exec('xA-c1', ['ip', 'addr'])
 *
 * Names must be unique per test file (tap runs files in parallel) and interface names at most 15 characters.
 * Deleting a namespace deletes the interfaces in it, and a veth pair dies with either end, so cleanup only
 * deletes namespaces. Use addresses inside 10.213.x.x that only exist in namespaces you created.
 */
import { execFile, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process'
import { promisify } from 'node:util'

const run = promisify(execFile)

/** Why netns tests cannot run here, or undefined when they can (root and a working `ip netns`). */
export async function netnsUnavailable(): Promise<string | undefined> {
  if (process.getuid?.() !== 0) return 'needs root (network namespaces)'
  try {
    await run('ip', ['netns', 'list'])
  } catch (err) {
    return `ip netns does not work here: ${(err as Error).message}`
  }
  return undefined
}

/** Runs `ip` with arguments; throws with ip's stderr on failure. */
export async function ip(...args: string[]): Promise<string> {
  try {
    return (await run('ip', args)).stdout
  } catch (err) {
    const e = err as Error & { stderr?: string }
    throw new Error(`ip ${args.join(' ')} failed: ${e.stderr?.trim() || e.message}`)
  }
}

/** One veth pair: one end in `ns` (optionally addressed), the other in `peerNs` (optionally enslaved to a bridge). */
export interface VethSpec {
  ns: string
  ifname: string
  cidr?: string
  peerNs: string
  peerIfname: string
  bridge?: string
  /** Add `default dev <ifname>` in `ns`, so broadcasts to 255.255.255.255 have a route. */
  defaultRoute?: boolean
}

/** Namespaces, bridges and veths made for one test file; `cleanup()` removes them all. */
export class NetnsLab {
  private readonly made: string[] = []
  private readonly children: ChildProcess[] = []

  /** Creates a namespace (deleting a stale one of the same name first) with lo up. */
  async namespace(name: string): Promise<void> {
    await ip('netns', 'del', name).catch(() => undefined)
    await ip('netns', 'add', name)
    this.made.push(name)
    await ip('-n', name, 'link', 'set', 'lo', 'up')
  }

  /** Creates a bridge in `ns`, optionally with an address, and brings it up. */
  async bridge(ns: string, name: string, cidr?: string): Promise<void> {
    await ip('-n', ns, 'link', 'add', name, 'type', 'bridge')
    if (cidr !== undefined) await ip('-n', ns, 'addr', 'add', cidr, 'dev', name)
    await ip('-n', ns, 'link', 'set', name, 'up')
  }

  /** Creates a veth pair between two namespaces as `spec` says, both ends up. */
  async veth(spec: VethSpec): Promise<void> {
    await ip('-n', spec.ns, 'link', 'add', spec.ifname, 'type', 'veth', 'peer', 'name', spec.peerIfname, 'netns', spec.peerNs)
    if (spec.cidr !== undefined) await ip('-n', spec.ns, 'addr', 'add', spec.cidr, 'dev', spec.ifname)
    if (spec.bridge !== undefined) await ip('-n', spec.peerNs, 'link', 'set', spec.peerIfname, 'master', spec.bridge)
    await ip('-n', spec.ns, 'link', 'set', spec.ifname, 'up')
    await ip('-n', spec.peerNs, 'link', 'set', spec.peerIfname, 'up')
    if (spec.defaultRoute === true) await ip('-n', spec.ns, 'route', 'add', 'default', 'dev', spec.ifname)
  }

  /** Runs a command inside `ns` and returns its output; throws (with stderr) when it exits non-zero. */
  async exec(ns: string, argv: string[], opts: { timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): Promise<{ stdout: string; stderr: string }> {
    const [cmd, ...args] = argv
    if (cmd === undefined) throw new Error('exec needs a command')
    return run('ip', ['netns', 'exec', ns, cmd, ...args], {
      timeout: opts.timeoutMs ?? 30_000,
      env: opts.env ?? process.env,
      maxBuffer: 16 * 1024 * 1024,
    })
  }

  /** Starts a long-running command inside `ns`; the caller ends it (cleanup also kills what it started). */
  spawn(ns: string, argv: string[], opts: SpawnOptions = {}): ChildProcess {
    const [cmd, ...args] = argv
    if (cmd === undefined) throw new Error('spawn needs a command')
    const child = spawn('ip', ['netns', 'exec', ns, cmd, ...args], { stdio: ['pipe', 'pipe', 'pipe'], ...opts })
    this.children.push(child)
    return child
  }

  /** Kills the processes this lab started and deletes its namespaces (and with them every interface made). */
  async cleanup(): Promise<void> {
    for (const c of this.children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL')
    for (const name of this.made.reverse()) await ip('netns', 'del', name).catch(() => undefined)
    this.made.length = 0
  }
}

/** The node arguments that let a child process load TypeScript the way the running test does (tap's loader). */
export function tsNodeArgs(): string[] {
  const loader = process.execArgv.find((a) => a.includes('@tapjs/typescript'))
  return loader === undefined ? ['--import=@tapjs/typescript/import'] : [loader]
}
