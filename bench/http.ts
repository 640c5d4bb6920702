/**
 * HTTP boot service benchmark (prints figures, asserts nothing):
 *  1. a 200 MB asset fetched from pxebox and from nginx (same file, loopback, 1 and 8 parallel curl processes);
 *  2. `/ipxe` throughput and latency percentiles with 10 and 10,000 groups: wrk at saturation (1 and 8 connections)
 *     and a steady ~1,000 req/s (8 connections, 8 ms apart).
 * Usage: bench/http.sh  (or, after npm run build: node dist/bench/http.js [--size-mb 200] [--rounds 7] [--seconds 5])
 * Server side runs in a child process (`bench/http.ts serve ...`) so client and server do not share an event loop.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { chmod, mkdir, mkdtemp, open, readFile, rm, writeFile } from 'node:fs/promises'
import { randomBytes } from 'node:crypto'
import http from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { nginxArgv, nginxConfig, nginxWorkers } from './lib/nginx.js'

const SELF = fileURLToPath(import.meta.url)

function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(name)
  return i >= 0 ? Number(process.argv[i + 1]) : dflt
}

/** The MAC of generated group i. */
function macOf(i: number): string {
  return ['52', '54', '01', (i >> 16) & 255, (i >> 8) & 255, i & 255].map((b) => (typeof b === 'string' ? b : b.toString(16).padStart(2, '0'))).join(':')
}

// ---------------------------------------------------------------- server child
async function serve(): Promise<void> {
  const { buildApp } = await import('../src/http/app.js')
  const { createBootStore } = await import('../src/catalog/boot-store.js')
  const groupsN = arg('--groups', 10)
  const assets = process.argv[process.argv.indexOf('--assets') + 1]!
  const groups = []
  for (let i = 0; i < groupsN; i++) {
    groups.push({ id: `node${i}`, profile: 'fcos', selector: { mac: macOf(i) }, metadata: { n: i } })
    // A second shape, as Flatcar's installed stage adds, so the index is not a single hash table.
    if (i % 10 === 0) groups.push({ id: `node${i}-installed`, profile: 'fcos', selector: { mac: macOf(i), os: 'installed' } })
  }
  const store = await createBootStore({
    profiles: {
      fcos: {
        boot: {
          kernel: '/assets/fcos/kernel',
          initrd: ['--name main /assets/fcos/initramfs.img'],
          args: ['initrd=main', 'coreos.live.rootfs_url=http://127.0.0.1/assets/fcos/rootfs.img', 'coreos.inst.install_dev=/dev/sda', 'coreos.inst.ignition_url=http://127.0.0.1/ignition?uuid=${uuid}&mac=${mac:hexhyp}'],
        },
      },
    },
    groups,
    watch: false,
  })
  const app = buildApp({ store, assetsDir: assets, publicUrl: 'http://127.0.0.1:8080', version: 'bench' })
  const address = await app.listen({ host: '127.0.0.1', port: 0 })
  process.stdout.write(JSON.stringify({ address, groups: store.get().groups.length }) + '\n')
  process.on('SIGTERM', () => void app.close().then(() => process.exit(0)))
}

// ---------------------------------------------------------------- helpers
async function startServer(assets: string, groups: number): Promise<{ child: ChildProcess; address: string; groups: number }> {
  const child = spawn(process.execPath, [...process.execArgv, SELF, 'serve', '--assets', assets, '--groups', String(groups)], { stdio: ['ignore', 'pipe', 'inherit'] })
  const rl = createInterface({ input: child.stdout! })
  const [line] = (await once(rl, 'line')) as [string]
  rl.close()
  const info = JSON.parse(line) as { address: string; groups: number }
  return { child, ...info }
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return
  child.kill('SIGTERM')
  await once(child, 'exit')
}

async function startNginx(dir: string, assets: string): Promise<{ child: ChildProcess; address: string }> {
  const port = 20000 + Math.floor(Math.random() * 20000)
  const conf = join(dir, 'nginx.conf')
  await writeFile(conf, nginxConfig({ dir, listen: `127.0.0.1:${port}`, locations: { '/assets/': `alias ${assets}/;` } }))
  const [cmd, ...args] = nginxArgv(dir, conf)
  const child = spawn(cmd!, args, { stdio: ['ignore', 'inherit', 'inherit'] })
  const address = `http://127.0.0.1:${port}`
  for (let i = 0; i < 100; i++) {
    const ok = await new Promise<boolean>((resolve) => http.get(`${address}/assets/`, (res) => (res.resume(), resolve(true))).on('error', () => resolve(false)))
    if (ok) return { child, address }
    if (child.exitCode !== null) throw new Error('nginx exited; see nginx-error.log')
    await new Promise((r) => setTimeout(r, 50))
  }
  throw new Error('nginx did not start')
}

