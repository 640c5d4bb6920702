// @ts-check
/**
 * The HTTP half of the dnsmasq reference appliance (test/e2e/dnsmasq-reference.ts): static files from a root
 * directory (boot.ipxe, vmlinuz, initrd.img, snponly.efi) and `/ignition?mac=<mac>` from `<root>/ignition/<mac>.json`.
 *
 * Plain JavaScript on purpose: it runs as its own process inside the lab's network namespace
 * (`ip netns exec NS node reference-http-server.mjs ADDR PORT ROOT`), and Node 20 cannot run TypeScript by itself.
 * One line per request on stdout, `listening` once ready.
 */
import { createServer } from 'node:http'
import { createReadStream, statSync } from 'node:fs'
import { join, normalize } from 'node:path'

const [address = '127.0.0.1', portText = '8080', root = '.'] = process.argv.slice(2)

const server = createServer((req, res) => {
  const url = new URL(req.url ?? '/', 'http://x')
  let file
  if (url.pathname === '/ignition') {
    const mac = (url.searchParams.get('mac') ?? '').toLowerCase()
    file = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/.test(mac) ? join(root, 'ignition', `${mac}.json`) : undefined
  } else {
    // Refuse anything that would leave the root ('..', absolute tricks).
    const rel = normalize(decodeURIComponent(url.pathname)).replace(/^\/+/, '')
    file = rel.startsWith('..') ? undefined : join(root, rel)
  }
  let size = -1
  try {
    if (file !== undefined && statSync(file).isFile()) size = statSync(file).size
  } catch {
    size = -1
  }
  console.log(`${new Date().toISOString()} ${req.socket.remoteAddress} ${req.method} ${req.url} ${size >= 0 ? 200 : 404} ${req.headers['user-agent'] ?? ''}`)
  if (size < 0 || file === undefined) {
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n')
    return
  }
  res.writeHead(200, { 'content-length': String(size), 'content-type': 'application/octet-stream' })
  if (req.method === 'HEAD') {
    res.end()
    return
  }
  createReadStream(file).pipe(res)
})

server.listen(Number(portText), address, () => console.log(`listening on ${address}:${portText}`))
process.on('SIGTERM', () => server.close(() => process.exit(0)))
