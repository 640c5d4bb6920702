/**
 * ARP on the PXE VLAN, read through a `tcpdump` child process. Why tcpdump: Node has no raw/packet sockets, and
 * pxebox takes no native capture dependency (pcap bindings need libpcap headers and a compiler at install); tcpdump
 * is a Debian package, opens its AF_PACKET socket with CAP_NET_RAW alone, works inside a network namespace, and with
 * `-l --immediate-mode -n -e -tt` prints one line per frame as it arrives, which is all the tracker needs. A libpcap
 * filter (`arp`) keeps every other frame in the kernel.
 *
 * Lines look like (tcpdump 4.99):
 *   1795306435.943524 b2:75:ef:da:11:7b > ff:ff:ff:ff:ff:ff, ethertype ARP (0x0806), length 58: Request who-has 10.0.0.1 tell 0.0.0.0, length 44
 *   1795306435.943547 0a:94:c4:08:11:aa > b2:75:ef:da:11:7b, ethertype ARP (0x0806), length 42: Reply 10.0.0.1 is-at 0a:94:c4:08:11:aa, length 28
 *   1795306438.101488 b2:75:ef:da:11:7b > ff:ff:ff:ff:ff:ff, ethertype ARP (0x0806), length 58: Request who-has 10.0.0.2 (ff:ff:ff:ff:ff:ff) tell 10.0.0.2, length 44
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { createInterface } from 'node:readline'
import { silentLogger, type Logger } from '../host/log.js'
import type { ArpObservation } from './model.js'

const MAC = '[0-9a-f]{2}(?::[0-9a-f]{2}){5}'
const IP = '\\d{1,3}(?:\\.\\d{1,3}){3}'
const LINE = new RegExp(
  `^(\\d+\\.\\d+) (${MAC}) > (${MAC}), ethertype ARP \\(0x0806\\), length \\d+: ` +
    `(?:Request who-has (${IP})(?: \\(${MAC}\\))? tell (${IP})|Reply (${IP}) is-at (${MAC}))`,
)

/** Parses one tcpdump line into an ARP observation; undefined for anything else (headers, other ARP kinds). */
export function parseTcpdumpArpLine(line: string): ArpObservation | undefined {
  const m = LINE.exec(line)
  if (m === null) return undefined
  const time = Math.round(Number(m[1]) * 1000)
  const src = m[2] as string
  if (m[4] !== undefined) return { time, op: 'request', senderMac: src, senderIp: m[5] as string, targetIp: m[4] }
  // In a reply the ARP sender hardware address is printed; prefer it to the Ethernet source (they differ behind
  // some proxies, and the ARP field is what hosts will use).
  return { time, op: 'reply', senderMac: m[7] as string, senderIp: m[6] as string, targetIp: '' }
}

/** A running capture. */
export interface ArpCapture {
  /** Resolves when tcpdump says it is listening (or rejects when it could not start). */
  readonly ready: Promise<void>
  close(): Promise<void>
}

/** Options: the interface, where observations go, and (for tests) the tcpdump command. */
export interface ArpCaptureOptions {
  interfaceName: string
  onArp: (arp: ArpObservation) => void
  logger?: Logger
  command?: string
  /** Restart delay after tcpdump dies unexpectedly (ms). */
  restartMs?: number
}

/** Starts `tcpdump` on the interface and feeds every ARP frame to `onArp`; restarts it if it dies. */
export function startArpCapture(opts: ArpCaptureOptions): ArpCapture {
  const log = (opts.logger ?? silentLogger).child({ proto: 'arp', iface: opts.interfaceName })
  let child: ChildProcess | undefined
  let closing = false
  let timer: NodeJS.Timeout | undefined
  let resolveReady: () => void = () => {}
  let rejectReady: (err: Error) => void = () => {}
  const ready = new Promise<void>((res, rej) => {
    resolveReady = res
    rejectReady = rej
  })
  ready.catch(() => undefined)

  const start = (): void => {
    const args = ['-l', '--immediate-mode', '-n', '-e', '-tt', '-i', opts.interfaceName, 'arp']
    // A daemon that is SIGKILLed or crashes cannot stop its children, and a tcpdump on a quiet VLAN would live on
    // forever: util-linux setpriv asks the kernel to kill it with its parent (PR_SET_PDEATHSIG). As root, `-Z root`
    // stops tcpdump from switching to its own user, which would clear that setting.
    const [command, argv] = opts.command
      ? [opts.command, args]
      : ['setpriv', ['--pdeathsig', 'KILL', '--', 'tcpdump', ...(process.getuid?.() === 0 ? ['-Z', 'root'] : []), ...args]]
    const c = spawn(command, argv, { stdio: ['ignore', 'pipe', 'pipe'] })
    child = c
    let stderr = ''
    c.on('error', (err) => {
      log.error({ err }, 'ARP capture: cannot run tcpdump (Debian package tcpdump); ARP tracking is off')
      rejectReady(err)
    })
    createInterface({ input: c.stdout! }).on('line', (line) => {
      const arp = parseTcpdumpArpLine(line)
      if (arp === undefined) return
      try {
        opts.onArp(arp)
      } catch (err) {
        log.debug({ err, line }, 'ARP observer failed')
      }
    })
    createInterface({ input: c.stderr! }).on('line', (line) => {
      stderr = (stderr + line + '\n').slice(-2000)
      if (line.startsWith('listening on')) {
        log.info('ARP capture listening')
        resolveReady()
      }
    })
    c.on('exit', (code, signal) => {
      if (closing) return
      log.warn({ code, signal, stderr: stderr.trim() }, 'ARP capture: tcpdump exited; restarting')
      rejectReady(new Error(`tcpdump exited (${code ?? signal}): ${stderr.trim()}`))
      timer = setTimeout(start, opts.restartMs ?? 5000)
      timer.unref()
    })
  }
  start()

  return {
    ready,
    async close() {
      closing = true
      if (timer !== undefined) clearTimeout(timer)
      const c = child
      if (c === undefined || c.exitCode !== null || c.signalCode !== null) return
      await new Promise<void>((res) => {
        c.once('exit', () => res())
        c.kill('SIGTERM')
      })
    },
  }
}
