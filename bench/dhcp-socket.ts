/**
 * The DHCP server's socket layer alone: CPU per request/reply of the batched socket (native/udp-batch.c, recvmmsg and
 * sendmmsg) against node:dgram (the fallback), on loopback, without policy, events or logs. A child process runs
 * startDhcpServer with a handler that returns one fixed reply; this process keeps `--inflight` DISCOVERs (OVMF's
 * captured one, distinct xids) outstanding until `--requests` are answered, then reads the child's CPU time
 * (process.cpuUsage: user + system, so the system calls count). Transports alternate run by run.
 *
 * Run: node dist/bench/dhcp-socket.js [--requests 20000] [--inflight 64] [--rounds 5]
 */
import { fork, type ChildProcess } from 'node:child_process'
import { createSocket } from 'node:dgram'
import { loadavg } from 'node:os'
import { fileURLToPath } from 'node:url'
import { encode, replyTo, startDhcpServer, DhcpOptionCode } from '../src/dhcp/index.js'
import { loadNative } from '../src/host/native.js'
import { ovmfTemplates } from './lib/ovmf-packets.js'
import { num } from './lib/args.js'

async function serve(transport: 'batched' | 'dgram', clientPort: number): Promise<void> {
  const loaded = loadNative()
  // The dgram row: the same server with an addon that has no batch socket (what an older addon build gives).
  const native = transport === 'batched' ? loaded : { addon: { ...loaded.addon!, batchOpen: undefined } }
  const server = await startDhcpServer(
    { interfaceName: 'lo', address: '127.0.0.1', pinning: 'off', ports: { dhcp: 0, pxe: 0, client: clientPort }, broadcastAddress: '127.0.0.1', native },
    (req) => replyTo(req.packet, { options: [{ code: DhcpOptionCode.MESSAGE_TYPE, data: Buffer.from([2]) }], siaddr: '127.0.0.1' }),
  )
  process.send?.({ port: server.ports.dhcp })
  process.on('message', () => {
    const c = process.cpuUsage()
    process.send?.({ cpuUs: c.user + c.system })
  })
}

async function measure(transport: 'batched' | 'dgram', requests: number, inflight: number): Promise<{ cpuUs: number; wallMs: number }> {
  const client = createSocket('udp4')
  await new Promise<void>((r) => client.bind(0, '127.0.0.1', r))
  const child: ChildProcess = fork(fileURLToPath(import.meta.url), ['serve', transport, String(client.address().port)])
  const port = await new Promise<number>((resolve) => child.once('message', (m: { port: number }) => resolve(m.port)))
  const discover = encode(ovmfTemplates().discover)
  let sent = 0
  let answered = 0
  const t0 = performance.now()
  const cpu0 = await cpuOf(child)
  await new Promise<void>((resolve) => {
    const next = (): void => {
      discover.writeUInt32BE(sent++, 4)
      client.send(discover, port, '127.0.0.1')
    }
    // The server answers a DISCOVER on 67 "broadcast": to broadcastAddress (127.0.0.1 here) at ports.client (ours).
    client.on('message', () => {
      if (++answered === requests) resolve()
      else if (sent < requests) next()
    })
    for (let i = 0; i < inflight; i++) next()
  })
  const wallMs = performance.now() - t0
  const cpuUs = (await cpuOf(child)) - cpu0
  child.kill()
  client.close()
  return { cpuUs, wallMs }
}

function cpuOf(child: ChildProcess): Promise<number> {
  return new Promise((resolve) => {
    child.once('message', (m: { cpuUs: number }) => resolve(m.cpuUs))
    child.send('cpu')
  })
}

if (process.argv[2] === 'serve') {
  await serve(process.argv[3] === 'dgram' ? 'dgram' : 'batched', Number(process.argv[4]))
} else {
  const requests = num('requests', 20000)
  const inflight = num('inflight', 64)
  const rounds = num('rounds', 5)
  const results: Record<string, number[]> = { batched: [], dgram: [] }
  const load0 = loadavg()[0] ?? NaN
  for (let r = 0; r < rounds; r++) {
    for (const transport of ['dgram', 'batched'] as const) {
      const { cpuUs, wallMs } = await measure(transport, requests, inflight)
      results[transport]!.push(cpuUs / requests)
      console.log(`round ${r + 1} ${transport}: ${(cpuUs / requests).toFixed(2)} us CPU per request/reply, ${((requests * 1000) / wallMs).toFixed(0)}/s`)
    }
  }
  const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1] as number
  for (const [k, xs] of Object.entries(results)) console.log(`${k}: median ${med(xs).toFixed(2)} us [${Math.min(...xs).toFixed(2)}-${Math.max(...xs).toFixed(2)}]`)
  console.log(`load average ${load0.toFixed(1)} at start, ${(loadavg()[0] ?? NaN).toFixed(1)} at end`)
}
