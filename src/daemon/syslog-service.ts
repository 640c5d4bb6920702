/**
 * Starts the syslog receiver (src/syslog/) for `syslog.enabled` and wires it to the machine records: each accepted
 * line goes to the machine pxebox last saw on the sender's address (MachineStore.appendLog, the attribution MAC-less
 * TFTP transfers get), and the receiver's counters and the socket's kernel drops go to `/metrics`. Lines from an
 * address no machine is known on are counted and not kept: nothing would show them.
 */
import { Counter, Gauge } from 'prom-client'
import type { Logger } from '../host/log.js'
import type { MachineStore } from '../machines/store.js'
import type { Metrics } from '../http/metrics.js'
import { startSyslogServer, type SyslogServer } from '../syslog/server.js'

/** `HOST:PORT` (the schema checked the form) split for binding. */
export function hostPort(listen: string): { host: string; port: number } {
  const cut = listen.lastIndexOf(':')
  return { host: listen.slice(0, cut), port: Number(listen.slice(cut + 1)) }
}

/**
 * Where machines should send syslog (`{ syslogAddress }` for the iPXE scripts, DHCP option 7 and profile templates),
 * or nothing: iPXE's `syslog` setting and option 7 name an address only, port 514 implied (RFC 2132 section 3.11),
 * so a receiver on another port cannot be announced.
 */
export function syslogTarget(config: { syslog: { enabled: boolean; listen: string } }, ifaceAddress: string): { syslogAddress?: string } {
  if (!config.syslog.enabled) return {}
  const { host, port } = hostPort(config.syslog.listen)
  if (port !== 514) return {}
  return { syslogAddress: host === '0.0.0.0' || host === '' ? ifaceAddress : host }
}

/** Options for startSyslog. */
export interface SyslogServiceOptions {
  host: string
  port: number
  machines: Pick<MachineStore, 'appendLog'>
  logger: Logger
  /** Where the counters are exported; absent in tests that read `server.counters`. */
  metrics?: Metrics
}

/** A running receiver and how many lines found no machine. */
export interface SyslogService {
  readonly server: SyslogServer
  unattributed(): number
  close(): Promise<void>
}

/** Bind and serve. Rejects with the bind error (EADDRINUSE, EACCES) for the daemon to explain. */
export async function startSyslog(opts: SyslogServiceOptions): Promise<SyslogService> {
  let unattributed = 0
  const server = await startSyslogServer(
    { address: opts.host, port: opts.port },
    (message, source) => {
      const line = { severity: message.severity, text: message.message, ...(message.app !== undefined ? { app: message.app } : {}) }
      if (opts.machines.appendLog(source, line) === undefined) unattributed++
    },
    opts.logger,
  )
  if (opts.metrics) exportCounters(opts.metrics, server, () => unattributed)
  return { server, unattributed: () => unattributed, close: () => server.close() }
}

function exportCounters(metrics: Metrics, server: SyslogServer, unattributed: () => number): void {
  const registers = [metrics.registry]
  new Counter({
    name: 'pxebox_syslog_lines_total',
    help: 'Syslog datagrams by outcome: accepted, or dropped with the reason (rate_source, rate_global, oversized, malformed, handler_error)',
    labelNames: ['outcome'] as const,
    registers,
    collect() {
      this.reset()
      this.inc({ outcome: 'accepted' }, server.counters.accepted)
      for (const [reason, n] of Object.entries(server.counters.dropped)) this.inc({ outcome: reason }, n)
    },
  })
  new Counter({
    name: 'pxebox_syslog_unattributed_total',
    help: 'Accepted syslog lines from an address no known machine uses (not kept)',
    registers,
    collect() {
      this.reset()
      this.inc(unattributed())
    },
  })
  new Gauge({
    name: 'pxebox_syslog_kernel_drops',
    help: 'Syslog datagrams the kernel dropped because the socket buffer was full (/proc/net/udp)',
    registers,
    collect() {
      this.set(server.kernelDrops() ?? 0)
    },
  })
}
