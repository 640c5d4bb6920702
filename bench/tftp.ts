/**
 * TFTP benchmark: pxebox vs tftpd-hpa vs dnsmasq on the same files with the same client, in one network namespace,
 * each server on its own 127.0.0.x:69 (dnsmasq's TFTP port is fixed at 69), measured in turns (see measure()). Then the
 * same again behind UDP relays that add 1 ms each way (this kernel has no netem).
 *
 * Run (root): bench/tftp.sh [--plain-only|--relay-only] [--skip-large-relay] [--runs-small N] [--runs-large N]
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process'
import { mkdtemp, writeFile, chmod, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, dirname } from 'node:path'
import { randomBytes } from 'node:crypto'
import { fileURLToPath } from 'node:url'
import { flag, opt } from './lib/args.js'

const here = dirname(fileURLToPath(import.meta.url))

interface ServerSpec {
  name: string
  command: (dir: string, work: string, address: string) => string[]
}

const servers: ServerSpec[] = [
  { name: 'pxebox', command: (dir, _work, addr) => [process.execPath, join(here, 'tftp-serve.js'), '--root', dir, '--address', addr, '--port', '69'] },
  // -L foreground, -s chroot to DIR, -a address:port; forks a child per transfer.
  { name: 'tftpd-hpa', command: (dir, _work, addr) => ['in.tftpd', '-L', '-s', dir, '-a', `${addr}:69`] },
  {
    name: 'dnsmasq',
    command: (dir, work, addr) => [
      'dnsmasq', '--no-daemon', '--conf-file=/dev/null', '--port=0', '--enable-tftp', `--tftp-root=${dir}`,
      `--listen-address=${addr}`, '--bind-interfaces', '--tftp-max=1000', '--user=root', '--group=root',
      `--pid-file=${join(work, 'dnsmasq.pid')}`, '--quiet-tftp', '--log-facility=/dev/null',
    ],
  },
]

const children = new Set<ChildProcess>()
const namespaces = new Set<string>()

function ip(...args: string[]): void {
  execFileSync('ip', args, { stdio: 'inherit' })
}

function cleanup(): void {
  for (const c of children) c.kill('SIGTERM')
  for (const ns of namespaces) {
    try {
      execFileSync('ip', ['netns', 'del', ns])
    } catch {
      // already gone
    }
  }
  namespaces.clear()
}
process.on('exit', cleanup)
process.on('SIGINT', () => process.exit(130))
process.on('SIGTERM', () => process.exit(143))

function startIn(ns: string, argv: string[]): ChildProcess {
  const child = spawn('ip', ['netns', 'exec', ns, ...argv], { stdio: ['ignore', 'pipe', 'pipe'] })
  children.add(child)
  child.on('exit', () => children.delete(child))
  child.stderr?.on('data', () => {})
  return child
}

async function stop(child: ChildProcess): Promise<string> {
  let out = ''
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()))
  if (child.exitCode !== null) return out
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  child.kill('SIGTERM')
  await Promise.race([exited, new Promise((r) => setTimeout(r, 3000))])
  if (child.exitCode === null) child.kill('SIGKILL')
  return out
}

function runIn(ns: string, argv: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('ip', ['netns', 'exec', ns, ...argv], { stdio: ['ignore', 'pipe', 'inherit'] })
    children.add(child)
    let out = ''
    child.stdout.on('data', (d: Buffer) => (out += d.toString()))
    child.on('exit', (code) => {
      children.delete(child)
      if (code === 0) resolve(out)
      else reject(new Error(`${argv.join(' ')} exited ${code}`))
    })
  })
}

type Results = Record<string, Record<string, { median_ms?: number; min_ms?: number; max_ms?: number; wall_ms?: number; windowsize_granted?: number; failed?: number }>>

/**
 * All three servers in one namespace, each on its own loopback address (127.0.0.1-3, port 69, which dnsmasq cannot
 * change), and one client process that takes turns: run 1 of every server, then run 2 of every server, and so on. A
 * busy moment on a shared machine then lands on all servers alike instead of on whichever was being measured.
 */
