/**
 * Prometheus gauges for address tracking, registered on a registry the caller owns (the /metrics issue serves it):
 * `pxebox_address_findings{kind}` (current findings by kind, 0 when none) and `pxebox_address_bindings{source}`.
 * Values are read at scrape time, so they clear with the findings.
 */
import { Gauge, type Registry } from 'prom-client'
import type { AddressQueries } from './tracking-service.js'
import { FINDING_KINDS } from './model.js'

/** Registers the tracking gauges on `registry`. */
export function registerAddressMetrics(registry: Registry, queries: AddressQueries): void {
  new Gauge({
    name: 'pxebox_address_findings',
    help: 'Address tracking findings currently open, by kind (duplicate, stray, multi-nic, rogue-server)',
    labelNames: ['kind'],
    registers: [registry],
    collect() {
      const counts = queries.counts()
      for (const kind of FINDING_KINDS) this.set({ kind }, counts[kind])
    },
  })
  new Gauge({
    name: 'pxebox_address_bindings',
    help: 'MAC -> IP bindings in the observed address table, by how they were learnt (dhcp, arp, both)',
    labelNames: ['source'],
    registers: [registry],
    collect() {
      const by: Record<string, number> = { dhcp: 0, arp: 0, both: 0 }
      for (const b of queries.leases()) by[b.source] = (by[b.source] ?? 0) + 1
      for (const [source, n] of Object.entries(by)) this.set({ source }, n)
    },
  })
}
