/**
 * bench/dhcp's two servers configured for the same job: pxebox's config file and dnsmasq's argv, proxyDHCP or
 * authoritative, on the bench's server namespace (`bs0`, NET.server).
 */
import { join } from 'node:path'

/**
 * The bench network: a /20, so the authoritative range holds 2,000+ addresses (1,000 clients plus warm-up). `etcd`:
 * the link from the bench's own namespace to the server namespace, where the etcd row's cluster listens.
 */
export const NET = {
  server: '10.213.64.1',
  prefix: 20,
  network: '10.213.64.0',
  netmask: '255.255.240.0',
  range: { start: '10.213.65.1', end: '10.213.72.254' },
  iface: 'bs0',
  etcd: { host: '10.213.80.1', root: '10.213.80.254', prefix: 24 },
} as const

/** Which DHCP job the servers do. */
export type BenchMode = 'proxy' | 'authoritative'

/**
 * pxebox's config: by default DHCP only in substance (TFTP and tracking off; HTTP on, idle, since public_url is what
 * PXE answers name), log_level info (one line per offer, as deployed). `probe`: the ARP probe at its default 500 ms,
 * else 0. bench/storm turns TFTP and tracking on and adds its profile and group.
 */
export function pxeboxConfig(o: {
  mode: BenchMode
  probe: boolean
  dataDir: string
  assetsDir: string
  ignitionDir: string
  /** Serve TFTP from this folder (default: TFTP off). */
  tftpRoot?: string
  /** tftp.max_transfers (default: the config's, 500). */
  tftpMaxTransfers?: number
  /** Address tracking as deployed (default off: not part of answering DHCP). */
  tracking?: boolean
  /** Further top-level YAML lines (profiles, groups). */
  extra?: string[]
  /** etcd client URLs: the store is that cluster (shared leases: each ACK waits for its etcd transaction). */
  etcd?: string[]
}): string {
  return [
    `interface: ${NET.iface}`,
    `address: ${NET.server}`,
    'log_level: info',
    `data_dir: ${JSON.stringify(o.dataDir)}`,
    `assets_dir: ${JSON.stringify(o.assetsDir)}`,
    `ignition_dir: ${JSON.stringify(o.ignitionDir)}`,
    `generic_dir: ${JSON.stringify(o.ignitionDir)}`,
    `butane_files_dir: ${JSON.stringify(o.ignitionDir)}`,
    'dhcp:',
    `  mode: ${o.mode}`,
    '  interface_pinning: auto',
    ...(o.mode === 'authoritative'
      ? [`  range: { start: ${NET.range.start}, end: ${NET.range.end} }`, '  lease_time: 3600', `  arp_probe_ms: ${o.probe ? 500 : 0}`]
      : []),
    'tracking:',
    `  enabled: ${o.tracking === true}`,
    'tftp:',
    ...(o.tftpRoot !== undefined ? ['  enabled: true', `  root: ${JSON.stringify(o.tftpRoot)}`] : ['  enabled: false']),
    ...(o.tftpMaxTransfers !== undefined ? [`  max_transfers: ${o.tftpMaxTransfers}`] : []),
    'http:',
    '  enabled: true',
    `  listen: "${NET.server}:8080"`,
    ...(o.etcd !== undefined ? [`store: { backend: etcd, endpoints: [${o.etcd.join(', ')}], prefix: /bench, site: bench, name: bench }`] : []),
    ...(o.extra ?? []),
    '',
  ].join('\n')
}

/**
 * dnsmasq's argv for the same job. Both modes answer UEFI x64 PXE clients with snponly.efi (a one-entry menu that
 * boots at once, as in the fixture capture); authoritative mode also leases from NET.range. DHCP transactions are
 * logged to `log` (dnsmasq's default DHCP logging). `probe` false: --no-ping (dnsmasq otherwise pings each new
 * address and waits for an echo reply before offering it).
 */
export function dnsmasqArgs(o: { mode: BenchMode; probe: boolean; dir: string; log: string }): string[] {
  return [
    '--keep-in-foreground',
    '--conf-file=/dev/null',
    '--port=0',
    '--user=root',
    `--log-facility=${o.log}`,
    `--pid-file=${join(o.dir, 'dnsmasq.pid')}`,
    `--dhcp-leasefile=${join(o.dir, 'dnsmasq.leases')}`,
    `--interface=${NET.iface}`,
    '--bind-interfaces',
    o.mode === 'proxy' ? `--dhcp-range=${NET.network},proxy,${NET.netmask}` : `--dhcp-range=${NET.range.start},${NET.range.end},${NET.netmask},1h`,
    ...(o.mode === 'authoritative' ? ['--dhcp-authoritative', '--dhcp-lease-max=4096'] : []),
    ...(o.probe ? [] : ['--no-ping']),
    '--pxe-prompt=PXE,0',
    '--pxe-service=x86-64_EFI,pxebox bench,snponly.efi',
    '--pxe-service=BC_EFI,pxebox bench,snponly.efi',
    '--pxe-service=x86PC,pxebox bench,undionly.kpxe',
  ]
}
