/**
 * Run inside a network namespace by the deploy tests (`ip netns exec NS node wire-probe.ts '{"server":...}'`): asks a
 * pxebox at `server` over the wire the way a PXE client does and prints one JSON line with what came back:
 *   dhcp67   replies to OVMF's captured DISCOVER, broadcast to port 67 (proxy offers)
 *   pxe4011  replies to iPXE's captured proxy REQUEST, sent to server:4011 (ciaddr rewritten to `client`)
 *   tftp     undionly.kpxe over TFTP (port 69): its SHA-256, or the error
 *   http     GET / and GET /ui/ on port 8080: status and the first bytes
 */
import { createSocket } from 'node:dgram'
import { decode, messageType } from '../../src/dhcp/index.js'
import { captureFrames, frame } from '../dhcp/fixtures.js'
import { tftpGet } from '../helpers/tftp-client.js'

const args = JSON.parse(process.argv[2] ?? '{}') as { server: string; client: string; listenMs?: number }
const frames = captureFrames()

/** Sends `packet` from port 68 and collects the DHCP message types of every reply within listenMs. */
function dhcpExchange(packet: Buffer, to: string, port: number): Promise<string[]> {
  return new Promise((resolve) => {
    const socket = createSocket({ type: 'udp4', reuseAddr: true })
    const replies: string[] = []
    socket.on('message', (msg, rinfo) => {
      if (rinfo.address !== args.server) return
      try {
        replies.push(String(messageType(decode(msg))))
      } catch (err) {
        replies.push(`undecodable: ${(err as Error).message}`)
      }
    })
    socket.bind(68, '0.0.0.0', () => {
      socket.setBroadcast(true)
      socket.send(packet, port, to, () => setTimeout(() => (socket.close(), resolve(replies)), args.listenMs ?? 1500))
    })
  })
}

const discover = Buffer.from(frame(frames, 1).payload)
discover.writeUInt32BE(0x5eed0001, 4)
const request = Buffer.from(frame(frames, 13).payload)
request.writeUInt32BE(0x5eed0002, 4)
Buffer.from(args.client.split('.').map(Number)).copy(request, 12)

const result: Record<string, unknown> = {}
result.dhcp67 = await dhcpExchange(discover, '255.255.255.255', 67)
result.pxe4011 = await dhcpExchange(request, args.server, 4011)
result.tftp = await tftpGet({ host: args.server, port: 69, file: 'undionly.kpxe', keepData: false, retries: 6 }).then(
  (r) => ({ sha256: r.sha256, bytes: r.bytes }),
  (err: Error) => ({ error: err.message }),
)
const http: Record<string, unknown> = {}
for (const path of ['/', '/ui/']) {
  http[path] = await fetch(`http://${args.server}:8080${path}`, { signal: AbortSignal.timeout(5000) }).then(
    async (r) => ({ status: r.status, body: (await r.text()).slice(0, 300) }),
    (err: Error) => ({ error: err.message }),
  )
}
result.http = http
process.stdout.write(JSON.stringify(result) + '\n')