async function measure(dir: string, work: string, relay: boolean): Promise<{ results: Results; relayStats: Record<string, unknown> }> {
  const relayStats: Record<string, unknown> = {}
  const ns = `pxbt-${process.pid % 10000}`
  ip('netns', 'add', ns)
  namespaces.add(ns)
  const procs: ChildProcess[] = []
  const relays = new Map<string, ChildProcess>()
  try {
    ip('-n', ns, 'link', 'set', 'lo', 'up')
    // tftpd-hpa resolves its -a address with AI_ADDRCONFIG, which ignores loopback: without one non-loopback IPv4
    // address in the namespace it exits (66) at start. A veth pair kept inside the namespace provides one.
    ip('-n', ns, 'link', 'add', 'bv0', 'type', 'veth', 'peer', 'name', 'bv1')
    ip('-n', ns, 'addr', 'add', '10.213.200.1/24', 'dev', 'bv0')
    ip('-n', ns, 'link', 'set', 'bv0', 'up')
    const targets: string[] = []
    for (const [i, spec] of servers.entries()) {
      const addr = `127.0.0.${i + 1}`
      if (i > 0) ip('-n', ns, 'addr', 'add', `${addr}/8`, 'dev', 'lo')
      procs.push(startIn(ns, spec.command(dir, work, addr)))
      let target = `${spec.name}=${addr}:69`
      if (relay) {
        const port = 6901 + i
        relays.set(spec.name, startIn(ns, [process.execPath, join(here, 'lib', 'udp-relay.js'), '--listen', `${addr}:${port}`, '--server', `${addr}:69`, '--delay-ms', '1']))
        target = `${spec.name}=${addr}:${port}`
      }
      targets.push(target)
    }
    await new Promise((r) => setTimeout(r, 500))
    const args = [process.execPath, join(here, 'tftp-measure.js'), '--dir', dir, ...targets.flatMap((t) => ['--target', t])]
    const small = opt('runs-small', relay ? '5' : '9')
    const large = relay && flag('skip-large-relay') ? '0' : opt('runs-large', relay ? '1' : '3')
    args.push('--runs-small', small, '--runs-large', large, '--concurrent', '100')
    process.stderr.write(`${relay ? 'relay' : 'plain'}: measuring ${servers.map((s) => s.name).join(', ')} in turns...\n`)
    const results = JSON.parse(await runIn(ns, args)) as Results
    for (const [name, proc] of relays) relayStats[name] = JSON.parse((await stop(proc)).trim() || '{}')
    for (const p of procs) await stop(p)
    return { results, relayStats }
  } finally {
    execFileSync('ip', ['netns', 'del', ns])
    namespaces.delete(ns)
  }
}

function table(title: string, results: Results): string {
  const names = servers.map((s) => s.name)
  const rows = Object.keys(results.pxebox ?? {})
  const lines = [title, ['test', ...names, 'best C server / pxebox'].join(' | '), ['---', ...names.map(() => '---'), '---'].join(' | ')]
  for (const row of rows) {
    const value = (n: string): number | undefined => results[n]?.[row]?.median_ms ?? results[n]?.[row]?.wall_ms
    const cell = (n: string): string => {
      const r = results[n]?.[row]
      const v = value(n)
      if (v === undefined) return 'n/a'
      const extra = r?.windowsize_granted !== undefined && row.includes('w16') ? ` (w=${r.windowsize_granted})` : ''
      const failed = r?.failed ? ` (${r.failed} failed)` : ''
      const spread = r?.min_ms !== undefined && r.max_ms !== undefined ? ` [${r.min_ms.toFixed(0)}-${r.max_ms.toFixed(0)}]` : ''
      return `${v.toFixed(1)} ms${spread}${extra}${failed}`
    }
    const others = names.filter((n) => n !== 'pxebox').map(value).filter((v): v is number => v !== undefined)
    const best = Math.min(...others)
    const px = value('pxebox')
    const ratio = px && others.length ? `${(best / px).toFixed(2)}x` : 'n/a'
    lines.push([row, ...names.map(cell), ratio].join(' | '))
  }
  return lines.join('\n')
}

const work = await mkdtemp(join(tmpdir(), 'pxebox-bench-'))
const dir = join(work, 'root')
execFileSync('mkdir', ['-p', dir])
await chmod(work, 0o755)
await chmod(dir, 0o755)
for (const [name, size] of [['f1k.bin', 1024], ['f1m.bin', 1 << 20], ['f40m.bin', 40 << 20]] as const) {
  await writeFile(join(dir, name), randomBytes(size))
  await chmod(join(dir, name), 0o644)
}
try {
  const header = 'median [fastest-slowest] of runs taken in turns, server by server (blksize 1468 requested, "wN" = windowsize N requested; w=granted), and wall time of 100 concurrent 1 MiB fetches; ratio > 1 means pxebox is faster'
  console.log(header)
  if (!flag('relay-only')) {
    const { results } = await measure(dir, work, false)
    console.log(`\n${table('## plain loopback (one namespace, each server on its own 127.0.0.x)', results)}`)
  }
  if (!flag('plain-only')) {
    const { results, relayStats } = await measure(dir, work, true)
    console.log(`\n${table('## behind a UDP relay adding 1 ms each way', results)}`)
    console.log(`relay measured one-way delay: ${JSON.stringify(relayStats)}`)
  }
} finally {
  cleanup()
  await rm(work, { recursive: true, force: true })
}
