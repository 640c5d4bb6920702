/**
 * The daemon: resolves the PXE interface, checks privileges and firmware, then starts the HTTP, TFTP and DHCP
 * services in one process and joins them through the PXE layer (src/boot/). Receives a loaded config and a logger;
 * never reads argv or files of its own accord and never exits the process.
 */
import { mkdirSync } from 'node:fs'
import type { Config } from '../config/schema.js'
import { join } from 'node:path'
import type { EventSink } from '../machines/events.js'
import { checkFirmware, type FirmwareReport } from './firmware.js'
import type { Logger } from '../host/log.js'
import { InterfaceError, resolvePxeInterface, type PxeInterface } from '../host/interfaces.js'
import { privilegedPortProblem, readPortPrivileges } from '../host/privileges.js'
import { BootLoadError, type BootStore } from '../catalog/state.js'
import { openMachineStore } from '../machines/store.js'
import { createBootStoreWithOverlay, openBootOverlay } from '../catalog/overlay.js'
import { createMetrics } from '../http/metrics.js'
import { hostPort, startSyslog, syslogTarget } from './syslog-service.js'
import { ApiTokenError, readApiToken } from '../http/api/auth.js'
import { bootSourcesOf } from '../config/boot-sources.js'
import { startHttp, type HttpService } from './http-service.js'
import { startTftp, type TftpServer } from '../tftp/index.js'
import { pxeTftp } from '../boot/tftp-files.js'
import { startAddressServices, type AddressServices } from './address-services.js'
import { createChainloadTracker } from '../boot/chainload.js'
import { observedAddresses } from '../addresses/observed.js'
import { matchMachine } from '../catalog/state.js'
import { dhcpSettingsFor } from '../boot/dhcp-settings.js'
import { renderBanner } from './banner.js'

/** A start-up failure the operator must fix (exit code 2): bad interface, missing privileges, port in use... */
export class StartError extends Error {
  constructor(readonly code: string, message: string) {
    super(message)
    this.name = 'StartError'
  }
}

/** A running pxebox. */
export interface Daemon {
  /** The start-up block: interface, address, services and where they listen, firmware, assets, HTTP URL. */
  banner(): string
  /** Apply a new (already validated) config. Listener changes (interface, ports...) need a restart and are reported. */
  reload(next: Config): Promise<{ applied: string[]; restart_needed: string[] }>
  /** Stop every service, closing sockets; resolves when all are closed. */
  close(): Promise<void>
}

/** Well-known ports (RFC 2131 section 4.1, PXE 2.1 spec, RFC 1350). */
const PORTS = { dhcp: 67, pxe: 4011, tftp: 69 } as const

