/**
 * TFTP benchmark: pxebox vs tftpd-hpa vs dnsmasq on the same files with the same client, each server alone in its own
 * network namespace on 127.0.0.1:69 (dnsmasq's TFTP port is fixed at 69). Then the same again behind a UDP relay that
 * adds 1 ms each way (this kernel has no netem).
 *
 * Run (root): bench/tftp.sh [--plain-only|--relay-only] [--skip-large-relay] [--runs-small N] [--runs-large N]
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process'
import { mkdtemp, writeFile, chmod, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, dirname } from 'node:path'
import { randomBytes } from 'node:crypto'
import { fileURLToPath } from 'node:url'

const here = dirname(fileURLToPath(import.meta.url))
const flag = (name: string): boolean => process.argv.includes(`--${name}`)
const opt = (name: string, fallback: string): string => {
  const i = process.argv.indexOf(`--${name}`)
  return i >= 0 ? (process.argv[i + 1] ?? fallback) : fallback
}

interface ServerSpec {
  name: string
  command: (dir: string, work: string) => string[]
}

const servers: ServerSpec[] = [
  { name: 'pxebox', command: (dir) => [process.execPath, join(here, 'tftp-serve.js'), '--root', dir, '--address', '127.0.0.1', '--port', '69'] },
  // -L foreground, -s chroot to DIR, -a address:port; forks a child per transfer.
  { name: 'tftpd-hpa', command: (dir) => ['in.tftpd', '-L', '-s', dir, '-a', '127.0.0.1:69'] },
  {
    name: 'dnsmasq',
    command: (dir, work) => [
      'dnsmasq', '--no-daemon', '--conf-file=/dev/null', '--port=0', '--enable-tftp', `--tftp-root=${dir}`,
      '--listen-address=127.0.0.1', '--bind-interfaces', '--tftp-max=1000', '--user=root', '--group=root',
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

type Results = Record<string, Record<string, { median_ms?: number; wall_ms?: number; windowsize_granted?: number; failed?: number }>>

async function measure(dir: string, work: string, relay: boolean): Promise<{ results: Results; relayStats: Record<string, unknown> }> {
  const results: Results = {}
  const relayStats: Record<string, unknown> = {}
  for (const [i, spec] of servers.entries()) {
    const ns = `pxbt-${process.pid % 10000}-${i}`
    ip('netns', 'add', ns)
    namespaces.add(ns)
    try {
      ip('-n', ns, 'link', 'set', 'lo', 'up')
      // tftpd-hpa resolves its -a address with AI_ADDRCONFIG, which ignores loopback: without one non-loopback IPv4
      // address in the namespace it exits (66) at start. A veth pair kept inside the namespace provides one.
      ip('-n', ns, 'link', 'add', 'bv0', 'type', 'veth', 'peer', 'name', 'bv1')
      ip('-n', ns, 'addr', 'add', `10.213.${200 + i}.1/24`, 'dev', 'bv0')
      ip('-n', ns, 'link', 'set', 'bv0', 'up')
      const server = startIn(ns, spec.command(dir, work))
      let relayProc: ChildProcess | undefined
      let port = '69'
      if (relay) {
        relayProc = startIn(ns, [process.execPath, join(here, 'lib', 'udp-relay.js'), '--listen', '127.0.0.1:6969', '--server', '127.0.0.1:69', '--delay-ms', '1'])
        port = '6969'
      }
      await new Promise((r) => setTimeout(r, 500))
      const args = [process.execPath, join(here, 'tftp-measure.js'), '--dir', dir, '--port', port]
      const small = opt('runs-small', relay ? '5' : '7')
      const large = relay && flag('skip-large-relay') ? '0' : opt('runs-large', relay ? '1' : '3')
      args.push('--runs-small', small, '--runs-large', large, '--concurrent', '100')
      process.stderr.write(`${relay ? 'relay' : 'plain'}: measuring ${spec.name}...\n`)
      results[spec.name] = JSON.parse(await runIn(ns, args)) as Results[string]
      if (relayProc) relayStats[spec.name] = JSON.parse((await stop(relayProc)).trim() || '{}')
      await stop(server)
    } finally {
      execFileSync('ip', ['netns', 'del', ns])
      namespaces.delete(ns)
    }
  }
  return { results, relayStats }
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
      return `${v.toFixed(1)} ms${extra}${failed}`
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
  const header = 'median of sequential runs (blksize 1468 requested, "wN" = windowsize N requested; w=granted), and wall time of 100 concurrent 1 MiB fetches; ratio > 1 means pxebox is faster'
  console.log(header)
  if (!flag('relay-only')) {
    const { results } = await measure(dir, work, false)
    console.log(`\n${table('## plain loopback (each server in its own netns)', results)}`)
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
