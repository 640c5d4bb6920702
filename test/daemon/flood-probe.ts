/**
 * Child process for test/daemon/syslog-flood.test.ts, run with `ip netns exec` in the clients' namespace. Prints one
 * JSON line and exits.
 *   introduce <json>: `GET /ipxe?mac=...` once from each of `count` source addresses starting at `first`, so pxebox
 *                     knows a machine on each address (syslog lines from them are then attributed, the costly path).
 *   probe <json>:     for `seconds`, every `intervalMs`: a PXE DHCPDISCOVER broadcast to port 67 (time to the OFFER,
 *                     and the OFFER's option 7) and a `GET /ipxe` (time to the whole body); prints the latencies.
 */
import { createSocket } from 'node:dgram'
import { request } from 'node:http'
import { decode, encode, messageType } from '../../src/dhcp/index.js'
import { DhcpMessageType as T, clientPacket } from '../addresses/packets.js'

const say = (o: unknown): void => void process.stdout.write(JSON.stringify(o) + '\n')
const [role, json] = process.argv.slice(2)
const args = JSON.parse(json ?? '{}') as Record<string, any>
const hex2 = (n: number): string => n.toString(16).padStart(2, '0')

/** One GET; resolves with the status and the ms to the end of the body, rejects on error or after 5 s. */
function get(url: string, localAddress?: string): Promise<{ status: number; ms: number }> {
  const start = performance.now()
  return new Promise((resolve, reject) => {
    const req = request(url, { timeout: 5000, ...(localAddress === undefined ? {} : { localAddress }) }, (res) => {
      res.resume()
      res.on('end', () => resolve({ status: res.statusCode ?? 0, ms: performance.now() - start }))
      res.on('error', reject)
    })
    req.on('timeout', () => req.destroy(new Error('timeout')))
    req.on('error', reject)
    req.end()
  })
}

if (role === 'introduce') {
  const [a, b, c, d] = (args.first as string).split('.').map(Number) as [number, number, number, number]
  let ok = 0
  for (let i = 0; i < (args.count as number); i++) {
    const r = await get(`${args.url}/ipxe?mac=02-00-5e-3a-00-${hex2(i)}`, `${a}.${b}.${c}.${d + i}`).catch(() => undefined)
    if (r?.status === 200) ok++
  }
  say({ introduced: ok })
} else if (role === 'probe') {
  const socket = createSocket({ type: 'udp4', reuseAddr: true })
  const waiting = new Map<number, (reply: ReturnType<typeof decode>) => void>()
  socket.on('message', (msg) => {
    try {
      const p = decode(msg)
      if (p.op === 2 && messageType(p) === T.OFFER) waiting.get(p.xid)?.(p)
    } catch {
      /* not a reply of ours */
    }
  })
  await new Promise<void>((r) => socket.bind(68, '0.0.0.0', () => r()))
  socket.setBroadcast(true)
  const dhcp: number[] = []
  const http: number[] = []
  const option7 = new Set<string>()
  let dhcpLost = 0
  let httpFailed = 0
  const discover = (n: number): Promise<void> =>
    new Promise((resolve) => {
      const xid = (0x5e3b0000 + n) >>> 0
      const start = performance.now()
      const timer = setTimeout(() => {
        waiting.delete(xid)
        dhcpLost++
        resolve()
      }, 5000)
      waiting.set(xid, (offer) => {
        clearTimeout(timer)
        waiting.delete(xid)
        dhcp.push(performance.now() - start)
        const o7 = offer.options.find((o) => o.code === 7)?.data
        option7.add(o7 === undefined ? 'none' : [...o7].join('.'))
        resolve()
      })
      // 20 MACs in turn: each keeps being offered the same address, so the pool never runs dry over the run.
      const mac = `02:00:5e:3b:00:${hex2(n % 20)}`
      socket.send(encode(clientPacket({ type: T.DISCOVER, mac, xid, vendorClass: 'PXEClient:Arch:00007:UNDI:003000' })), 67, '255.255.255.255')
    })
  const pending: Promise<void>[] = []
  const end = performance.now() + (args.seconds as number) * 1000
  for (let n = 0; performance.now() < end; n++) {
    pending.push(discover(n))
    pending.push(
      get(`${args.url}/ipxe?mac=02-00-5e-3b-00-${hex2(n % 20)}`).then(
        (r) => void (r.status === 200 ? http.push(r.ms) : httpFailed++),
        () => void httpFailed++,
      ),
    )
    await new Promise((r) => setTimeout(r, args.intervalMs as number))
  }
  await Promise.all(pending)
  socket.close()
  say({ dhcp, dhcpLost, http, httpFailed, option7: [...option7] })
} else {
  say({ error: `unknown role ${role}` })
}
