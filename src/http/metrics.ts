/**
 * `/metrics` in the Prometheus text format: counters fed by the boot events every service records (DHCP decisions by
 * arch and client class, TFTP transfers and bytes, HTTP boot hits), gauges read at scrape time (boots in progress,
 * done, stuck, failed; address findings by kind), and prom-client's process and Node metrics, among them the event
 * loop lag from `monitorEventLoopDelay` (`nodejs_eventloop_lag_*`). One Registry per app, never prom-client's global
 * one, so two apps in one process (tests) do not share counters.
 */
import type { FastifyInstance } from 'fastify'
import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client'
import type { BootEvent, EventSink } from '../machines/events.js'
import type { EventFanoutStats } from './api/event-fanout.js'

/** Scrape-time sources; each is optional. */
export interface MetricsSources {
  /** Machines by status (booting, stuck, failed, done, ...). */
  bootCounts?: () => Readonly<Record<string, number>>
  /** Address findings by kind. */
  findingCounts?: () => Readonly<Record<string, number>>
  /** The `/v1/events` fan-out: open streams, queued bytes, refusals and drops. */
  eventStreams?: () => EventFanoutStats
  /** Whether the store answers (etcd: the outage layer's `up`, store/mirrored.ts; the embedded store: always). */
  storeUp?: () => boolean
  /** Log lines dropped because stdout did not keep up (src/host/log.ts). */
  logDrops?: () => number
}

/** A registry and the EventSink that feeds its counters. */
export interface Metrics {
  readonly registry: Registry
  /** Tee every boot event here. */
  readonly sink: EventSink
  /** Scrape-time sources, filled in by whoever has them (buildApp: machine counts; the daemon: findings). */
  readonly sources: MetricsSources
}

/** Label values come from the wire (client class, arch): bound their length so a hostile client cannot bloat them. */
const label = (v: unknown): string => (typeof v === 'string' && v !== '' ? v.slice(0, 32) : typeof v === 'number' ? String(v) : 'unknown')

/** Create the registry and its counters. `sources` may be filled in later (the daemon builds them after the app). */
export function createMetrics(sources: MetricsSources = {}): Metrics {
  const registry = new Registry()
  collectDefaultMetrics({ register: registry })
  const dhcp = new Counter({
    name: 'pxebox_dhcp_requests_total',
    help: 'PXE DHCP requests by decision (offer, ack, ignore), client arch and client class',
    labelNames: ['decision', 'arch', 'client_class'] as const,
    registers: [registry],
  })
  const tftp = new Counter({ name: 'pxebox_tftp_transfers_total', help: 'TFTP transfers by outcome', labelNames: ['outcome'] as const, registers: [registry] })
  const tftpBytes = new Counter({ name: 'pxebox_tftp_bytes_total', help: 'Bytes sent over TFTP', registers: [registry] })
  const http = new Counter({
    name: 'pxebox_http_boot_requests_total',
    help: 'HTTP boot endpoint hits by step (script, ipxe, kernel, initrd, ignition, ...) and status',
    labelNames: ['step', 'status'] as const,
    registers: [registry],
  })
  const httpBytes = new Counter({ name: 'pxebox_http_boot_bytes_total', help: 'Bytes of kernels, initrds and firmware sent over HTTP', registers: [registry] })
  const out = { registry, sources, sink: undefined as unknown as EventSink }
  new Gauge({
    name: 'pxebox_machines',
    help: 'Machines by boot status: booting (in progress), stuck, failed, done, local-boot, ignored',
    labelNames: ['status'] as const,
    registers: [registry],
    collect() {
      this.reset()
      const counts = out.sources.bootCounts?.() ?? {}
      for (const status of ['booting', 'stuck', 'failed', 'done', 'local-boot', 'ignored']) this.set({ status }, counts[status] ?? 0)
    },
  })
  new Gauge({
    name: 'pxebox_store_up',
    help: 'Whether the shared store answers: 0 while etcd is unreachable and this appliance serves from its local copy (always 1 for the embedded store)',
    registers: [registry],
    collect() {
      this.set(out.sources.storeUp?.() === false ? 0 : 1)
    },
  })
  new Gauge({
    name: 'pxebox_findings',
    help: 'Current findings by kind (duplicate, stray, multi-nic, rogue-server, next-server, ipxe-not-run)',
    labelNames: ['kind'] as const,
    registers: [registry],
    collect() {
      this.reset()
      for (const [kind, n] of Object.entries(out.sources.findingCounts?.() ?? {})) this.set({ kind }, n)
    },
  })
  new Gauge({
    name: 'pxebox_event_streams',
    help: 'Open /v1/events streams',
    registers: [registry],
    collect() {
      this.set(out.sources.eventStreams?.().streams ?? 0)
    },
  })
  new Gauge({
    name: 'pxebox_event_stream_queued_bytes',
    help: 'Bytes written to /v1/events streams and not yet taken by their sockets',
    registers: [registry],
    collect() {
      this.set(out.sources.eventStreams?.().queuedBytes ?? 0)
    },
  })
  new Counter({
    name: 'pxebox_event_streams_ended_total',
    help: '/v1/events streams pxebox refused (limit reached) or closed (slow_reader, write_error)',
    labelNames: ['reason'] as const,
    registers: [registry],
    collect() {
      const stats = out.sources.eventStreams?.()
      this.reset()
      if (!stats) return
      this.inc({ reason: 'refused' }, stats.refused)
      for (const [reason, n] of Object.entries(stats.dropped)) this.inc({ reason }, n)
    },
  })
  new Counter({
    name: 'pxebox_log_lines_dropped_total',
    help: 'Log lines pxebox dropped because stdout (the journal, a pipe) did not take them fast enough',
    registers: [registry],
    collect() {
      this.reset()
      this.inc(out.sources.logDrops?.() ?? 0)
    },
  })
  out.sink = {
    record(e: BootEvent) {
      const d = e.detail
      if (e.kind === 'dhcp') dhcp.inc({ decision: label(e.step), arch: label(d.arch_label ?? d.arch), client_class: label(d.client_class) })
      else if (e.kind === 'tftp') {
        tftp.inc({ outcome: d.tsize_probe === true ? 'size-probe' : label(e.outcome) })
        if (typeof d.bytes === 'number' && d.bytes > 0) tftpBytes.inc(d.bytes)
      } else {
        http.inc({ step: label(e.step), status: label(d.status) })
        if (typeof d.bytes === 'number' && d.bytes > 0) httpBytes.inc(d.bytes)
      }
    },
  }
  return out
}

/** `GET /metrics` (open: a Prometheus scraper holds no token; nothing in it is secret). */
export function registerMetricsRoute(app: FastifyInstance, metrics: Metrics): void {
  app.get('/metrics', async (_req, reply) => reply.type(metrics.registry.contentType).send(await metrics.registry.metrics()))
}