/** `n` curl processes each fetching `url` to /dev/null; aggregate MB/s over wall time. */
async function curlFetch(url: string, n: number): Promise<number> {
  const start = process.hrtime.bigint()
  const runs = Array.from({ length: n }, () =>
    new Promise<number>((resolve, reject) => {
      const c = spawn('curl', ['-sS', '-o', '/dev/null', '-w', '%{size_download} %{http_code}', url], { stdio: ['ignore', 'pipe', 'inherit'] })
      let out = ''
      c.stdout.on('data', (d: Buffer) => (out += d.toString()))
      // 'close', not 'exit': 'exit' can come before curl's output has been read.
      c.on('close', (status) => {
        const [bytes, code] = out.split(' ')
        if (code !== '200') reject(new Error(`curl ${url}: exit ${status}, HTTP ${code}`))
        else resolve(Number(bytes))
      })
    }),
  )
  const bytes = (await Promise.all(runs)).reduce((a, b) => a + b, 0)
  const seconds = Number(process.hrtime.bigint() - start) / 1e9
  return bytes / 1e6 / seconds
}

/** CPU seconds (user + system) used so far by a process and its threads, from /proc (clock ticks of 100 Hz). */
async function cpuSeconds(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8')
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return (Number(fields[11]) + Number(fields[12])) / 100
}

/** nginx's worker is a child of the master we started; its CPU is what serves the bytes. */
function nginxWorkerPid(masterPid: number): number {
  return nginxWorkers(masterPid)[0] ?? masterPid
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!

/**
 * `rounds` fetches from each server, interleaved (pxebox, nginx, pxebox, ...) so both see the same moments of a shared
 * machine. Reports best and median MB/s, and server CPU per GB served, which noise on a shared machine barely moves.
 */
async function compareAssets(rounds: number, n: number, pxe: { url: string; pid: number }, nginx: { url: string; pid: number }) {
  const result = { pxebox: [] as number[], nginx: [] as number[], cpu: { pxebox: 0, nginx: 0 } }
  for (let i = 0; i < rounds; i++) {
    for (const [name, srv] of [['pxebox', pxe], ['nginx', nginx]] as const) {
      const before = await cpuSeconds(srv.pid)
      result[name].push(await curlFetch(srv.url, n))
      result.cpu[name] += await cpuSeconds(srv.pid) - before
    }
  }
  return result
}

/** wrk's duration strings (`57.00us`, `1.17ms`, `2.00s`) in milliseconds. */
function wrkMs(v: string): number {
  const m = /^([\d.]+)(us|ms|s|m)$/.exec(v)
  if (!m) throw new Error(`wrk printed an unexpected duration: ${v}`)
  return Number(m[1]) * { us: 0.001, ms: 1, s: 1000, m: 60_000 }[m[2] as 'us' | 'ms' | 's' | 'm']
}

/**
 * wrk (C, one thread, so it leaves the server a core) with `conns` keep-alive connections cycling through the generated
 * MACs (a Lua request hook). Each connection sends its next request as soon as the last is answered (saturation), or
 * `delayMs` after it (a steady rate of about conns * 1000 / delayMs requests per second, as a rack powering on makes).
 */
async function wrkLoad(dir: string, address: string, groups: number, conns: number, seconds: number, delayMs = 0) {
  const script = join(dir, 'ipxe.lua')
  await writeFile(
    script,
    `local i = 0\nrequest = function()\n  i = i + 1\n  local n = (i * 7919) % ${groups}\n` +
      `  local mac = string.format("52-54-01-%02x-%02x-%02x", math.floor(n / 65536) % 256, math.floor(n / 256) % 256, n % 256)\n` +
      `  return wrk.format("GET", "/ipxe?mac=" .. mac .. "&uuid=&serial=&hostname=&domain=&arch=x86_64&platform=efi")\nend\n` +
      (delayMs > 0 ? `delay = function()\n  return ${delayMs}\nend\n` : ''),
  )
  const out = await new Promise<string>((resolve, reject) => {
    const c = spawn('wrk', ['-t1', `-c${conns}`, `-d${seconds}s`, '--latency', '-s', script, address], { stdio: ['ignore', 'pipe', 'inherit'] })
    let text = ''
    c.stdout.on('data', (d: Buffer) => (text += d.toString()))
    c.on('close', (code) => (code === 0 ? resolve(text) : reject(new Error(`wrk exited ${code}`))))
  })
  const grab = (re: RegExp) => {
    const m = re.exec(out)
    if (!m) throw new Error(`cannot read wrk output:\n${out}`)
    return m[1]!
  }
  const requests = Number(grab(/(\d+) requests in/))
  return {
    requests,
    rps: Number(grab(/Requests\/sec:\s+([\d.]+)/)),
    p50: wrkMs(grab(/ 50%\s+(\S+)/)),
    p99: wrkMs(grab(/ 99%\s+(\S+)/)),
    max: wrkMs(grab(/Latency\s+\S+\s+\S+\s+(\S+)/)),
    non200: /Non-2xx or 3xx responses: (\d+)/.exec(out) ? Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)![1]) : 0,
  }
}

