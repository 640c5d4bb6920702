/**
 * TFTP datagrams from UDP source port 0, which no socket API will send: a raw IPPROTO_UDP socket in python3 writes
 * the UDP header itself (source port 0, checksum 0 = none, allowed over IPv4 by RFC 768), the kernel adds the IP
 * header. A server that answers such a packet is handed port 0 as the destination, which node:dgram refuses with a
 * synchronous ERR_SOCKET_BAD_PORT throw (issue 13, item 1: pxebox died of it). Needs CAP_NET_RAW (the bench is root).
 *
 * The three requests that reached the throw: a WRQ (always refused), an RRQ with a transfer mode nobody supports,
 * and an RRQ with no NUL after its file name (malformed, still answered with an ERROR).
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync } from 'node:fs'

const SCRIPT = String.raw`
import socket, struct, sys, time
dst, port, interval, count = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]) / 1000, int(sys.argv[4])
payloads = [
    ('wrq', b'\x00\x02pxebox-abuse.bin\x00octet\x00'),
    ('rrq-bad-mode', b'\x00\x01snponly.efi\x00mail\x00'),
    ('rrq-malformed', b'\x00\x01' + b'A' * 26),
]
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_UDP)
for i in range(count):
    kind, payload = payloads[i % len(payloads)]
    s.sendto(struct.pack('!HHHH', 0, port, 8 + len(payload), 0) + payload, (dst, 0))
    print(kind, flush=True)
    time.sleep(interval)
`

/** Where and how often to send. */
export interface Port0Options {
  server: string
  port: number
  intervalMs: number
  /** Upper bound on datagrams sent. */
  count: number
}

/** A running sender; `sent` counts datagrams by kind as python reports them. */
export interface Port0Sender {
  readonly child: ChildProcess
  readonly sent: Record<string, number>
}

/** Starts the python3 sender in the current network namespace; the caller kills `child` by PID when done. */
export function startPort0Sender(o: Port0Options): Port0Sender {
  // Debian's interpreter when there is one: a pyenv shim first in PATH takes seconds to start on a loaded machine.
  const python = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3'
  const child = spawn(python, ['-c', SCRIPT, o.server, String(o.port), String(o.intervalMs), String(o.count)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  const sent: Record<string, number> = {}
  let rest = ''
  child.stdout?.on('data', (d: Buffer) => {
    const lines = (rest + d.toString()).split('\n')
    rest = lines.pop() ?? ''
    for (const kind of lines) if (kind !== '') sent[kind] = (sent[kind] ?? 0) + 1
  })
  return { child, sent }
}
