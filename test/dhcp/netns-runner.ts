/**
 * Child process for netns.test.ts, run with `ip netns exec`: role `server` starts the real proxy service on the
 * namespace's interfaces and prints JSON lines (ready / error / event); role `client` binds 0.0.0.0:68 with
 * SO_BROADCAST, broadcasts one DHCP packet to port 67 and prints every reply it hears within a time window.
 */
import { createSocket } from 'node:dgram'
import { startProxyDhcp } from '../../src/boot/dhcp-service.js'

const say = (o: unknown): void => void process.stdout.write(JSON.stringify(o) + '\n')
const [role, json] = process.argv.slice(2)
const args = JSON.parse(json ?? '{}') as Record<string, unknown>

if (role === 'server') {
  try {
    const svc = await startProxyDhcp({
      interfaceName: String(args.interfaceName),
      address: String(args.address),
      pinning: args.pinning === 'off' ? 'off' : 'auto',
      httpBaseUrl: `http://${String(args.address)}:8080`,
      lookup: () => ({ pxe: true, chainloadIpxe: false }),
      chainloadedRecently: () => false,
      events: { record: (e) => say({ event: e }) },
      ...(args.failPinning === true
        ? {
            bindToInterface: async () => {
              throw new Error('simulated: SO_BINDTOIFINDEX unavailable')
            },
          }
        : {}),
    })
    say({ ready: true, pinned: svc.pinned })
    process.stdin.on('end', () => void svc.close().then(() => process.exit(0)))
    process.stdin.resume()
  } catch (err) {
    say({ error: (err as Error).message, code: (err as { code?: string }).code })
    process.exit(0)
  }
} else if (role === 'client') {
  const socket = createSocket({ type: 'udp4' })
  const replies: unknown[] = []
  socket.on('message', (msg, rinfo) => replies.push({ from: rinfo.address, port: rinfo.port, payload: msg.toString('base64') }))
  socket.bind(68, '0.0.0.0', () => {
    socket.setBroadcast(true)
    socket.send(Buffer.from(String(args.packet), 'base64'), 67, '255.255.255.255', (err) => {
      if (err) say({ error: err.message })
      setTimeout(() => {
        say({ replies })
        socket.close()
      }, Number(args.listenMs ?? 1500))
    })
  })
} else {
  say({ error: `unknown role ${role}` })
}
