/**
 * The composition root: Config -> running services. Checks what must hold before anything starts (preflight.ts),
 * loads the native addon once, opens the Store (what pxebox writes: <data_dir>/pxebox.db) before everything that
 * keeps state in it and closes it after them, starts address tracking before the services that feed and read it,
 * opens the catalog with its API overlay, then the HTTP, TFTP and DHCP services, and joins them through the PXE layer (src/boot/).
 * Nothing below src/daemon/ reads Config: each service gets plain options. Receives a loaded config and a logger;
 * never reads argv or files of its own accord and never exits the process.
 */
import { join } from 'node:path'
import type { Config } from '../config/schema.js'
import type { EventSink } from '../machines/events.js'
import { droppedLogLines, type Logger } from '../host/log.js'
import { loadNative } from '../host/native.js'
import { matchMachine } from '../catalog/state.js'
import { BootLoadError } from '../catalog/boot-store.js'
import { openCatalog, type Catalog } from '../catalog/catalog.js'
import { openMachineStore } from '../machines/store.js'
import { StoreError } from '../store/index.js'
import { VERSION } from '../host/version.js'
import { applianceIdentity, openConfiguredStore, storeLine } from './store.js'
import { joinFleet, type FleetMembership } from './fleet.js'
import { createMetrics } from '../http/metrics.js'
import { hostPort, startSyslog, syslogTarget } from './syslog-service.js'
import { ApiTokenError, readApiToken } from '../http/api/auth.js'
import { bootSourcesOf } from '../config/boot-sources.js'
import { startTftp, type TftpServer } from '../tftp/index.js'
import { pxeTftp } from '../boot/tftp-files.js'
import { secureBootResolvers } from '../boot/grub-tftp.js'
import { startIpxeHandoffWatch } from '../boot/ipxe-handoff.js'
import { createChainloadTracker } from '../boot/chainload.js'
import { observedAddresses } from '../addresses/observed.js'
import { startFindingsPublisher } from '../addresses/findings-store.js'
import { dhcpSettingsFor } from '../boot/dhcp-settings.js'
import { checkFirmware, logFirmware } from './firmware.js'
import { startHttp, type HttpService } from './http-service.js'
import { startDhcp } from './dhcp.js'
import { startTracking, trackingLine } from './tracking.js'
import { createReloader, type ReloadResult } from './reload.js'
import { PORTS, preflight, warnNeighbourTable } from './preflight.js'
import { readNeighbourLimits } from '../host/neighbour-table.js'
import { renderBanner } from './banner.js'
import { asStartError, StartError } from './start-error.js'

export { StartError } from './start-error.js'

/** A running pxebox. */
export interface Daemon {
  /** The start-up block: interface, address, services and where they listen, firmware, assets, HTTP URL. */
  banner(): string
  /** Apply a new (already validated) config: live keys now, restart keys reported (daemon/reload.ts). */
  reload(next: Config): Promise<ReloadResult>
  /** Stop every service, closing sockets; resolves when all are closed. */
  close(): Promise<void>
}

/** Test hooks: ports the well-known ones would collide on a shared test box. */
export interface DaemonHooks {
  /** The tracker's port 68 listener. */
  clientPort?: number
  /** Aborted when the process is told to stop during start-up (ends the registry's wait for this host's last run). */
  signal?: AbortSignal
}

