/**
 * HTTP boot service benchmark (prints figures, asserts nothing):
 *  1. a 200 MB asset fetched from pxebox and from nginx (same file, loopback, 1 and 8 parallel curl processes);
 *  2. `/ipxe` throughput and latency percentiles with 10 and 10,000 groups (Node keep-alive client, bounded run).
 * Usage: bench/http.sh  (or: node --import <ts loader> bench/http.ts [--size-mb 200] [--seconds 5])
 * Server side runs in a child process (`bench/http.ts serve ...`) so client and server do not share an event loop.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { chmod, mkdtemp, open, rm, writeFile } from 'node:fs/promises'
import { randomBytes } from 'node:crypto'
import http from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'

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
  const { createBootStore } = await import('../src/boot/state.js')
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
  // Debian's stock http settings for static files (sendfile, tcp_nopush); everything under the temp dir.
  await writeFile(
    conf,
    `daemon off;\nmaster_process on;\nworker_processes 1;\npid ${dir}/nginx.pid;\nerror_log ${dir}/nginx-error.log warn;\n` +
      `user root;\nevents { worker_connections 1024; }\n` +
      `http {\n  access_log off;\n  sendfile on;\n  tcp_nopush on;\n  default_type application/octet-stream;\n` +
      `  client_body_temp_path ${dir}/nx-body;\n  proxy_temp_path ${dir}/nx-proxy;\n  fastcgi_temp_path ${dir}/nx-fcgi;\n` +
      `  uwsgi_temp_path ${dir}/nx-uwsgi;\n  scgi_temp_path ${dir}/nx-scgi;\n` +
      `  server {\n    listen 127.0.0.1:${port};\n    location /assets/ { alias ${assets}/; }\n  }\n}\n`,
  )
  const child = spawn('nginx', ['-e', join(dir, 'nginx-error.log'), '-p', dir, '-c', conf], { stdio: ['ignore', 'inherit', 'inherit'] })
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
      const c = spawn('curl', ['-s', '-o', '/dev/null', '-w', '%{size_download} %{http_code}', url], { stdio: ['ignore', 'pipe', 'inherit'] })
      let out = ''
      c.stdout.on('data', (d: Buffer) => (out += d.toString()))
      c.on('exit', () => {
        const [bytes, code] = out.split(' ')
        if (code !== '200') reject(new Error(`curl ${url}: HTTP ${code}`))
        else resolve(Number(bytes))
      })
    }),
  )
  const bytes = (await Promise.all(runs)).reduce((a, b) => a + b, 0)
  const seconds = Number(process.hrtime.bigint() - start) / 1e9
  return bytes / 1e6 / seconds
}

/** Best of `rounds` (the machine is shared; the best run is the least disturbed). */
async function best(rounds: number, fn: () => Promise<number>): Promise<number> {
  let top = 0
  for (let i = 0; i < rounds; i++) top = Math.max(top, await fn())
  return top
}

/** Keep-alive load on /ipxe: `conns` connections, each sending the next request when the last answered. */
async function ipxeLoad(address: string, groups: number, conns: number, seconds: number, maxRequests: number) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: conns })
  const latencies: number[] = []
  let non200 = 0
  const deadline = Date.now() + seconds * 1000
  let i = 0
  const worker = async () => {
    while (Date.now() < deadline && latencies.length < maxRequests) {
      const n = (i++ * 7919) % groups
      const path = `/ipxe?mac=${macOf(n).replace(/:/g, '-')}&uuid=&serial=&hostname=&domain=&arch=x86_64&platform=efi`
      const t0 = process.hrtime.bigint()
      const status = await new Promise<number>((resolve, reject) => {
        http
          .get(`${address}${path}`, { agent }, (res) => {
            res.resume()
            res.on('end', () => resolve(res.statusCode ?? 0))
          })
          .on('error', reject)
      })
      latencies.push(Number(process.hrtime.bigint() - t0) / 1e6)
      if (status !== 200) non200++
    }
  }
  const start = process.hrtime.bigint()
  await Promise.all(Array.from({ length: conns }, worker))
  const elapsed = Number(process.hrtime.bigint() - start) / 1e9
  agent.destroy()
  latencies.sort((a, b) => a - b)
  const pct = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))]!
  return { requests: latencies.length, rps: latencies.length / elapsed, p50: pct(50), p99: pct(99), max: latencies.at(-1)!, non200 }
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
    await import('node:fs/promises').then((fs) => fs.mkdir(join(assets, 'fcos'), { recursive: true, mode: 0o755 }))
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
    console.log('\n## asset download (MB/s aggregate, best of 3, curl processes)')
    console.log('parallel | pxebox  | nginx   | pxebox/nginx')
    for (const n of [1, 8]) {
      const p = await best(3, () => curlFetch(url(pxe.address), n))
      const g = await best(3, () => curlFetch(url(nginx.address), n))
      console.log(`${String(n).padStart(8)} | ${p.toFixed(0).padStart(7)} | ${g.toFixed(0).padStart(7)} | ${((p / g) * 100).toFixed(0)}%`)
    }
    await stop(nginx.child)
    await stop(pxe.child)

    console.log(`\n## /ipxe (keep-alive Node client, ${seconds}s or 200k requests per row)`)
    console.log('groups | conns | requests | req/s  | p50 ms | p99 ms | max ms | non-200')
    for (const groups of [10, 10_000]) {
      const s = await startServer(assets, groups)
      children.push(s.child)
      await ipxeLoad(s.address, groups, 4, 1, 5000) // warm-up (JIT)
      for (const conns of [1, 8]) {
        const r = await ipxeLoad(s.address, groups, conns, seconds, 200_000)
        console.log(
          `${String(s.groups).padStart(6)} | ${String(conns).padStart(5)} | ${String(r.requests).padStart(8)} | ${r.rps.toFixed(0).padStart(6)} | ` +
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