/** Start pxebox with `config`. Throws StartError for problems the operator must fix. */
export async function startDaemon(config: Config, logger: Logger): Promise<Daemon> {
  let iface: PxeInterface
  try {
    iface = resolvePxeInterface(config.interface, config.address)
  } catch (err) {
    if (err instanceof InterfaceError) throw new StartError(err.code, err.message)
    throw err
  }
  if (!iface.carrier) {
    logger.warn({ iface: iface.name }, `interface ${iface.name} is down or has no carrier: serving anyway, answers start when the link comes up`)
  }
  const httpPort = Number(config.http.listen.split(':').pop())
  const httpHost = config.http.listen.slice(0, config.http.listen.lastIndexOf(':'))
  const ports: Record<string, number> = {}
  if (config.dhcp.mode !== 'off') Object.assign(ports, { dhcp: PORTS.dhcp, 'proxyDHCP': PORTS.pxe })
  if (config.tftp.enabled) ports.tftp = PORTS.tftp
  if (config.http.enabled) ports.http = httpPort
  const privilegeProblem = privilegedPortProblem(ports, readPortPrivileges())
  if (privilegeProblem) throw new StartError('PXEBOX_PRIVILEGES', privilegeProblem)

  try {
    mkdirSync(config.data_dir, { recursive: true })
  } catch (err) {
    throw new StartError('PXEBOX_DATA_DIR', `data_dir ${config.data_dir} cannot be created: ${(err as Error).message}`)
  }

  const firmware = config.tftp.enabled ? checkFirmware(config.tftp.root) : undefined
  if (firmware) logFirmware(firmware, logger)

  // Operator's view (issue 9): machine records are the event store; metrics count every event.
  let apiToken: string | undefined
  try {
    apiToken = readApiToken(config.api)
  } catch (err) {
    if (err instanceof ApiTokenError) throw new StartError(err.code, err.message)
    throw err
  }
  let addressServices: AddressServices | undefined
  const machines = await openMachineStore({
    dir: join(config.data_dir, 'machines'),
    logger,
    macForIp: (ip) => addressServices?.queries?.macForIp(ip),
  })
  const metrics = createMetrics({ findingCounts: () => addressServices?.queries?.counts() ?? {} })
  const chainload = createChainloadTracker()
  // bind_to_lease: the addresses DHCP traffic to pxebox shows each MAC using, plus what the address tracker saw
  // on the VLAN (site server broadcasts, ARP) when tracking runs.
  const addresses = observedAddresses()
  const sink: EventSink = {
    record(e) {
      machines.record(e)
      metrics.sink.record(e)
      chainload.observe(e)
      addresses.record(e)
    },
  }
  const publicUrl = (config.http.public_url ?? `http://${iface.address}:${httpPort}`).replace(/\/+$/, '')

  let bootSources = bootSourcesOf(config)
  let store: BootStore | undefined
  // Groups/profiles written through /v1 live in data_dir/boot and load over config.yaml's.
  const overlay = await openBootOverlay({ dir: join(config.data_dir, 'boot'), base: () => bootSources, reload: (s) => store!.reload(s), logger })
  try {
    store = await createBootStoreWithOverlay(bootSources, overlay, logger)
  } catch (err) {
    if (err instanceof BootLoadError) throw new StartError(err.code, err.message)
    throw err
  }

  const closers: (() => Promise<void> | void)[] = [() => machines.close(), () => store.close()]
  const closeAll = async () => {
    const results = await Promise.allSettled(closers.reverse().map((c) => c()))
    for (const r of results) if (r.status === 'rejected') logger.warn({ err: r.reason }, 'error while closing a service')
  }
  const lines: { http?: string; tftp?: string; dhcp?: string } = {}
  let currentLogLevel = config.log_level
  try {
    if (config.http.enabled) {
      const http: HttpService = await startHttp({
        host: httpHost,
        port: httpPort,
        store,
        assetsDir: config.assets_dir,
        ...(config.tftp.enabled ? { firmwareDir: config.tftp.root } : {}),
        publicUrl,
        sendfile: config.http.sendfile,
        ...(config.discovery.mode === 'hold' ? { discovery: { pollSeconds: config.discovery.poll_interval } } : {}),
        ...syslogTarget(config, iface.address),
        logger,
        events: sink,
        addressesOf: (mac) => [...new Set([...addresses.addressesOf(mac), ...(addressServices?.queries?.addressesOf(mac) ?? [])])],
        metrics,
        api: {
          machines,
          auth: { token: () => apiToken, openReads: config.api.open_reads },
          maxEventStreams: config.api.max_event_streams,
          stuckAfterMs: config.machines.stuck_after * 1000,
          overlay,
          tracking: () => addressServices?.queries,
        },
      })
      closers.push(() => http.close())
      lines.http = `${publicUrl}  (listening on ${http.address})`
    }
    if (config.tftp.enabled) {
      const tftp: TftpServer = await startTftp({
        address: iface.address,
        port: PORTS.tftp,
        ...pxeTftp({ root: config.tftp.root, events: sink }),
        mtu: iface.mtu,
        maxBlockSize: config.tftp.max_block_size,
        maxWindowSize: config.tftp.max_window_size,
        limits: {
          maxTransfers: config.tftp.max_transfers,
          maxRequestsPerClientPerSecond: config.tftp.max_requests_per_client_per_second,
          maxTransfersPerClient: config.tftp.max_transfers_per_client,
          maxClientTimeoutSeconds: config.tftp.max_client_timeout,
        },
        logger: logger.child({ proto: 'tftp' }),
      })
      closers.push(() => tftp.close())
      lines.tftp = `${tftp.address}:${tftp.port}  root ${config.tftp.root}`
    }
    if (config.syslog.enabled) {
      const syslog = await startSyslog({ ...hostPort(config.syslog.listen), machines, logger, metrics })
      closers.push(() => syslog.close())
    }
    // DHCP (proxy / authoritative) and address tracking (issue 8): one call, see daemon/address-services.ts.
    addressServices = await startAddressServices({
      config,
      iface,
      publicUrl,
      lookup: (labels) => dhcpSettingsFor(matchMachine(store.get(), { ...labels })),
      chainloadedRecently: (mac) => chainload.recently(mac),
      events: sink,
      logger,
    })
    closers.push(() => addressServices?.close())
    if (addressServices.dhcpLine !== undefined) lines.dhcp = addressServices.dhcpLine
  } catch (err) {
    await closeAll()
    throw asStartError(err)
  }

  const state = store.get()
  return {
    banner: () =>
      renderBanner({
        iface,
        dhcp: lines.dhcp ?? 'off',
        tftp: lines.tftp ?? 'off',
        http: lines.http ?? 'off',
        firmware,
        assetsDir: config.assets_dir,
        dataDir: config.data_dir,
        groups: state.groups.length,
        profiles: state.profiles.size,
      }) + `\n  ${'tracking'.padEnd(9)}  ${addressServices?.trackingLine ?? 'off'}`,
    async reload(next) {
      const restart: string[] = (['interface', 'address', 'data_dir', 'assets_dir', 'dhcp', 'tftp', 'http', 'machines'] as const).filter(
        (k) => JSON.stringify(next[k]) !== JSON.stringify(config[k]),
      )
      if (next.api.open_reads !== config.api.open_reads) restart.push('api.open_reads')
      if (next.api.max_event_streams !== config.api.max_event_streams) restart.push('api.max_event_streams')
      if (restart.length) logger.warn({ keys: restart }, 'these config changes take effect after a restart')
      const nextToken = readApiToken(next.api)
      const previous = bootSources
      bootSources = bootSourcesOf(next)
      const result = await store.reload(overlay.merge(bootSources))
      if (!result.ok) bootSources = previous
      else apiToken = nextToken
      if (!result.ok) throw new Error(`boot configuration rejected: ${result.errors.join('; ')}`)
      const applied = ['profiles', 'groups', 'matchbox_dir', 'api.token']
      if (next.log_level !== currentLogLevel) {
        logger.level = next.log_level
        currentLogLevel = next.log_level
        applied.push('log_level')
      }
      return { applied, restart_needed: [...restart] }
    },
    close: closeAll,
  }
}