// ---------------------------------------------------------------- main
async function main(): Promise<void> {
  const sizeMb = arg('--size-mb', 200)
  const seconds = arg('--seconds', 5)
  const dir = await mkdtemp(join(tmpdir(), 'pxebox-bench-http-'))
  const children: ChildProcess[] = []
  try {
    await chmod(dir, 0o755)
    const assets = join(dir, 'assets')
    await mkdir(join(assets, 'fcos'), { recursive: true, mode: 0o755 })
    const file = join(assets, 'fcos', 'rootfs.img')
    const fh = await open(file, 'w', 0o644)
    const chunk = randomBytes(1 << 20)
    for (let i = 0; i < sizeMb; i++) await fh.write(chunk)
    await fh.close()
    console.log(`# pxebox HTTP bench (node ${process.version}, ${sizeMb} MB asset, loopback)`)

    const pxe = await startServer(assets, 10)
    children.push(pxe.child)
    const nginx = await startNginx(dir, assets)
    children.push(nginx.child)
    const url = (base: string) => `${base}/assets/fcos/rootfs.img`
    // Warm the page cache and both servers once.
    await curlFetch(url(pxe.address), 1)
    await curlFetch(url(nginx.address), 1)
    const rounds = arg('--rounds', 7)
    console.log(`\n## asset download (MB/s aggregate over ${rounds} interleaved rounds, curl processes; CPU = server CPU ms per GB sent)`)
    console.log('parallel | pxebox best | nginx best | ratio | pxebox median | nginx median | ratio | pxebox CPU | nginx CPU')
    const nginxWorker = nginxWorkerPid(nginx.child.pid!)
    for (const n of [1, 8]) {
      const r = await compareAssets(rounds, n, { url: url(pxe.address), pid: pxe.child.pid! }, { url: url(nginx.address), pid: nginxWorker })
      const gb = (rounds * n * sizeMb) / 1000
      const [pb, gbest, pm, gm] = [Math.max(...r.pxebox), Math.max(...r.nginx), median(r.pxebox), median(r.nginx)]
      console.log(
        `${String(n).padStart(8)} | ${pb.toFixed(0).padStart(11)} | ${gbest.toFixed(0).padStart(10)} | ${((pb / gbest) * 100).toFixed(0).padStart(4)}% | ` +
          `${pm.toFixed(0).padStart(13)} | ${gm.toFixed(0).padStart(12)} | ${((pm / gm) * 100).toFixed(0).padStart(4)}% | ` +
          `${((r.cpu.pxebox / gb) * 1000).toFixed(0).padStart(7)} ms | ${((r.cpu.nginx / gb) * 1000).toFixed(0).padStart(6)} ms`,
      )
    }
    await stop(nginx.child)
    await stop(pxe.child)

    console.log(`\n## /ipxe, ${seconds}s per row: wrk saturating 1 and 8 keep-alive connections, then 8 connections pausing 8 ms between requests (~1,000 req/s)`)
    console.log('groups | load         | requests | req/s  | p50 ms | p99 ms | max ms | non-200')
    for (const groups of [10, 10_000]) {
      const s = await startServer(assets, groups)
      children.push(s.child)
      await wrkLoad(dir, s.address, groups, 4, 1) // warm-up (JIT)
      const rows: [string, Awaited<ReturnType<typeof wrkLoad>>][] = []
      for (const conns of [1, 8]) rows.push([`${conns} conn${conns > 1 ? 's' : ''}, max`, await wrkLoad(dir, s.address, groups, conns, seconds)])
      rows.push(['~1,000 req/s', await wrkLoad(dir, s.address, groups, 8, seconds, 8)])
      for (const [load, r] of rows) {
        console.log(
          `${String(s.groups).padStart(6)} | ${load.padEnd(12)} | ${String(r.requests).padStart(8)} | ${r.rps.toFixed(0).padStart(6)} | ` +
            `${r.p50.toFixed(2).padStart(6)} | ${r.p99.toFixed(2).padStart(6)} | ${r.max.toFixed(1).padStart(6)} | ${r.non200}`,
        )
      }
      await stop(s.child)
    }
  } finally {
    for (const c of children) await stop(c).catch(() => undefined)
    await rm(dir, { recursive: true, force: true })
  }
}

if (process.argv[2] === 'serve') await serve()
else await main()
