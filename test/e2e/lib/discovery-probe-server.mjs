// @ts-check
/**
 * The appliance side of the discovery draft (test/e2e/discovery-draft.test.ts): an HTTP server answering iPXE
 * scripts, and a UDP listener on the syslog port, both printing what they receive as one JSON line each on stdout.
 *
 *   GET /probe.ipxe            the probe script (file <root>/probe.ipxe, written by the test)
 *   GET /report?<facts>        the facts iPXE sent; answers the holding loop's first round
 *   GET /loop.ipxe?round=N     round N of the loop (sleep 0, chain back) until N = ROUNDS, then PROBE-DONE and a
 *                              chain to /ipxe as pxebox's bootstrap does
 *   GET /ipxe?mac=M...         the holding script <root>/holding-M.ipxe (written by the test from discovery-script.ts)
 *                              for the first HOLD requests of that MAC, then a script printing PROBE-ASSIGNED
 *   GET /discovery/report?...  the holding script's inventory report: 200, empty body
 *
 * Plain JavaScript, like reference-http-server.mjs: it runs as its own process inside the lab's namespace
 * (`node discovery-probe-server.mjs ADDR HTTP_PORT SYSLOG_PORT ROOT ROUNDS`).
 */
import { createServer } from 'node:http'
import { createSocket } from 'node:dgram'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'

const [address = '127.0.0.1', httpPort = '8080', syslogPort = '514', root = '.', roundsText = '3', holdText = '3'] = process.argv.slice(2)
const rounds = Number(roundsText)
const hold = Number(holdText)
/** /ipxe requests per MAC so far. */
const polls = new Map()
const base = `http://${address}:${httpPort}`

/** The loop step pxebox's holding script would take: wait, then ask again with the same identity. */
const loopTo = (round) =>
  `chain --replace --autofree ${base}/loop.ipxe?round=${round}&mac=\${net0/mac:hexhyp} || echo PROBE-LOOP-CHAIN-FAILED`

const server = createServer((req, res) => {
  const url = new URL(req.url ?? '/', 'http://x')
  console.log(JSON.stringify({ kind: 'http', t: Date.now(), peer: req.socket.remoteAddress, method: req.method, url: req.url, ua: req.headers['user-agent'] }))
  let body
  if (url.pathname === '/probe.ipxe') {
    body = readFileSync(join(root, 'probe.ipxe'), 'utf8')
  } else if (url.pathname === '/report') {
    body = ['#!ipxe', 'echo PROBE-REPORTED', 'sleep 1', loopTo(1), ''].join('\n')
  } else if (url.pathname === '/loop.ipxe') {
    const round = Number(url.searchParams.get('round') ?? '0')
    body =
      round < rounds
        ? ['#!ipxe', `echo PROBE-LOOP ${round}`, 'sleep 0', loopTo(round + 1), ''].join('\n')
        : ['#!ipxe', `echo PROBE-DONE rounds=${round}`, `chain ${base}/ipxe?mac=\${mac:hexhyp}&uuid=\${uuid}&serial=\${serial:uristring}`, ''].join('\n')
  } else if (url.pathname === '/ipxe') {
    // The bootstrap sends ${mac:hexhyp}, the holding script's poll the canonical colon form.
    const mac = (url.searchParams.get('mac') ?? '').replace(/:/g, '-')
    const n = (polls.get(mac) ?? 0) + 1
    polls.set(mac, n)
    if (n <= hold && /^[0-9a-f-]{17}$/.test(mac)) body = readFileSync(join(root, `holding-${mac}.ipxe`), 'utf8')
    else body = ['#!ipxe', `echo PROBE-ASSIGNED after ${n - 1} holding scripts`, 'sleep 600', ''].join('\n')
  } else if (url.pathname === '/discovery/report') {
    body = ''
  }
  if (body === undefined) {
    res.writeHead(404, { 'content-type': 'text/plain', 'content-length': '10' }).end('not found\n')
    return
  }
  res.writeHead(200, { 'content-type': 'text/plain', 'content-length': String(Buffer.byteLength(body)) }).end(body)
})

const udp = createSocket('udp4')
udp.on('message', (msg, rinfo) => {
  console.log(JSON.stringify({ kind: 'syslog', t: Date.now(), peer: rinfo.address, port: rinfo.port, text: msg.toString('latin1'), base64: msg.toString('base64') }))
})
udp.bind(Number(syslogPort), address, () => {
  server.listen(Number(httpPort), address, () => console.log(`listening on ${address}:${httpPort} and udp ${syslogPort}`))
})
process.on('SIGTERM', () => {
  udp.close()
  server.close(() => process.exit(0))
})