/** Start pxebox with `config`. Throws StartError for problems the operator must fix. */
export async function startDaemon(config: Config, logger: Logger, hooks: DaemonHooks = {}): Promise<Daemon> {
  // Once, here: the interface lookup, DHCP and port 68 pinning, HTTP sendfile and the TFTP transfers share it.
  const native = loadNative()
  const { iface, httpHost, httpPort } = preflight(config, native)
  if (iface.chosenBy !== undefined) logger.info({ iface: iface.name, address: iface.address }, `interface: auto chose ${iface.name}: ${iface.chosenBy}`)
  if (!iface.carrier) {
    logger.warn({ iface: iface.name }, `interface ${iface.name} is down or has no carrier: serving anyway, answers start when the link comes up`)
  }
  const firmware = config.tftp.enabled ? checkFirmware(config.tftp.root) : undefined
  if (firmware) logFirmware(firmware, logger)
  let apiToken: string | undefined
  try {
    apiToken = readApiToken(config.api)
  } catch (err) {
    if (err instanceof ApiTokenError) throw new StartError(err.code, err.message)
    throw err
  }

  const closers: (() => Promise<void> | void)[] = []
  const closeAll = async () => {
    const results = await Promise.allSettled(closers.reverse().map((c) => c()))
    for (const r of results) if (r.status === 'rejected') logger.warn({ err: r.reason }, 'error while closing a service')
  }
  const lines: { http?: string; tftp?: string; dhcp?: string } = {}
  try {
    const publicUrl = (config.http.public_url ?? `http://${iface.address}:${httpPort}`).replace(/\/+$/, '')

    // What pxebox writes (machine records, install-once, API-written groups/profiles): SQLite in data_dir, or a
    // shared etcd behind the outage layer, which starts from its local copy when etcd does not answer (daemon/store.ts).
    // Closed last: the closers run in reverse, after every service that writes to it.
    const who = applianceIdentity(config)
    const opened = await openConfiguredStore(config, logger).catch((err: unknown) => {
      throw err instanceof StoreError ? new StartError(err.code, err.message) : err
    })
    const dataStore = opened.store
    closers.push(() => dataStore.close())
    const mirror = opened.shared?.mirror
    const startedDown = mirror?.up === false
    // The appliance registry (etcd only): this appliance's name, claimed at start when etcd answers (a live duplicate
    // is refused) or once it does (daemon/fleet.ts), and the fleet's list for GET /v1/appliances.
    const self = { name: who.name, site: who.site, interface: iface.name, address: iface.address, version: VERSION, started: new Date().toISOString() }
    const fleet: FleetMembership | undefined =
      opened.shared === undefined
        ? undefined
        : await joinFleet({ ...opened.shared, self, logger, ...(hooks.signal === undefined ? {} : { signal: hooks.signal }) }).catch((err: unknown) => {
            throw err instanceof StoreError ? new StartError(err.code, err.message) : err
          })
    if (fleet !== undefined) closers.push(() => fleet.close())

    // Groups/profiles written through /v1 live in the store (data_dir/boot before it) and load over config.yaml's.
    let catalog: Catalog
    try {
      catalog = await openCatalog({ sources: bootSourcesOf(config, publicUrl), store: dataStore, legacyOverlayDir: join(config.data_dir, 'boot'), logger, follow: dataStore.backend !== 'sqlite' })
    } catch (err) {
      if (err instanceof BootLoadError) throw new StartError(err.code, err.message)
      throw err
    }
    closers.push(() => catalog.close())
    const { store, overlay } = catalog

    // Address tracking (issue 8) next: machine records, metrics and the API read it, DHCP feeds it. In proxy mode it
    // also reports a loader: shim-grub machine whose site ACK names another next-server (README "Secure Boot"): only
    // x64 UEFI gets shim, and an ACK does not say the arch, so the lookup assumes it.
    const shimGrub = { server: iface.address, isShimGrub: (mac: string) => dhcpSettingsFor(matchMachine(store.get(), { mac, arch: 'x86_64' })).loader === 'shim-grub' }
    const tracking = await startTracking({ config, iface, native, logger, shimGrub, ...(hooks.clientPort === undefined ? {} : { clientPort: hooks.clientPort }) })
    if (tracking) closers.push(() => tracking.close())

    // Operator's view (issue 9): machine records are the event store; metrics count every event.
    const macForIp = (ip: string): string | undefined => tracking?.macForIp(ip)
    const machines = await openMachineStore({ store: dataStore, legacyDir: join(config.data_dir, 'machines'), maxMachines: config.machines.max_records, site: who.site, appliance: who.name, follow: config.store.backend === 'etcd', logger, macForIp })
    closers.push(() => machines.close())
    warnNeighbourTable(config, machines.list().length, logger, readNeighbourLimits())
    // Issue 19: a UEFI machine that fetched iPXE and never ran it (Secure Boot) is reported on its timeline and as a finding.
    const ipxeHandoff = startIpxeHandoffWatch({
      timeoutMs: config.machines.ipxe_not_run_after * 1000,
      report: (mac, diagnosis) => machines.recordDiagnosis(mac, diagnosis),
    })
    closers.push(() => ipxeHandoff.close())
    machines.subscribe((mac, event) => {
      if (event !== undefined) ipxeHandoff.observe(mac, event)
    })
    // Issue 17: on a shared store this appliance's findings (the tracker's and the boot side's) are published for the
    // fleet's /v1/fleet/findings, bounded per kind as the tracker bounds its own list (tracking.max_findings, live).
    let maxFindings = config.tracking.max_findings
    if (mirror !== undefined) {
      const publisher = startFindingsPublisher({
        store: dataStore,
        appliance: who.name,
        site: who.site,
        findings: () => [...(tracking?.findings() ?? []), ...ipxeHandoff.findings()],
        maxPerKind: () => maxFindings,
        logger,
      })
      closers.push(() => publisher.close())
    }
    const metrics = createMetrics({ findingCounts: () => ({ ...tracking?.counts(), 'ipxe-not-run': ipxeHandoff.findings().length }), storeUp: () => mirror?.up ?? true, logDrops: () => droppedLogLines(logger) })
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

    if (config.http.enabled) {
      const http: HttpService = await startHttp({
        host: httpHost,
        port: httpPort,
        store,
        assetsDir: config.assets_dir,
        ...(config.tftp.enabled ? { firmwareDir: config.tftp.root } : {}),
        publicUrl,
        ...(config.discovery.mode === 'hold' ? { discovery: { pollSeconds: config.discovery.poll_interval } } : {}),
        ...syslogTarget(config, iface.address),
        native: config.http.sendfile ? native : { reason: 'http.sendfile is false' },
        logger,
        events: sink,
        addressesOf: (mac) => [...new Set([...addresses.addressesOf(mac), ...(tracking?.addressesOf(mac) ?? [])])],
        metrics,
        api: {
          machines,
          auth: { token: () => apiToken, openReads: config.api.open_reads },
          maxEventStreams: config.api.max_event_streams,
          stuckAfterMs: config.machines.stuck_after * 1000,
          overlay,
          tracking: () => tracking,
          bootFindings: () => ipxeHandoff.findings(),
          ...(fleet === undefined || mirror === undefined ? {} : { appliances: () => fleet.list(), storeUp: () => mirror.up, sharedStore: dataStore }),
        },
      })
      closers.push(() => http.close())
      lines.http = `${publicUrl}  (listening on ${http.address})`
    }
    if (config.tftp.enabled) {
      const files = pxeTftp({
        root: config.tftp.root,
        events: sink,
        // Secure Boot (loader: shim-grub): GRUB configs per machine and assets/ over TFTP (boot/grub-tftp.ts).
        resolvers: secureBootResolvers({ catalog: () => store.get(), machines, macForIp, publicUrl, server: iface.address, assetsDir: config.assets_dir, logger: logger.child({ proto: 'tftp' }) }),
      })
      // Closers run last first: the folder's watches go once the server has stopped.
      closers.push(async () => files.close())
      const tftp: TftpServer = await startTftp({
        address: iface.address,
        port: PORTS.tftp,
        fileHandler: files.fileHandler,
        onTransfer: files.onTransfer,
        mtu: iface.mtu,
        maxBlockSize: config.tftp.max_block_size,
        maxWindowSize: config.tftp.max_window_size,
        limits: {
          maxTransfers: config.tftp.max_transfers,
          maxRequestsPerClientPerSecond: config.tftp.max_requests_per_client_per_second,
          maxTransfersPerClient: config.tftp.max_transfers_per_client,
          maxClientTimeoutSeconds: config.tftp.max_client_timeout,
        },
        native,
        logger: logger.child({ proto: 'tftp' }),
      })
      closers.push(() => tftp.close())
      lines.tftp = `${tftp.address}:${tftp.port}  root ${config.tftp.root}`
    }
    if (config.syslog.enabled) {
      const syslog = await startSyslog({ ...hostPort(config.syslog.listen), machines, logger, metrics })
      closers.push(() => syslog.close())
    }
    // DHCP (proxy / authoritative), feeding the tracker: see daemon/dhcp.ts.
    const dhcp = await startDhcp({
      config,
      iface,
      native,
      publicUrl,
      lookup: (labels) => dhcpSettingsFor(matchMachine(store.get(), { ...labels })),
      chainloadedRecently: (mac) => chainload.recently(mac),
      events: sink,
      logger,
      store: dataStore,
      ...(tracking === undefined ? {} : { tracking }),
    })
    closers.push(() => dhcp.close())
    if (dhcp.line !== undefined) lines.dhcp = dhcp.line

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
          groups: state.groupCount,
          profiles: state.profiles.size,
        }) +
        `\n  ${'tracking'.padEnd(9)}  ${trackingLine(tracking, config)}` +
        `\n  ${'store'.padEnd(9)}  ${storeLine(opened, who, startedDown)}`,
      reload: createReloader(config, {
        logger,
        catalog: (sources) => catalog.reload(sources),
        setToken: (token) => void (apiToken = token),
        tracker: {
          configure(settings) {
            tracking?.configure(settings)
            maxFindings = settings.maxFindings ?? maxFindings
          },
        },
        publicUrl,
      }),
      close: closeAll,
    }
  } catch (err) {
    await closeAll()
    throw asStartError(err)
  }
}