function logFirmware(report: FirmwareReport, logger: Logger): void {
  if (!report.manifest) {
    logger.warn({ root: report.root }, `firmware: ${report.problem}; run firmware/fetch.sh`)
    return
  }
  for (const f of report.files) {
    if (f.status === 'missing') logger.warn({ file: f.file, for: f.for }, `firmware ${f.file} is missing from ${report.root}: run firmware/fetch.sh`)
    else if (f.status === 'changed')
      logger.warn({ file: f.file, expected: f.expected, actual: f.actual }, `firmware ${f.file} differs from manifest.json (another iPXE build?); run firmware/fetch.sh`)
  }
}

function asStartError(err: unknown): Error {
  const e = err as NodeJS.ErrnoException & { port?: number; address?: string }
  if (e.code === 'EADDRINUSE') return new StartError('EADDRINUSE', `port ${e.port ?? '?'} on ${e.address ?? '?'} is already in use (another dnsmasq, tftpd or pxebox running?)`)
  if (e.code === 'EADDRNOTAVAIL') return new StartError('EADDRNOTAVAIL', `cannot bind ${e.address ?? '?'}:${e.port ?? '?'}: address not on this box`)
  if (e.code === 'EACCES') return new StartError('EACCES', `permission denied binding port ${e.port ?? '?'}: run as root or with CAP_NET_BIND_SERVICE`)
  if (err instanceof StartError) return err
  if (e.code && typeof e.message === 'string') return new StartError(e.code, e.message)
  return err as Error
}
